//! The handlers, one file per route group: extract, call one function, render or redirect.

pub(super) mod account;
pub(super) mod admin;
pub(super) mod api;
pub(super) mod backchannel;
pub(super) mod forward_auth;
pub(super) mod home;
pub(super) mod login;
pub(super) mod logout;
pub(crate) mod ops;
pub(super) mod password;
pub(super) mod register;
pub(super) mod site;
pub(super) mod token;
