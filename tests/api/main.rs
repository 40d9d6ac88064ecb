//! Integration tests: the real keygate against the real Keycloak (`./scripts/keycloak.sh start`).

mod accounts;
mod admin;
mod cli;
mod helpers;
mod hostile_idp;
mod login;
mod other_realm;
mod proxy;
mod race;
mod tokens;
