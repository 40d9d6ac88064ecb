//! keygate's rules, with no HTTP: provisioning a Keycloak subject to a local user, registration
//! with its compensation, admin actions, the back-channel logout transaction, the audit log as
//! plain data, `next` URLs, the password-failure limiter and the user cache.
//!
//! Uses `store`, `idp`, `settings` and `util`: never actix, never `AppState`.

pub(crate) mod admin_actions;
pub(crate) mod audit;
pub(crate) mod backchannel;
pub(crate) mod doctor;
pub(crate) mod next_url;
pub(crate) mod own_sessions;
pub mod provisioning;
pub(crate) mod rate_limit;
pub(crate) mod registration;
pub(crate) mod revocations;
pub(crate) mod user_cache;
