//! keygate: puts Keycloak login in front of an application and its UI.
//!
//! `startup::Application` is the app factory; `routes` holds every route; the other modules are
//! named for what they hold.

pub mod accounts;
pub mod auth;
pub mod crypto;
pub mod db;
pub mod errors;
pub mod jwt;
pub mod keycloak_admin;
pub mod models;
pub mod next_url;
pub mod oidc;
pub mod rate_limit;
pub mod refresh;
pub mod registration;
pub mod routes;
pub mod schema;
pub mod session;
pub mod session_store;
pub mod settings;
pub mod signin;
pub mod startup;
pub mod user_cache;
