//! Integration tests: the real keygate against the real Keycloak (`./scripts/keycloak.sh start`),
//! one file per feature; `helpers/` is the harness they share.

mod account;
mod admin;
mod backchannel;
mod cli;
mod forward_auth;
mod helpers;
mod hostile_idp;
mod library;
mod linking;
mod login;
mod logout;
mod notes;
/// The notes example's application, mounted by the tests as its `main` mounts it.
#[path = "../../examples/notes/notes.rs"]
mod notes_app;
mod ops;
mod other_realm;
mod password;
mod proxy;
mod race;
mod refresh;
mod registration;
mod revocation;
mod timeouts;
mod tokens;
