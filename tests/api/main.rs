//! Integration tests: the real keygate against the real Keycloak (`./scripts/keycloak.sh start`),
//! one file per feature; `helpers/` is the harness they share.

mod account;
mod admin;
mod backchannel;
mod cli;
mod helpers;
mod hostile_idp;
mod linking;
mod login;
mod logout;
mod other_realm;
mod password;
mod race;
mod refresh;
mod registration;
mod revocation;
mod timeouts;
mod tokens;
