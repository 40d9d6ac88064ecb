//! The application factory: builds everything from [`Settings`] and binds a listener, so `main` and
//! the integration tests start exactly the same server (tests bind port 0).

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::dev::Service;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, Logger};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use url::Url;

use crate::db::{self, Pool};
use crate::errors::render_bare_errors;
use crate::jwt::TokenValidator;
use crate::keycloak_admin::KeycloakAdmin;
use crate::next_url::NextUrl;
use crate::oidc::Oidc;
use crate::rate_limit::FailureLimiter;
use crate::session_store::{spawn_purger, DbSessionStore};
use crate::settings::{is_loopback, Settings};
use crate::user_cache::UserCache;

/// Everything a handler needs, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub public_url: Url,
    pub pool: Pool,
    pub oidc: Oidc,
    pub tokens: TokenValidator,
    /// Cookies get `Secure` when keygate is served over https.
    pub secure_cookies: bool,
    pub admin: KeycloakAdmin,
    /// Users by Keycloak subject, for bearer requests without a database round trip.
    pub users: UserCache,
    /// Failed password logins per client IP and per username.
    pub login_failures: FailureLimiter,
    /// Refreshes this process made at Keycloak (observability, and tests of the refresh lease).
    pub refreshes: std::sync::atomic::AtomicU64,
}

impl AppState {
    /// Absolute URL that starts a Keycloak login and comes back to `next`.
    pub fn login_url(&self, next: &NextUrl) -> String {
        let mut url = self.public_url.clone();
        url.set_path("/login/keycloak");
        url.query_pairs_mut().append_pair("next", next.as_str());
        url.to_string()
    }
}

pub struct Application {
    port: u16,
    public_url: Url,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("KEYGATE_BIND: cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{addr}"))?,
        };
        let key = session_key(&settings, &public_url)?;
        let pool = db::connect(&settings.database_url)?;
        let migrate_pool = pool.clone();
        tokio::task::spawn_blocking(move || db::migrate(&migrate_pool)).await??;

        let oidc = Oidc::new(&settings, &public_url)?;
        let tokens = TokenValidator::new(&settings, oidc.http().clone());
        let admin = KeycloakAdmin::new(&settings, oidc.http().clone());
        let state = web::Data::new(AppState {
            secure_cookies: public_url.scheme() == "https",
            settings,
            public_url: public_url.clone(),
            pool: pool.clone(),
            oidc,
            tokens,
            admin,
            users: UserCache::default(),
            login_failures: FailureLimiter::new(5, std::time::Duration::from_secs(60)),
            refreshes: Default::default(),
        });
        spawn_purger(
            pool.clone(),
            std::time::Duration::from_secs(300),
            state.settings.audit_retention_days,
        );

        let csp = content_security_policy(&state.settings.issuer_url);
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(
                DbSessionStore::new(server_state.pool.clone()),
                key.clone(),
            )
            .cookie_name("keygate_session".into())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(server_state.secure_cookies)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(BrowserSession::default().state_ttl(
                actix_web::cookie::time::Duration::seconds(
                    server_state.settings.session_ttl.as_secs() as i64,
                ),
            ))
            .build();
            let mut headers = DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "same-origin"))
                .add(("Content-Security-Policy", csp.clone()));
            if server_state.secure_cookies {
                headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
            }
            App::new()
                // Inside the session middleware: a session the store could not load ends here
                // with keygate's 500 page (or JSON), before any handler runs.
                .wrap_fn(|req, srv| {
                    use futures_util::future::{ready, Either};
                    if crate::session_store::load_failed(&req) {
                        let response = crate::errors::store_failure(req.path());
                        return Either::Left(ready(Ok(req.into_response(response))));
                    }
                    Either::Right(srv.call(req))
                })
                .wrap(sessions)
                .wrap(ErrorHandlers::new().default_handler(render_bare_errors))
                .wrap(headers)
                // %U is the path without the query: callback codes and states stay out of logs.
                .wrap(
                    Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(server_state.clone())
                .configure(crate::routes::configure)
        })
        .listen(listener)?
        .run();
        log::info!("keygate listening on {addr}, public URL {public_url}");
        Ok(Application {
            port: addr.port(),
            public_url,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }

    /// Shared state, for tests that inspect the pool or caches of a running app.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone().into_inner()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The cookie key: the configured secret, or on a loopback URL a random one (sessions then end
/// with the process, which is fine for development and refused anywhere else).
fn session_key(settings: &Settings, public_url: &Url) -> anyhow::Result<Key> {
    match &settings.session_secret {
        Some(secret) => Ok(Key::derive_from(secret.expose())),
        None if is_loopback(public_url) => {
            log::warn!(
                "KEYGATE_SESSION_SECRET is not set: using a random key, so sessions end when \
                 keygate restarts and cannot be shared between instances"
            );
            Ok(Key::generate())
        }
        None => anyhow::bail!(
            "KEYGATE_SESSION_SECRET: required (at least 64 bytes) when the public URL {public_url} \
             is not a loopback address"
        ),
    }
}

/// No inline scripts or styles anywhere; forms may post only to us, and the logout and login
/// redirects that follow a form go to Keycloak.
fn content_security_policy(issuer: &Url) -> String {
    let idp = issuer.origin().ascii_serialization();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {idp}; frame-ancestors 'none'; base-uri 'none'; \
         object-src 'none'"
    )
}
