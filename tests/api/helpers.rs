//! Test harness: the real keygate on a free port, a fresh SQLite file (or PostgreSQL database) per
//! test, and the real Keycloak started by `./scripts/keycloak.sh start`.

use std::collections::HashMap;
use std::sync::Once;

use keygate::db::{DbConn, Pool};
use keygate::settings::Settings;
use keygate::startup::{AppState, Application};
use reqwest::redirect::Policy;
use serde_json::Value;

pub const ALICE: (&str, &str) = ("alice", "alice-password");
pub const BOB: (&str, &str) = ("bob", "bob-password");

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn issuer() -> String {
    env_or("KEYGATE_ISSUER_URL", "http://127.0.0.1:8180/realms/keygate")
}

pub fn keycloak_base() -> String {
    env_or("KEYCLOAK_ADMIN_URL", "http://127.0.0.1:8180")
}

static LOGGER: Once = Once::new();

/// Fails loudly, with how to fix it, when Keycloak is not there.
pub async fn require_keycloak() {
    LOGGER.call_once(|| {
        let _ = env_logger::builder()
            .is_test(true)
            .parse_filters(&env_or("RUST_LOG", "warn"))
            .try_init();
    });
    let url = format!("{}/.well-known/openid-configuration", issuer());
    let ok = reqwest::get(&url)
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    assert!(
        ok,
        "Keycloak is not answering at {url}.\nThese tests run against a real Keycloak: start it \
         with `./scripts/keycloak.sh start` (or run everything with `./scripts/test.sh`)."
    );
}

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
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            db: Db::Sqlite,
            issuer: issuer(),
            extra: vec![],
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    require_keycloak().await;
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
    for (k, v) in opts.extra {
        vars.insert(k.to_string(), v);
    }
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings");
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let app_state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: browser(),
        app_state,
        _dir: dir,
    }
}

/// A client that behaves like a browser tab: keeps cookies, does not follow redirects (tests
/// follow them by hand to assert each hop).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
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
        keygate::crypto::random_token(6)
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

pub fn count(conn: &mut DbConn, table: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(conn)
        .expect("count")
        .n
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header on {} {}", r.status(), r.url()))
        .to_str()
        .expect("ascii location")
        .to_string()
}

/// The local user id of the browser `client`, from `/api/me`.
pub async fn user_id_of(client: &reqwest::Client, app: &TestApp) -> i64 {
    let me: Value = client
        .get(app.url("/api/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("me json");
    me["id"].as_i64().expect("user id")
}

/// `POST /api/token` (login-from-cookie) from `client`, which holds some browser's cookies.
pub async fn token_request(client: &reqwest::Client, app: &TestApp) -> reqwest::Response {
    client
        .post(app.url("/api/token"))
        .json(&serde_json::json!({"process": "login-from-cookie"}))
        .send()
        .await
        .expect("POST /api/token")
}

/// The access token of a password grant at keygate's demo client.
pub async fn demo_token(user: (&str, &str)) -> String {
    let grant = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), user).await;
    grant["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// Drives `client` through keygate's start URL and Keycloak's login page.
pub async fn keycloak_login_until_callback(
    client: &reqwest::Client,
    address: &str,
    user: (&str, &str),
    next: &str,
) -> String {
    let start = client
        .get(format!("{address}/login/keycloak"))
        .query(&[("next", next)])
        .send()
        .await
        .expect("start login");
    assert_eq!(
        start.status(),
        303,
        "login start should redirect to Keycloak"
    );
    let auth_url = location(&start);
    let page = client
        .get(&auth_url)
        .send()
        .await
        .expect("Keycloak auth page");
    if page.status() == 302 {
        // An SSO session at Keycloak from an earlier login in this browser: no form.
        let callback = location(&page);
        assert!(
            callback.starts_with(&format!("{address}/login/callback?")),
            "Keycloak redirected to {callback}"
        );
        return callback;
    }
    assert_eq!(page.status(), 200, "Keycloak login page for {auth_url}");
    let html = page.text().await.expect("login page html");
    let action = form_action(&html).expect("Keycloak login form action");
    let submitted = client
        .post(&action)
        .form(&[
            ("username", user.0),
            ("password", user.1),
            ("credentialId", ""),
        ])
        .send()
        .await
        .expect("submit Keycloak login form");
    assert_eq!(
        submitted.status(),
        302,
        "Keycloak should accept {}'s credentials and redirect back",
        user.0
    );
    let callback = location(&submitted);
    assert!(
        callback.starts_with(&format!("{address}/login/callback?")),
        "Keycloak redirected to {callback}"
    );
    callback
}

/// The `action` of Keycloak's login form, HTML entities undone.
fn form_action(html: &str) -> Option<String> {
    let form_at = html.find("id=\"kc-form-login\"")?;
    let form_start = html[..form_at].rfind("<form")?;
    let rest = &html[form_start..];
    let a = rest.find("action=\"")? + "action=\"".len();
    let end = rest[a..].find('"')?;
    Some(rest[a..a + end].replace("&amp;", "&"))
}

pub async fn json(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("expected JSON ({status}): {text}"))
}

/// Keycloak's admin REST API, as the master realm's bootstrap admin.
pub struct KeycloakAdmin {
    http: reqwest::Client,
    token: String,
    pub realm_url: String,
}

impl KeycloakAdmin {
    pub async fn connect() -> Self {
        let base = keycloak_base();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!(
                "{base}/realms/master/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", &env_or("KEYCLOAK_ADMIN_USER", "admin")),
                ("password", &env_or("KEYCLOAK_ADMIN_PASSWORD", "admin")),
            ])
            .send()
            .await
            .expect("master token")
            .json()
            .await
            .expect("master token json");
        let realm = issuer().rsplit('/').next().unwrap_or("keygate").to_string();
        KeycloakAdmin {
            http,
            token: token["access_token"]
                .as_str()
                .expect("admin access token")
                .to_string(),
            realm_url: format!("{base}/admin/realms/{realm}"),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.realm_url, path))
            .bearer_auth(&self.token)
    }

    pub async fn user_id(&self, username: &str) -> String {
        let users: Value = self
            .request(reqwest::Method::GET, "/users")
            .query(&[("username", username), ("exact", "true")])
            .send()
            .await
            .expect("find user")
            .json()
            .await
            .expect("users json");
        users[0]["id"].as_str().expect("user id").to_string()
    }
}

