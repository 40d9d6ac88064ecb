//! [`Keygate`]: keygate with an application inside it, assembled before it starts. The
//! application's routes are mounted under path prefixes that keygate checks against its own
//! (actix-web would silently give a path to whichever route came first).

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, Scope};

use super::Server;
use crate::settings::{Settings, SettingsError};
use crate::store::{self, Migrations};
use crate::web::{rules_gate, NavLink, RESERVED};

/// Registers a mount in one worker's `App`; the flag says whether the route rules gate it.
type Register = Arc<dyn Fn(&mut web::ServiceConfig, bool) + Send + Sync>;

/// One piece of the application: routes under a prefix, or shared data (no prefix).
pub(super) struct Mount {
    prefix: Option<String>,
    pub(super) configure: Register,
}

/// What [`Server::start`] needs, once the builder is checked.
pub(super) struct Parts {
    pub settings: Settings,
    pub mounts: Arc<[Mount]>,
    pub nav_links: Vec<NavLink>,
    pub migrations: Vec<Migrations>,
}

/// keygate and the application it protects, in one actix-web server: keygate's middleware
/// (sessions, security headers, error pages) around keygate's routes (login, logout, token,
/// admin) and the application's.
///
/// ```no_run
/// use actix_web::{web, HttpResponse};
/// use keygate::{CurrentUser, Keygate};
///
/// async fn hello(user: CurrentUser) -> HttpResponse {
///     HttpResponse::Ok().body(format!("Hello, {}", user.user().username))
/// }
///
/// # async fn start() -> anyhow::Result<()> {
/// Keygate::from_env()?
///     .nav_link("Hello", "/hello")
///     .mount("/hello", |scope| scope.route("", web::get().to(hello)))
///     .start()
///     .await?
///     .run()
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Keygate {
    settings: Settings,
    mounts: Vec<Mount>,
    nav_links: Vec<NavLink>,
    migrations: Vec<Migrations>,
    /// Mistakes found while assembling, reported together by `start` (a builder that returns
    /// `Result` at every step would make the chain unreadable).
    problems: Vec<String>,
}

impl Keygate {
    /// keygate configured by `settings`, with no application yet.
    pub fn new(settings: Settings) -> Self {
        Keygate {
            settings,
            mounts: vec![],
            nav_links: vec![],
            migrations: vec![],
            problems: vec![],
        }
    }

