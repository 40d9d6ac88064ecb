//! The app under test: `spawn_app` starts the real keygate on a free port with a fresh SQLite file
//! or PostgreSQL database; `TestApp` is its address, a browser tab, its state and its database.

use std::collections::HashMap;

use keygate::testing::AppState;
use keygate::Keygate;
use keygate::Settings;
use keygate::{DbConn, Pool};

use super::browser::{browser, keycloak_login_until_callback};
use super::db::{count, user_id_of};
use super::env::{env_or, issuer, require_keycloak};
use super::realm::TestClient;
use super::tokens::token_request;

pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app_state: std::sync::Arc<AppState>,
    _dir: tempfile::TempDir,
}

pub struct AppOptions {
    pub db: Db,
    pub issuer: String,
    pub extra: Vec<(&'static str, String)>,
    /// Adds an application to keygate, as an embedding binary does (the notes example's
    /// `install`, or a test's probe routes).
    pub assemble: fn(Keygate) -> Keygate,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            db: Db::Sqlite,
            issuer: issuer(),
            extra: vec![],
            assemble: |keygate| keygate,
        }
    }
}

/// Two instances sharing one SQLite database and one session secret, like two replicas behind a
/// load balancer; `options` is called once for each.
pub async fn spawn_pair(options: impl Fn() -> AppOptions) -> (TestApp, TestApp) {
    let secret = keygate::testing::random_token(64);
    let mut first_options = options();
    first_options
        .extra
        .push(("KEYGATE_SESSION_SECRET", secret.clone()));
    let first = spawn_app_with(first_options).await;
    let mut second_options = options();
    second_options.extra.extend([
        ("KEYGATE_SESSION_SECRET", secret),
        (
            "KEYGATE_DATABASE_URL",
            first.app_state.settings.database_url.clone(),
        ),
    ]);
    (first, spawn_app_with(second_options).await)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    require_keycloak().await;
    let (settings, dir) = test_settings(&opts);
    let app = (opts.assemble)(Keygate::new(settings))
        .start()
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let app_state = app.state();
    tokio::spawn(app.run());
    TestApp {
        address,
        client: browser(),
        app_state,
        _dir: dir,
    }
}

/// A rules file (`KEYGATE_RULES`) with `text`, in a directory the caller keeps alive.
pub fn rules_file(text: &str) -> (tempfile::TempDir, (&'static str, String)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, text).expect("rules file");
    (dir, ("KEYGATE_RULES", path.to_string_lossy().into_owned()))
}

/// The settings of a test app (port 0, a fresh database, the demo realm), and the temporary
/// directory its SQLite file lives in.
pub fn test_settings(opts: &AppOptions) -> (Settings, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match opts.db {
        Db::Sqlite => dir.path().join("keygate.db").to_string_lossy().into_owned(),
        Db::Postgres => fresh_postgres_database(),
    };
    let mut vars: HashMap<String, String> = HashMap::from([
        ("KEYGATE_BIND".into(), "127.0.0.1:0".into()),
        ("KEYGATE_DATABASE_URL".into(), database_url),
        ("KEYGATE_ISSUER_URL".into(), opts.issuer.clone()),
        (
            "KEYGATE_CLIENT_ID".into(),
            env_or("KEYGATE_CLIENT_ID", "keygate"),
        ),
        (
            "KEYGATE_CLIENT_SECRET".into(),
            env_or("KEYGATE_CLIENT_SECRET", "keygate-dev-secret"),
        ),
    ]);
    for (k, v) in &opts.extra {
        vars.insert(k.to_string(), v.clone());
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings");
    (settings, dir)
}

/// A new PostgreSQL database for one test, on the server of `KEYGATE_TEST_POSTGRES_URL`.
pub fn fresh_postgres_database() -> String {
    use diesel::{Connection, RunQueryDsl};
    let admin_url = std::env::var("KEYGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "KEYGATE_TEST_POSTGRES_URL is not set. The PostgreSQL tests need a server: run \
             `./scripts/postgres.sh start` and export KEYGATE_TEST_POSTGRES_URL=$(./scripts/postgres.sh url) \
             (./scripts/test.sh does both)."
        )
    });
    let mut conn = diesel::pg::PgConnection::establish(&admin_url)
        .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
    let name = format!(
        "keygate_t_{}",
        keygate::testing::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("postgres url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn pool(&self) -> &Pool {
        &self.app_state.pool
    }

    pub fn conn(&self) -> r2d2::PooledConnection<diesel::r2d2::ConnectionManager<DbConn>> {
        self.pool().get().expect("db connection")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// The full authorization-code flow over HTTP: keygate → Keycloak's login form → callback.
    /// Returns the callback's response (a redirect to `next` on success).
    pub async fn login(&self, user: (&str, &str), next: &str) -> reqwest::Response {
        let callback = self.login_until_callback(user, next).await;
        self.client.get(callback).send().await.expect("callback")
    }

    /// Runs the flow up to, but not including, the callback; returns the callback URL.
    pub async fn login_until_callback(&self, user: (&str, &str), next: &str) -> String {
        keycloak_login_until_callback(&self.client, &self.address, user, next).await
    }

    /// Another browser, signed in as `user` through the code flow; with its local user id.
    pub async fn other_browser(&self, user: (&str, &str)) -> (reqwest::Client, i64) {
        let client = browser();
        let callback = keycloak_login_until_callback(&client, &self.address, user, "/").await;
        let done = client.get(callback).send().await.expect("callback");
        assert_eq!(done.status(), 303, "{} signs in", user.0);
        let id = user_id_of(&client, self).await;
        (client, id)
    }

    /// `POST /logout` from this app's browser with `csrf` as the form's token.
    pub async fn post_logout(&self, csrf: &str) -> reqwest::Response {
        self.client
            .post(self.url("/logout"))
            .form(&[("csrf_token", csrf)])
            .send()
            .await
            .expect("logout")
    }

    /// `POST /api/token` (login-from-cookie) from this app's browser.
    pub async fn post_token(&self) -> reqwest::Response {
        token_request(&self.client, self).await
    }

    /// `GET path` with `Authorization: Bearer token`, no cookies.
    pub async fn bearer_get(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("bearer request")
    }

    /// The body of `GET path` from this app's browser.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("page body")
    }

    pub async fn me(&self) -> reqwest::Response {
        self.get("/api/me").await
    }

    pub fn user_count(&self) -> i64 {
        count(&mut self.conn(), "users")
    }

    pub fn session_count(&self) -> i64 {
        count(&mut self.conn(), "sessions")
    }
}

/// Options for an app that uses a test client (and, usually, no leeway).
pub fn client_options(c: &TestClient) -> AppOptions {
    AppOptions {
        extra: vec![
            ("KEYGATE_CLIENT_ID", c.client_id.clone()),
            ("KEYGATE_CLIENT_SECRET", c.secret.clone()),
            ("KEYGATE_AUDIENCE", "keygate".into()),
            ("KEYGATE_LEEWAY_SECONDS", "0".into()),
        ],
        ..Default::default()
    }
}
