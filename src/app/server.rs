//! Starting the server: the idp clients, the store, the session layer and [`AppState`] from
//! [`Settings`], keygate's routes and the application's mounts inside one middleware stack, and
//! a listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Service;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use url::Url;

use crate::domain::doctor::Verdict;
use crate::domain::rate_limit::FailureLimiter;
use crate::domain::revocations::{spawn_reloader, Revocations};
use crate::domain::user_cache::UserCache;
use crate::idp::{self, AccessTokens, Discovery, Grants, Jwks, KeycloakAdmin, LogoutTokens};
use crate::session::store::load_failed;
use crate::session::{
    spawn_purger, spawn_session_gauge, DbSessionStore, Refresher, RowCache, SessionLimits,
};
use crate::settings::{is_loopback, Settings};
use crate::store;
use crate::web::response::{render_bare_errors, store_failure};
use crate::web::{
    carry_cookies, count_requests, metrics_text, security_headers, with_request_id, AppState,
    Cookies, SecurityHeaders, Upstream,
};

use super::builder::Parts;

/// A started keygate (with the application mounted in it): its port and the server to await.
pub struct Server {
    port: u16,
    server: actix_web::dev::Server,
    /// The `/metrics` listener of `KEYGATE_METRICS_BIND`, when there is one.
    metrics: Option<actix_web::dev::Server>,
    state: web::Data<AppState>,
}

