//! actix-web: the shared [`AppState`], the authentication extractor and the admin gate, the route
//! table, the handlers (one file per route group) and the one response toolkit.
//!
//! Uses every layer below it (`session`, `domain`, `store`, `idp`, `settings`, `util`); never
//! `app`. Below this layer no function takes `AppState`: handlers hand each call the clients it
//! needs.

pub(crate) mod admin_gate;
pub(crate) mod auth;
mod browser;
mod client;
mod cookies;
mod csrf;
mod db;
mod gate;
pub(crate) mod handlers;
mod layout;
mod proxy;
pub(crate) mod response;
mod roles;
mod routes;
mod signin;
mod state;
mod user;

pub use auth::AuthError;
pub(crate) use client::client_ip;
pub(crate) use cookies::{carry_cookies, Cookies};
pub use csrf::CsrfForm;
pub use db::{AuditEvent, AuditLog, Db};
pub(crate) use gate::{
    count_requests, rules_gate, security_headers, with_request_id, SecurityHeaders,
};
pub(crate) use handlers::ops::metrics_text;
pub(crate) use layout::NavLink;
pub use layout::Page;
pub(crate) use proxy::{Proxied, Upstream};
pub use response::Error;
pub use roles::{RequireRole, Role, RoleGate, RoleRejection};
pub(crate) use routes::configure;
pub use routes::RESERVED;
pub use state::AppState;
pub use user::{AccessToken, CurrentUser, MaybeUser};
