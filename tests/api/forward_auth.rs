//! Forward-auth (`GET /auth`): asked directly as Traefik and Caddy ask, and behind a real nginx
//! with `auth_request` (the README's configuration), plus `rd` URLs on allowed hosts.

use serde_json::Value;

use crate::helpers::*;

const RULES: &str = r#"
[[rules]]
prefix = "/public/"
access = "public"

[[rules]]
prefix = "/reports/"
access = "role:keygate-admin"
"#;

async fn auth_app(extra: Vec<(&'static str, String)>) -> (TestApp, tempfile::TempDir) {
    let (dir, rules) = rules_file(RULES);
    let mut vars = vec![rules];
    vars.extend(extra);
    let app = spawn_app_with(AppOptions {
        extra: vars,
        ..Default::default()
    })
    .await;
    (app, dir)
}

/// `GET /auth` about `url` (as nginx sends it), from `client`.
async fn ask(
    client: &reqwest::Client,
    app: &TestApp,
    method: &str,
    url: &str,
) -> reqwest::Response {
    client
        .get(app.url("/auth"))
        .header("X-Original-URL", url)
        .header("X-Original-Method", method)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn auth_answers_who_may_see_the_original_url() {
    let (app, _dir) = auth_app(vec![]).await;
    let anonymous = ask(
        &app.client,
        &app,
        "GET",
        "https://app.example.com/docs?page=2",
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    let login = anonymous.headers()["x-keygate-login"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        login,
        format!(
            "{}/login?rd=https%3A%2F%2Fapp.example.com%2Fdocs%3Fpage%3D2",
            app.address
        )
    );
    let body = json(anonymous).await;
    assert_eq!(body["error"]["code"], "auth_redirect");
    assert_eq!(body["error"]["details"], login);
    let redirect = app
        .client
        .get(app.url("/auth?redirect=1"))
        .header("X-Forwarded-Uri", "/docs")
        .header("X-Forwarded-Host", "app.example.com")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        redirect.status(),
        302,
        "Traefik and Caddy hand this to the browser"
    );
    assert_eq!(location(&redirect), login.replace("%3Fpage%3D2", ""));
    assert_eq!(
        ask(&app.client, &app, "GET", "http://x/public/logo.png")
            .await
            .status(),
        200
    );

    app.login(("bob", "bob-password"), "/").await;
    let bob = ask(&app.client, &app, "GET", "http://x/docs").await;
    assert_eq!(bob.status(), 200);
    let h = bob.headers();
    assert_eq!(h["x-auth-request-user"], "bob");
    assert_eq!(h["x-auth-request-email"], "bob@example.com");
    assert_eq!(
        h["x-keygate-user-id"],
        user_id_of(&app.client, &app).await.to_string()
    );
    assert!(h.get("x-auth-request-access-token").is_none());
    let refused = ask(&app.client, &app, "GET", "http://x/reports/q3").await;
    assert_eq!(refused.status(), 403, "a signed-in user without the role");

    let token = demo_token(("alice", "alice-password")).await;
    let alice = reqwest::Client::new()
        .get(app.url("/auth"))
        .bearer_auth(&token)
        .header("X-Forwarded-Uri", "/reports/q3")
        .send()
        .await
        .unwrap();
    assert_eq!(alice.status(), 200);
    let groups = alice.headers()["x-auth-request-groups"].to_str().unwrap();
    assert!(groups.split(',').any(|g| g == "keygate-admin"), "{groups}");
}

#[actix_web::test]
async fn the_access_token_header_is_sent_when_configured() {
    let (app, _dir) = auth_app(vec![("KEYGATE_PASS_ACCESS_TOKEN", "true".into())]).await;
    app.login(("bob", "bob-password"), "/").await;
    let r = ask(&app.client, &app, "GET", "http://x/docs").await;
    let token = r.headers()["x-auth-request-access-token"].to_str().unwrap();
    assert_eq!(jwt_claims(token)["preferred_username"], "bob");
}

#[actix_web::test]
async fn rd_goes_back_to_allowed_hosts_only() {
    let app = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_ALLOWED_REDIRECT_HOSTS", "app.allowed.test".into())],
        ..Default::default()
    })
    .await;
    let cases = [
        (
            "https://app.allowed.test/reports?q=1",
            "https://app.allowed.test/reports?q=1",
        ),
        ("https://evil.test/", "/"),
        ("https://app.allowed.test.evil.test/", "/"),
        (
            &format!("{}/account/sessions", app.address),
            "/account/sessions",
        ),
    ];
    for (rd, wanted) in cases {
        let browser = browser();
        let start = format!("{}/login/keycloak?rd={}", app.address, urlencode(rd));
        let callback =
            keycloak_login_via(&browser, &start, ("bob", "bob-password"), &app.address).await;
        let done = browser.get(callback).send().await.unwrap();
        assert_eq!(done.status(), 303);
        assert_eq!(location(&done), wanted, "rd={rd}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn nginx_auth_request_in_front_of_an_application() {
    let upstream = spawn_upstream();
    let app_port: u16 = upstream
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let nginx_port = closed_port();
    let nginx_url = format!("http://127.0.0.1:{nginx_port}");
    let app = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_PUBLIC_URL", nginx_url.clone())],
        ..Default::default()
    })
    .await;
    let keygate_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = Nginx::start_on(nginx_port, |port, dir| {
        forward_auth_config(port, keygate_port, app_port, dir)
    })
    .await;
    assert_eq!(nginx.address, nginx_url);

    // Anonymous: to the login, and back to the original URL after it.
    let browser = browser();
    let original = format!("{nginx_url}/app/page?x=1&y=two");
    let first = browser.get(&original).send().await.unwrap();
    assert_eq!(first.status(), 302);
    let login = location(&first);
    assert_eq!(
        login,
        format!("{nginx_url}/login?rd={}", urlencode(&original))
    );
    let page = browser.get(&login).send().await.unwrap();
    assert_eq!(page.status(), 200, "keygate's login page, through nginx");
    let start = format!("{nginx_url}/login/keycloak?rd={}", urlencode(&original));
    let callback = keycloak_login_via(&browser, &start, ("bob", "bob-password"), &nginx_url).await;
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/app/page?x=1&y=two");

    // Signed in: the application sees who it is, and never the client's own claim.
    let seen: Value = browser
        .get(&original)
        .header("X-Auth-Request-User", "alice")
        .header("X-Auth-Request-Groups", "keygate-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["path"], "/app/page");
    assert_eq!(seen["headers"]["x-auth-request-user"], "bob");
    assert_eq!(seen["headers"]["x-auth-request-email"], "bob@example.com");
    let groups = seen["headers"]["x-auth-request-groups"].as_str().unwrap();
    assert!(!groups.contains("keygate-admin"), "{groups}");

    // A forged header without a session does not get through at all.
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&original)
        .header("X-Auth-Request-User", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 302);
}

#[actix_web::test]
async fn the_cookie_domain_setting_scopes_the_session_cookie_and_is_off_by_default() {
    let set_cookie = |r: &reqwest::Response| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("keygate_session="))
            .map(String::from)
            .expect("a session cookie")
    };
    let plain = spawn_app().await;
    let start = plain.get("/login/keycloak?next=/").await;
    assert!(
        !set_cookie(&start).to_lowercase().contains("domain="),
        "host-only by default"
    );

    let scoped = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_COOKIE_DOMAIN", "apps.example.test".into())],
        ..Default::default()
    })
    .await;
    let start = scoped.get("/login/keycloak?next=/").await;
    let cookie = set_cookie(&start);
    assert!(cookie.contains("Domain=apps.example.test"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}
