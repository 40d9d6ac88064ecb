//! Tokens to throw at keygate: Keycloak's password grant, the demo client's access token and the
//! realm's keys; and keygate's own `POST /api/token` and bearer-token requests.

use serde_json::Value;

use super::app::TestApp;
use super::env::issuer;

/// `POST /api/token` (login-from-cookie) from `client`, which holds some browser's cookies.
pub async fn token_request(client: &reqwest::Client, app: &TestApp) -> reqwest::Response {
    client
        .post(app.url("/api/token"))
        .json(&serde_json::json!({"process": "login-from-cookie"}))
        .send()
        .await
        .expect("POST /api/token")
}

/// `POST /api/token` from `app`'s browser (as a function, for `map` and `join_all`).
pub async fn post_token(app: &TestApp) -> reqwest::Response {
    app.post_token().await
}

/// `GET /api/me` with `Authorization: Bearer token`, no cookies.
pub async fn bearer_me(app: &TestApp, token: &str) -> reqwest::Response {
    app.bearer_get("/api/me", token).await
}

/// The access token of a password grant at keygate's demo client.
pub async fn demo_token(user: (&str, &str)) -> String {
    let grant = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), user).await;
    grant["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
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

/// The realm's published keys.
pub async fn realm_jwks() -> Value {
    reqwest::get(format!("{}/protocol/openid-connect/certs", issuer()))
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON")
}
