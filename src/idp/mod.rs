//! The identity provider, Keycloak, as seen over HTTP: discovery, the grant operations, ID-token,
//! access-token and logout-token checks, the realm's keys, and the admin REST API.
//!
//! Uses `settings` and `util` only: no actix, no diesel. Every client holds its own handle on the
//! shared [`Discovery`], so callers pass nothing but what the operation is about.

mod access_token;
mod admin;
mod discovery;
mod grants;
mod http;
mod id_token;
mod jwks;
mod jws;
mod logout_token;
mod token_cache;
pub(crate) mod unverified;
mod userinfo;

pub(crate) use access_token::{AccessClaims, AccessTokens};
pub(crate) use admin::{AdminError, KeycloakAdmin, NewKeycloakUser, Read};
pub(crate) use discovery::Discovery;
pub(crate) use grants::{AuthRequest, GrantError, GrantResult, Grants, TokenSet};
pub(crate) use http::client as http_client;
pub(crate) use jwks::Jwks;
pub(crate) use jws::TokenError;
pub(crate) use logout_token::{LogoutClaims, LogoutTokens};

/// Keycloak cannot be reached, or answered with a server error: the one error for "try again
/// later", whatever keygate was doing. The web layer maps it to a 503 page or JSON in one place.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("identity provider unreachable: {0}")]
pub(crate) struct Unavailable(pub String);
