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
mod handlers;
pub(crate) mod response;
mod routes;
mod signin;
mod state;

pub(crate) use cookies::{carry_cookies, Cookies};
pub(crate) use routes::configure;
pub use state::AppState;