impl Server {
    /// Migrates the database (keygate's migrations, then the application's), builds everything
    /// and starts listening on `settings.bind`.
    pub(super) async fn start(parts: Parts) -> anyhow::Result<Self> {
        let Parts {
            settings,
            mounts,
            nav_links,
            migrations,
        } = parts;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("KEYGATE_BIND: cannot listen on {}", settings.bind))?;
        let addr = listener.local_addr()?;
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{addr}"))?,
        };
        let key = session_key(&settings, &public_url)?;
        warn_about_linking(&settings);
        let pool = store::connect(&settings.database_url)?;
        let migrate_pool = pool.clone();
        let app_migrations = migrations.clone();
        tokio::task::spawn_blocking(move || store::migrate(&migrate_pool, &migrations)).await??;
        let mut state = state(settings, public_url.clone(), pool.clone())?;
        state.nav_links = nav_links.into();
        state.migrations = app_migrations;
        let state = web::Data::new(state);
        spawn_doctor(state.clone());
        spawn_reloader(pool.clone(), state.revocations.clone());
        spawn_session_gauge(pool.clone(), std::time::Duration::from_secs(30));
        spawn_purger(
            pool.clone(),
            std::time::Duration::from_secs(300),
            state.settings.audit_retention_days,
        );

        let headers = web::Data::new(security_headers_for(&state));
        let upstream_timeout = state
            .settings
            .upstream
            .as_ref()
            .map(|_| state.settings.upstream_timeout);
        let gated = state.settings.rules.is_some();
        let server_state = state.clone();
        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(
                DbSessionStore::new(
                    server_state.pool.clone(),
                    server_state.session_limits,
                    server_state.session_rows.clone(),
                ),
                key.clone(),
            )
            .cookie_name(server_state.cookies.session.into())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(server_state.cookies.secure)
            .cookie_content_security(CookieContentSecurity::Private)
            .cookie_domain(server_state.settings.cookie_domain.clone())
            .session_lifecycle(BrowserSession::default().state_ttl(
                actix_web::cookie::time::Duration::seconds(server_state.session_limits.max),
            ))
            .build();
            App::new()
                // Inside the session middleware: a session the store could not load ends here
                // with keygate's 500 page (or JSON), before any handler runs.
                .wrap_fn(|req, srv| {
                    use futures_util::future::{ready, Either};
                    if load_failed(&req) {
                        let response = store_failure(req.request());
                        return Either::Left(ready(Ok(req.into_response(response))));
                    }
                    Either::Right(srv.call(req))
                })
                // Cookies the extractor decided on (a refreshed TOKEN) reach every response.
                .wrap(from_fn(carry_cookies))
                .wrap(sessions)
                .wrap(ErrorHandlers::new().default_handler(render_bare_errors))
                .wrap(from_fn(security_headers))
                .wrap(from_fn(count_requests))
                // Outermost: the request id is known to everything inside, the access log included.
                .wrap(from_fn(with_request_id))
                .app_data(server_state.clone())
                .app_data(headers.clone())
                .configure(|cfg| {
                    // awc's client is per thread: one (and its pool) per worker.
                    if let Some(timeout) = upstream_timeout {
                        cfg.app_data(web::Data::new(Upstream::new(timeout)));
                    }
                })
                .configure(|cfg| crate::web::configure(cfg, upstream_timeout.is_some()))
                .configure(|cfg| {
                    for mount in mounts.iter() {
                        (mount.configure)(cfg, gated);
                    }
                })
        })
        // keygate handles SIGTERM and SIGINT itself, to drain first (`run`).
        .disable_signals()
        .shutdown_timeout(state.settings.shutdown_timeout.as_secs())
        .listen(listener)?
        .run();
        log::info!("keygate listening on {addr}, public URL {public_url}");
        let metrics = match &state.settings.metrics_bind {
            Some(bind) => Some(metrics_server(bind)?),
            None => None,
        };
        Ok(Server {
            metrics,
            port: addr.port(),
            server,
            state,
        })
    }

    /// The port it listens on (the one the OS chose when `KEYGATE_BIND` asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// keygate's database pool (the one [`Db`](crate::Db) hands out).
    pub fn pool(&self) -> &store::Pool {
        &self.state.pool
    }

    /// Shared state, for keygate's own tests that inspect the pool or caches of a running app.
    #[doc(hidden)]
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone().into_inner()
    }

    /// Serves until SIGTERM or SIGINT, then drains: `/readyz` answers 503 at once while the
    /// listener keeps serving for `KEYGATE_DRAIN_SECONDS`, so load balancers notice; then new
    /// connections stop and requests in flight (a refresh under its lease included) get
    /// `KEYGATE_SHUTDOWN_TIMEOUT_SECONDS` to finish.
    pub async fn run(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        let mut server = self.server;
        let metrics = self.metrics.map(|m| {
            let handle = m.handle();
            tokio::spawn(m);
            handle
        });
        tokio::select! {
            done = &mut server => return done,
            signal = stop_signal() => {
                let drain = state.settings.drain;
                log::info!("{signal}: draining for {} s, then stopping", drain.as_secs());
                state.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(drain).await;
                log::info!("drained: finishing the requests in flight");
            }
        }
        let stopping = handle.stop(true);
        let (done, ()) = tokio::join!(server, stopping);
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        log::info!("stopped");
        done
    }
}