    /// keygate configured by the `KEYGATE_*` environment variables (see the README).
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self::new(Settings::from_env()?))
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Mounts the application's routes under `prefix`: `routes` gets the `web::scope(prefix)`
    /// and returns it with routes, services, guards or middleware added (such as
    /// [`RequireRole`](crate::RequireRole)). The scope answers `prefix` itself and every path
    /// below it.
    ///
    /// With route rules (`KEYGATE_RULES`), a request the rules refuse never reaches these routes.
    ///
    /// `prefix` is a static path (`/notes`, `/api/notes`), not `/` and without `{}` segments.
    /// When it overlaps one of keygate's paths (`/login`, `/api/token`, `/admin`, …) or another
    /// mount, [`start`](Self::start) fails naming both. Paths under `/api/` get the JSON error
    /// contract; every other path gets pages.
    pub fn mount<F, T, B>(mut self, prefix: &str, routes: F) -> Self
    where
        F: Fn(Scope) -> Scope<T> + Send + Sync + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        if let Err(why) = self.check_prefix(prefix) {
            self.problems.push(why);
        }
        let owned = prefix.to_string();
        self.mounts.push(Mount {
            prefix: Some(owned.clone()),
            configure: Arc::new(move |cfg, gated| {
                if gated {
                    // The application's scope sits inside one that applies the rules first.
                    cfg.service(
                        web::scope(&owned)
                            .wrap(from_fn(rules_gate))
                            .service(routes(web::scope(""))),
                    );
                } else {
                    cfg.service(routes(web::scope(&owned)));
                }
            }),
        });
        self
    }

    /// Shares `data` with the application's handlers, as `App::app_data` does (wrap it in
    /// `web::Data` to extract it as `web::Data<T>`).
    pub fn app_data<U: Clone + Send + Sync + 'static>(mut self, data: U) -> Self {
        self.mounts.push(Mount {
            prefix: None,
            configure: Arc::new(move |cfg, _| {
                cfg.app_data(data.clone());
            }),
        });
        self
    }

    /// Adds a link to the nav of every [`Page`](crate::Page) and of keygate's home page, in the
    /// order added.
    pub fn nav_link(mut self, label: &str, href: &str) -> Self {
        self.nav_links.push(NavLink {
            label: label.to_string(),
            href: href.to_string(),
        });
        self
    }

    /// Registers the application's own embedded migrations, applied after keygate's at start
    /// and by `keygate migrate`.
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations.push(migrations);
        self
    }

    /// Applies keygate's migrations and then the application's, and returns: the `migrate`
    /// command.
    pub async fn migrate(self) -> anyhow::Result<()> {
        let pool = store::connect(&self.settings.database_url)?;
        let migrations = self.migrations;
        tokio::task::spawn_blocking(move || store::migrate(&pool, &migrations)).await?
    }

    /// Checks the Keycloak side of the configuration through the admin API and prints one line
    /// per check (the `doctor` command); `Ok(true)` when no required check failed.
    pub async fn doctor(&self) -> anyhow::Result<bool> {
        super::server::doctor(&self.settings).await
    }

    /// Checks the mounts, migrates the database, and starts listening on `KEYGATE_BIND`.
    pub async fn start(self) -> anyhow::Result<Server> {
        if !self.problems.is_empty() {
            anyhow::bail!("{}", self.problems.join("; "));
        }
        Server::start(Parts {
            settings: self.settings,
            mounts: self.mounts.into(),
            nav_links: self.nav_links,
            migrations: self.migrations,
        })
        .await
    }

    /// Why `prefix` cannot be mounted, naming what it collides with.
    fn check_prefix(&self, prefix: &str) -> Result<(), String> {
        let static_path = prefix.starts_with('/')
            && prefix.len() > 1
            && !prefix.ends_with('/')
            && prefix[1..].split('/').all(|s| {
                !s.is_empty() && s != "." && s != ".." && !s.contains(['{', '}', '?', '#', '*'])
            });
        if !static_path {
            return Err(format!(
                "cannot mount the application at {prefix:?}: a mount point is a static path such \
                 as \"/notes\" (not \"/\", no trailing slash, no {{}} segments)"
            ));
        }
        if let Some(ours) = RESERVED.iter().find(|r| overlaps(prefix, r)) {
            return Err(format!(
                "the application's routes at {prefix} collide with keygate's {ours}; mount them \
                 elsewhere"
            ));
        }
        let mounted = self.mounts.iter().filter_map(|m| m.prefix.as_deref());
        if let Some(other) = mounted.into_iter().find(|m| overlaps(prefix, m)) {
            return Err(format!(
                "the application's routes at {prefix} collide with its own mount at {other}"
            ));
        }
        Ok(())
    }
}

/// True when one path is the other or lies below it, segment-wise (`/admin` covers
/// `/admin/users`, not `/administer`). `/` covers only itself.
fn overlaps(a: &str, b: &str) -> bool {
    let below = |inner: &str, outer: &str| {
        outer != "/"
            && inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    a == b || below(a, b) || below(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygate() -> Keygate {
        let settings = Settings::from_lookup(|k| match k {
            "KEYGATE_ISSUER_URL" => Some("http://127.0.0.1:1/realms/x".into()),
            "KEYGATE_CLIENT_ID" => Some("keygate".into()),
            "KEYGATE_CLIENT_SECRET" => Some("secret".into()),
            _ => None,
        })
        .unwrap();
        Keygate::new(settings)
    }

    fn problem(prefix: &str) -> Option<String> {
        keygate()
            .mount("/notes", |s| s)
            .mount(prefix, |s| s)
            .problems
            .into_iter()
            .next()
    }

    #[test]
    fn a_mount_point_may_not_overlap_keygates_paths_or_another_mount() {
        for ok in [
            "/api/notes",
            "/administer",
            "/loginx",
            "/tokens",
            "/app/admin",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        let cases = [
            ("/login", "keygate's /login"),
            ("/login/extra", "keygate's /login"),
            ("/api", "keygate's /api/token"),
            ("/api/me/more", "keygate's /api/me"),
            ("/admin/reports", "keygate's /admin"),
            ("/static", "keygate's /static"),
            ("/notes", "its own mount at /notes"),
            ("/notes/archive", "its own mount at /notes"),
        ];
        for (prefix, named) in cases {
            let why = problem(prefix).unwrap_or_else(|| panic!("{prefix} was accepted"));
            assert!(
                why.contains(prefix) && why.contains(named),
                "{prefix}: {why}"
            );
        }
        for bad in [
            "/",
            "",
            "notes",
            "/notes/",
            "/n/{id}",
            "/a//b",
            "/a/../login",
        ] {
            assert!(
                problem(bad).is_some_and(|w| w.contains("static path")),
                "{bad}"
            );
        }
    }
}
