//! The browser's side: a cookie-keeping client that follows no redirects, the code flow through
//! Keycloak's login form, and reading answers (Location, CSRF tokens, query parameters, JSON).

use reqwest::redirect::Policy;
use serde_json::Value;

/// A client that behaves like a browser tab: keeps cookies, does not follow redirects (tests
/// follow them by hand to assert each hop).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
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
        .build()
        .expect("start URL");
    keycloak_login_via(client, start.url().as_str(), user, address).await
}

/// The same from the start URL `start` (a `/login/keycloak?…` of keygate, or of a proxy in front
/// of it); Keycloak must send the browser back to `address`'s callback.
pub async fn keycloak_login_via(
    client: &reqwest::Client,
    start: &str,
    user: (&str, &str),
    address: &str,
) -> String {
    let start = client.get(start).send().await.expect("start login");
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

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header on {} {}", r.status(), r.url()))
        .to_str()
        .expect("ascii location")
        .to_string()
}

/// The value of the hidden `csrf_token` input of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf_token\" value=\"")
        .expect("page has a CSRF token");
    let rest = &html[at + "name=\"csrf_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
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

pub async fn json(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("expected JSON ({status}): {text}"))
}

/// The `name=value` of the session cookie a response sets (`keygate_session`, or its `__Host-`
/// name on https), for tests that send cookies by hand.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("keygate_session=") || c.starts_with("__Host-keygate_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

/// The claims of a JWT, read without checking it (tests only look at what keygate handed out).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a compact JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}