/// `/metrics` alone on a listener of its own (`KEYGATE_METRICS_BIND`), one worker.
fn metrics_server(bind: &str) -> anyhow::Result<actix_web::dev::Server> {
    let listener = TcpListener::bind(bind)
        .with_context(|| format!("KEYGATE_METRICS_BIND: cannot listen on {bind}"))?;
    log::info!("metrics on http://{}/metrics", listener.local_addr()?);
    Ok(
        HttpServer::new(|| {
            App::new().route("/metrics", web::get().to(|| async { metrics_text() }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run(),
    )
}

/// The doctor's checks at start, as warnings: never fatal, and nothing but one line while
/// Keycloak cannot be reached.
fn spawn_doctor(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        match crate::domain::doctor::run(&state.settings, &state.public_url, &state.admin).await {
            Ok(checks) => {
                for check in checks.iter().filter(|c| c.verdict != Verdict::Ok) {
                    log::warn!("keygate doctor: {check}");
                }
            }
            Err(e) => log::warn!("keygate doctor skipped at start: {e}"),
        }
    });
}

/// `keygate doctor`: every check printed, `Ok(true)` when none failed.
pub(super) async fn doctor(settings: &Settings) -> anyhow::Result<bool> {
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{}", settings.bind))?,
    };
    let discovery = Arc::new(Discovery::new(settings, &public_url, idp::http_client()?)?);
    let admin = KeycloakAdmin::new(settings.issuer(), discovery);
    let checks = crate::domain::doctor::run(settings, &public_url, &admin)
        .await
        .map_err(|e| anyhow::anyhow!("cannot check Keycloak: {e}"))?;
    for check in &checks {
        println!("{check}");
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    println!(
        "{} checks, {failed} failed, {} warnings",
        checks.len(),
        checks.iter().filter(|c| c.verdict == Verdict::Warn).count()
    );
    Ok(failed == 0)
}

/// The first SIGTERM or SIGINT.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for SIGTERM/SIGINT: keygate stops only when killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// The shared state: one discovery handle for every Keycloak client, and the clients built on it.
fn state(settings: Settings, public_url: Url, pool: store::Pool) -> anyhow::Result<AppState> {
    let discovery = Arc::new(Discovery::new(&settings, &public_url, idp::http_client()?)?);
    let jwks = Arc::new(Jwks::new(discovery.clone()));
    let grants = Arc::new(Grants::new(discovery.clone(), settings.leeway));
    let revocations = Arc::new(Revocations::new(settings.session_max));
    Ok(AppState {
        migrations: vec![],
        jwks: jwks.clone(),
        draining: Default::default(),
        cookies: match settings.cookie_domain {
            Some(_) => Cookies::for_domain(public_url.scheme() == "https"),
            None => Cookies::for_https(public_url.scheme() == "https"),
        },
        access_tokens: AccessTokens::new(&settings, jwks.clone()),
        logout_tokens: LogoutTokens::new(&settings, jwks),
        admin: Arc::new(KeycloakAdmin::new(settings.issuer(), discovery.clone())),
        discovery,
        refresher: Refresher::new(pool.clone(), grants.clone(), revocations.clone()),
        session_rows: Arc::new(RowCache::new(revocations.clone())),
        browsers: Default::default(),
        revocations,
        session_limits: SessionLimits {
            idle: settings.session_idle.as_secs() as i64,
            max: settings.session_max.as_secs() as i64,
        },
        grants,
        nav_links: Arc::new([]),
        users: UserCache::default(),
        login_failures: FailureLimiter::new(5, std::time::Duration::from_secs(60)),
        registrations: FailureLimiter::new(10, std::time::Duration::from_secs(3600)),
        settings,
        public_url,
        pool,
    })
}

/// Linking by email trusts every address in the realm; with registration on, anyone chooses one.
fn warn_about_linking(settings: &Settings) {
    if settings.link_policy == crate::settings::LinkPolicy::VerifiedEmail && settings.registration {
        log::warn!(
            "KEYGATE_LINK_BY_EMAIL=verified together with KEYGATE_REGISTRATION=true: a first \
             Keycloak sign-in attaches to an existing local user (without a Keycloak account, with \
             a verified address) of the same address. Keep linking on only while every address in \
             the realm is verified by its owner, and switch it off once legacy users are linked"
        );
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

/// The headers every keygate answer carries (not the upstream's, in proxy mode).
fn security_headers_for(state: &AppState) -> SecurityHeaders {
    let csp = content_security_policy(&state.settings.issuer_url);
    let mut list = vec![
        ("x-content-type-options", "nosniff".to_string()),
        ("x-frame-options", "DENY".to_string()),
        ("referrer-policy", "same-origin".to_string()),
        ("content-security-policy", csp),
    ];
    if state.cookies.secure {
        list.push(("strict-transport-security", "max-age=31536000".to_string()));
    }
    SecurityHeaders(
        list.into_iter()
            .filter_map(|(name, value)| {
                Some((
                    actix_web::http::header::HeaderName::from_static(name),
                    actix_web::http::header::HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect(),
    )
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