/// A Keycloak user made for one test, so tests that sign users out of Keycloak or change them do
/// not disturb each other.
pub struct TestUser {
    pub username: String,
    pub password: String,
    pub id: String,
}

impl TestUser {
    pub fn creds(&self) -> (&str, &str) {
        (&self.username, &self.password)
    }
}

/// A copy of the `keygate` client with its own id and a short access-token lifespan.
pub struct TestClient {
    pub client_id: String,
    pub secret: String,
    pub uuid: String,
}

/// The value of the hidden `csrf_token` input of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("page has a CSRF token");
    let rest = &html[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A unique lowercase name for things a test creates.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        keygate::crypto::random_token(6)
            .to_lowercase()
            .replace(['-', '_'], "x")
    )
}

impl KeycloakAdmin {
    pub async fn create_user(&self, prefix: &str) -> TestUser {
        self.create_user_with(prefix, None, true).await
    }

    /// A user with a chosen email (default `<username>@example.com`) and verification state.
    pub async fn create_user_with(
        &self,
        prefix: &str,
        email: Option<&str>,
        email_verified: bool,
    ) -> TestUser {
        let username = format!(
            "{prefix}-{}",
            keygate::crypto::random_token(6)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let password = "test-password-1".to_string();
        let email = email
            .map(String::from)
            .unwrap_or_else(|| format!("{username}@example.com"));
        let r = self
            .request(reqwest::Method::POST, "/users")
            .json(&serde_json::json!({
                "username": username, "enabled": true,
                "email": email, "emailVerified": email_verified,
                "firstName": "Test", "lastName": prefix,
                "credentials": [{"type": "password", "value": password, "temporary": false}],
            }))
            .send()
            .await
            .expect("create user");
        let id = created_id(r, "user").await;
        TestUser {
            username,
            password,
            id,
        }
    }

    pub async fn logout_user(&self, id: &str) {
        let r = self
            .request(reqwest::Method::POST, &format!("/users/{id}/logout"))
            .send()
            .await
            .expect("logout user");
        assert!(r.status().is_success(), "logout user: {}", r.status());
    }

    /// Refresh-token rotation (a refresh token works once) and stored refresh events.
    pub async fn enable_rotation_and_events(&self) {
        self.update_realm(serde_json::json!({
            "revokeRefreshToken": true, "refreshTokenMaxReuse": 0, "eventsEnabled": true,
            "enabledEventTypes": ["LOGIN", "LOGIN_ERROR", "CODE_TO_TOKEN", "REFRESH_TOKEN",
                                  "REFRESH_TOKEN_ERROR", "LOGOUT"],
        }))
        .await;
    }

    /// Changes realm settings (a partial representation: only the given fields change).
    pub async fn update_realm(&self, patch: Value) {
        let r = self
            .request(reqwest::Method::PUT, "")
            .json(&patch)
            .send()
            .await
            .expect("update realm");
        assert!(r.status().is_success(), "update realm: {}", r.status());
    }

    /// Merges `attributes` into a client's attributes.
    pub async fn set_client_attributes(&self, uuid: &str, attributes: Value) {
        let mut rep: Value = self
            .request(reqwest::Method::GET, &format!("/clients/{uuid}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (k, v) in attributes.as_object().expect("attributes object") {
            rep["attributes"][k] = v.clone();
        }
        let r = self
            .request(reqwest::Method::PUT, &format!("/clients/{uuid}"))
            .json(&rep)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "update client: {}", r.status());
    }

    pub async fn find_users(&self, username: &str) -> Vec<Value> {
        let v: Value = self
            .request(reqwest::Method::GET, "/users")
            .query(&[("username", username), ("exact", "true")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// Clones the `keygate` client under a new id with access tokens living `lifespan` seconds.
    pub async fn short_lived_client(&self, lifespan: u32) -> TestClient {
        let list: Value = self
            .request(reqwest::Method::GET, "/clients")
            .query(&[("clientId", "keygate")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut rep = list[0].clone();
        let client_id = format!(
            "keygate-t-{}",
            keygate::crypto::random_token(6)
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let secret = format!("secret-{client_id}");
        let obj = rep.as_object_mut().expect("client representation");
        obj.remove("id");
        obj.insert("clientId".into(), client_id.clone().into());
        obj.insert("secret".into(), secret.clone().into());
        obj.insert("serviceAccountsEnabled".into(), false.into());
        let attrs = obj
            .entry("attributes")
            .or_insert_with(|| serde_json::json!({}));
        attrs["access.token.lifespan"] = lifespan.to_string().into();
        if let Some(a) = attrs.as_object_mut() {
            a.remove("backchannel.logout.url");
        }
        if let Some(Value::Array(mappers)) = obj.get_mut("protocolMappers") {
            for m in mappers.iter_mut() {
                if let Some(m) = m.as_object_mut() {
                    m.remove("id");
                }
            }
        }
        let r = self
            .request(reqwest::Method::POST, "/clients")
            .json(&rep)
            .send()
            .await
            .expect("create client");
        let uuid = created_id(r, "client").await;
        TestClient {
            client_id,
            secret,
            uuid,
        }
    }

    /// Keycloak's stored events of `kind` for a client.
    pub async fn events(&self, kind: &str, client: &str) -> Vec<Value> {
        let v: Value = self
            .request(reqwest::Method::GET, "/events")
            .query(&[("type", kind), ("client", client), ("max", "1000")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }
}

/// Keycloak's password grant, straight at the token endpoint (for tokens to throw at keygate).
pub async fn password_grant(
    issuer: &str,
    client_id: &str,
    secret: Option<&str>,
    user: (&str, &str),
) -> Value {
    let mut form = vec![
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", user.0),
        ("password", user.1),
        ("scope", "openid"),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    let r = reqwest::Client::new()
        .post(format!("{issuer}/protocol/openid-connect/token"))
        .form(&form)
        .send()
        .await
        .expect("password grant");
    let status = r.status();
    let v: Value = r.json().await.expect("token json");
    assert!(status.is_success(), "password grant for {client_id}: {v}");
    v
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

/// The realm's published keys.
pub async fn realm_jwks() -> Value {
    reqwest::get(format!("{}/protocol/openid-connect/certs", issuer()))
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON")
}

/// `(kind, user_id, actor_id)` of every audit event, oldest first.
pub fn audit_kinds(app: &TestApp) -> Vec<(String, Option<i64>, Option<i64>)> {
    use diesel::prelude::*;
    use keygate::schema::audit_events::dsl::*;
    audit_events
        .order(id.asc())
        .select((kind, user_id, actor_id))
        .load(&mut app.conn())
        .expect("audit events")
}

pub fn assert_audited(app: &TestApp, wanted: &str) {
    assert!(
        audit_kinds(app).iter().any(|(k, _, _)| k == wanted),
        "the audit log has a {wanted} event"
    );
}

/// `url` with query parameter `name` set to `value`.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).expect("URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// The id at the end of a 201's Location header (Keycloak's admin API).
pub async fn created_id(r: reqwest::Response, what: &str) -> String {
    if r.status() != 201 {
        panic!(
            "create {what}: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    location(&r).rsplit('/').next().expect("id").to_string()
}
