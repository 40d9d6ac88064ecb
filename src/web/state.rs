//! What every handler shares: settings, the pool, the Keycloak clients, caches and limits.

use std::sync::Arc;

use url::Url;

use super::cookies::Cookies;

use crate::domain::next_url::NextUrl;
use crate::domain::rate_limit::FailureLimiter;
use crate::domain::revocations::Revocations;
use crate::domain::user_cache::UserCache;
use crate::idp::{AccessTokens, Grants, KeycloakAdmin, LogoutTokens};
use crate::session::{Refresher, RowCache, SessionLimits};
use crate::settings::Settings;
use crate::store::Pool;

/// Everything a handler needs, shared by all workers. Built by `app`, the composition root.
pub struct AppState {
    /// The settings it was built from.
    pub settings: Settings,
    /// The database pool.
    pub pool: Pool,
    pub(crate) public_url: Url,
    /// The cookies' names and `Secure`, from the public URL's scheme.
    pub(crate) cookies: Cookies,
    pub(crate) grants: Arc<Grants>,
    pub(crate) access_tokens: AccessTokens,
    pub(crate) logout_tokens: LogoutTokens,
    pub(crate) admin: Arc<KeycloakAdmin>,
    /// Ended sessions and subjects, refused on every instance.
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) refresher: Refresher,
    /// Idle and absolute limits of browser sessions.
    pub(crate) session_limits: SessionLimits,
    /// Signed-in session rows in memory for a moment (the session store's cache).
    pub(crate) session_rows: Arc<RowCache>,
    /// Who signed-in browsers are, for a moment (see `web::browser`).
    pub(crate) browsers: super::browser::BrowserViews,
    /// Users by Keycloak subject, for bearer requests without a database round trip.
    pub(crate) users: UserCache,
    /// Failed password logins per client IP and per username.
    pub(crate) login_failures: FailureLimiter,
    /// Registrations per client IP: each creates a real Keycloak user.
    pub(crate) registrations: FailureLimiter,
    /// The application's links in the nav of [`Page`](super::Page)s and the home page.
    pub(crate) nav_links: Arc<[super::NavLink]>,
    /// The application's migrations, for readiness.
    pub(crate) migrations: Vec<crate::store::Migrations>,
    /// Discovery and keys, for readiness.
    pub(crate) discovery: Arc<crate::idp::Discovery>,
    pub(crate) jwks: Arc<crate::idp::Jwks>,
    /// Set at SIGTERM/SIGINT: `/readyz` answers 503 from then on.
    pub(crate) draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Refreshes this process made at Keycloak (observability, and tests of the refresh lease).
    pub fn refresh_count(&self) -> u64 {
        self.refresher.count()
    }

    /// Absolute URL that starts a Keycloak login and comes back to `next`.
    pub(crate) fn login_url(&self, next: &NextUrl) -> String {
        super::response::login_url(&self.public_url, next)
    }

    /// True when the token's claims name the configured admin role, as a realm role or a role
    /// of keygate's own client.
    pub(crate) fn is_admin(&self, auth: &super::auth::Authenticated) -> bool {
        auth.has_role(&self.settings.admin_role, &self.settings.client_id)
    }
}
