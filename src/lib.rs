//! keygate: puts Keycloak login in front of an application and its UI.
//!
//! The folders are the layers. Each may use the ones listed after it, never one above it; the
//! `layering` test reads every `use crate::` path and fails on a step upwards or a forbidden crate.
//!
//! | layer      | holds                                                              | may use            | never          |
//! |------------|--------------------------------------------------------------------|--------------------|----------------|
//! | `app`      | the composition root: state and middleware from `Settings`         | everything         |                |
//! | `web`      | `AppState`, the extractor, the route table, handlers, responses    | session and below  | app            |
//! | `session`  | the typed session, pending login, session store, leased refresh    | domain and below   | web            |
//! | `domain`   | provisioning, registration, admin actions, back-channel, audit     | store, idp, below  | actix          |
//! | `store`    | Diesel: pool, migrations, schema, one file per table               | util               | actix, idp     |
//! | `idp`      | Keycloak over HTTP: discovery, grants, token checks, JWKS, admin   | settings, util     | actix, diesel  |
//! | `settings` | configuration, parsed once into typed values                       | util               |                |
//! | `util`     | the clock, randomness, hashing, text for logs                      | nothing            |                |
//!
//! Only `app::Application` (started by `main` and the tests), `settings`, and the few items the
//! integration tests reach into are public; everything else is crate-private, so rustc reports
//! what nothing uses.

pub mod app;
pub mod domain;
pub(crate) mod idp;
pub mod session;
pub mod settings;
pub mod store;
pub mod util;
pub mod web;

#[cfg(test)]
mod layering;
