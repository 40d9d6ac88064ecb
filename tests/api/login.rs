//! The authorization-code flow through Keycloak's login form: sign-in and the local user; state,
//! nonce, PKCE and callback attacks; `next`; the session cookie; Keycloak or the database failing.

use serde_json::Value;

use crate::helpers::*;

#[actix_web::test]
async fn code_flow_signs_alice_in_and_creates_her_local_user() {
    let app = spawn_app().await;
    assert_eq!(app.user_count(), 0);

    let done = app.login(ALICE, "/after").await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/after");

    let me = app.me().await;
    assert_eq!(me.status(), 200);
    let me = json(me).await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["first_name"], "Alice");
    let accounts = me["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["provider"], "keycloak");

    // The social account is keyed by Keycloak's subject, which is alice's Keycloak user id.
    let admin = RealmAdmin::connect().await;
    assert_eq!(accounts[0]["uid"], admin.user_id("alice").await.as_str());
    assert_eq!(app.user_count(), 1);
    assert_eq!(count(&mut app.conn(), "social_accounts"), 1);

    // extra_data holds the claims of this login, sid included (for back-channel logout).
    let extra: String = {
        use diesel::prelude::*;
        use keygate::testing::schema::social_accounts::dsl::*;
        social_accounts
            .select(extra_data)
            .first(&mut app.conn())
            .expect("extra_data")
    };
    let extra: Value = serde_json::from_str(&extra).expect("extra_data is JSON");
    assert_eq!(extra["preferred_username"], "alice");
    assert!(
        extra["sid"].is_string(),
        "claims keep Keycloak's sid: {extra}"
    );
}

#[actix_web::test]
async fn the_home_page_shows_who_is_signed_in() {
    let app = spawn_app().await;
    let anonymous = app.page("/").await;
    assert!(anonymous.contains("You are not signed in"));
    app.login(BOB, "/").await;
    let home = app.page("/").await;
    assert!(home.contains("id=\"username\">bob<"), "{home}");
}

#[actix_web::test]
async fn a_second_login_of_one_subject_reuses_its_user() {
    let app = spawn_app().await;
    app.login(BOB, "/").await;
    let first = json(app.me().await).await;

    // A new browser, same Keycloak user.
    let other = browser();
    let cb = keycloak_login_until_callback(&other, &app.address, BOB, "/").await;
    let r = other.get(cb).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let second: Value = other
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.user_count(), 1);
    assert_eq!(count(&mut app.conn(), "social_accounts"), 1);
    assert_eq!(app.session_count(), 2);
}

/// Session fixation: a session key (and the CSRF token in it) planted in the victim's browser
/// before sign-in must be worth nothing after it.
#[actix_web::test]
async fn a_planted_session_and_its_csrf_token_are_dead_after_sign_in() {
    let app = spawn_app().await;
    let page = app.get("/register").await;
    let planted = session_cookie(&page);
    let planted_csrf = csrf_of(&page.text().await.unwrap());

    let signed_in = session_cookie(&app.login(ALICE, "/").await);
    assert_ne!(signed_in, planted, "sign-in issues a new session key");
    let with_planted = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", &planted)
        .send()
        .await
        .unwrap();
    assert_eq!(with_planted.status(), 401, "the planted key is dead");
    let r = app.post_logout(&planted_csrf).await;
    assert_eq!(
        r.status(),
        403,
        "the planted CSRF token is not the signed-in session's"
    );
    assert_eq!(app.me().await.status(), 200, "nothing was signed out");
}

#[actix_web::test]
async fn api_me_without_a_session_is_a_401_with_the_login_url() {
    let app = spawn_app().await;
    let r = app.me().await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="keygate""#);
    let body = json(r).await;
    assert_eq!(body["error"]["code"], "auth_redirect");
    let details = body["error"]["details"].as_str().expect("details");
    assert_eq!(details, format!("{}/login/keycloak?next=%2F", app.address));
    // Following it really starts a login.
    let start = app.client.get(details).send().await.unwrap();
    assert_eq!(start.status(), 303);
    assert!(location(&start).starts_with(&issuer()));
    // Nothing was written for the anonymous request.
    assert_eq!(
        app.session_count(),
        1,
        "only the started login has a session"
    );
}

#[actix_web::test]
async fn the_login_redirect_carries_state_nonce_and_pkce() {
    let app = spawn_app().await;
    let r = app.get("/login/keycloak?next=/x").await;
    assert_eq!(r.status(), 303);
    let url = url::Url::parse(&location(&r)).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "keygate");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["code_challenge"].len() >= 43);
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert_eq!(q["redirect_uri"], format!("{}/login/callback", app.address));
}

#[actix_web::test]
async fn a_wrong_state_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let callback = app.login_until_callback(ALICE, "/").await;
    let forged = with_param(&callback, "state", "forged");
    let r = app.client.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("does not match a sign-in started in this browser"),
        "{page}"
    );
    assert_eq!(app.user_count(), 0);
    assert_eq!(app.me().await.status(), 401);
}

#[actix_web::test]
async fn a_callback_naming_another_issuer_is_refused() {
    let app = spawn_app().await;
    let callback = app.login_until_callback(ALICE, "/").await;
    assert!(
        callback.contains("&iss=") || callback.contains("?iss="),
        "Keycloak sends iss (RFC 9207)"
    );
    let forged = with_param(&callback, "iss", "https://evil.example/realms/x");
    let r = app.client.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.user_count(), 0);
    // The genuine response still works: the forged one consumed nothing.
    assert_eq!(
        app.client.get(&callback).send().await.unwrap().status(),
        303
    );
}

#[actix_web::test]
async fn a_callback_from_another_browser_is_refused() {
    let app = spawn_app().await;
    let callback = app.login_until_callback(ALICE, "/").await;
    // An attacker's browser has no pending login: login CSRF fails.
    let r = browser().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn a_replayed_callback_is_refused() {
    let app = spawn_app().await;
    let callback = app.login_until_callback(ALICE, "/").await;
    assert_eq!(
        app.client.get(&callback).send().await.unwrap().status(),
        303
    );
    let again = app.client.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(app.user_count(), 1);
}

#[actix_web::test]
async fn an_error_from_keycloak_is_a_clear_400_page() {
    let app = spawn_app().await;
    let r = app
        .get("/login/callback?error=access_denied&error_description=%3Cscript%3E&state=x")
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("cancelled or denied"), "{page}");
    // Other errors name Keycloak's error code on the page: escaped, never markup.
    let r = app
        .get("/login/callback?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state=x")
        .await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("could not sign you in (") && page.contains("alert(1)"),
        "the code is shown: {page}"
    );
    assert!(
        !page.contains("<script>alert"),
        "provider text must be escaped"
    );
    let missing = app.get("/login/callback").await;
    assert_eq!(missing.status(), 400);
    assert_eq!(app.session_count(), 0);
}

#[actix_web::test]
async fn a_foreign_next_url_falls_back_to_home() {
    let app = spawn_app().await;
    let done = app.login(ALICE, "https://evil.example/steal").await;
    assert_eq!(location(&done), "/");
    let app2 = spawn_app().await;
    let done = app2.login(ALICE, "//evil.example").await;
    assert_eq!(location(&done), "/");
}

#[actix_web::test]
async fn a_tampered_session_cookie_counts_as_no_session() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let url = reqwest::Url::parse(&app.address).unwrap();
    let jar = reqwest::cookie::Jar::default();
    jar.add_cookie_str("keygate_session=AAAAtampered%2Fvalue", &url);
    let client = reqwest::Client::builder()
        .cookie_provider(std::sync::Arc::new(jar))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json(r).await["error"]["code"], "auth_redirect");
    let page = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

#[actix_web::test]
async fn keycloak_down_is_a_503_page_and_keygate_recovers_when_it_returns() {
    let mut proxy = FaultProxy::start().await;
    let app = spawn_app_with(AppOptions {
        issuer: proxy.issuer(),
        ..Default::default()
    })
    .await;
    proxy.cut();

    let r = app.get("/login/keycloak?next=/").await;
    assert_eq!(r.status(), 503);
    let page = r.text().await.unwrap();
    assert!(page.contains("Identity provider unreachable"), "{page}");
    // Other pages keep working.
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/healthz").await.status(), 200);

    proxy.restore().await;
    // A failed probe stands for up to 2 s.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.get("/login/keycloak?next=/").await;
    assert_eq!(r.status(), 303, "keygate should recover without a restart");

    // Down again while discovery is cached: no browser is sent to a dead login page.
    proxy.cut();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app.get("/login/keycloak?next=/").await;
    assert_eq!(
        r.status(),
        503,
        "not a redirect to Keycloak while it is down"
    );
    proxy.restore().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let callback = keycloak_login_until_callback(&app.client, &app.address, ALICE, "/").await;

    // Keycloak goes down between its login page and the code exchange.
    proxy.cut();
    let r = app.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        app.user_count(),
        0,
        "nothing is written when the exchange fails"
    );
    proxy.restore().await;
}

#[actix_web::test]
async fn unknown_pages_and_bad_query_strings_are_clear_errors() {
    let app = spawn_app().await;
    assert_eq!(app.get("/nope").await.status(), 404);
    let api = app.get("/api/nope").await;
    assert_eq!(api.status(), 404);
    assert_eq!(json(api).await["error"]["code"], "not_found");
    // A query the callback cannot read (a parameter twice) is a 400 page that says so.
    let r = app.get("/login/callback?code=a&code=b&state=x").await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("malformed parameters"), "{page}");
}

#[actix_web::test]
async fn pages_send_security_headers_and_session_cookies_are_httponly_lax() {
    let app = spawn_app().await;
    let r = app.get("/login/keycloak?next=/").await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("keygate_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    let home = app.get("/").await;
    let csp = home.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(home.headers()["x-frame-options"], "DENY");
}

#[actix_web::test]
async fn code_flow_works_on_postgres_too() {
    let app = spawn_app_with(AppOptions {
        db: Db::Postgres,
        ..Default::default()
    })
    .await;
    let done = app.login(ALICE, "/").await;
    assert_eq!(done.status(), 303);
    assert_eq!(json(app.me().await).await["username"], "alice");
    assert_eq!(app.user_count(), 1);
    assert_eq!(app.session_count(), 1);
}

#[actix_web::test]
async fn a_database_failure_is_a_clear_500_and_keygate_keeps_serving() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("DROP TABLE sessions")
            .execute(&mut app.conn())
            .unwrap();
    }
    // Signed-in sessions are served from memory for up to 2 s; then the store is asked again.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let page = app.get("/").await;
    assert_eq!(page.status(), 500);
    let body = page.text().await.unwrap();
    assert!(body.contains("Something went wrong"), "{body}");
    assert!(!body.to_lowercase().contains("sql"), "no internals: {body}");
    let api = app.me().await;
    assert_eq!(api.status(), 500);
    assert_eq!(json(api).await["error"]["code"], "internal_error");
    // Requests without that session keep working.
    let other = browser();
    assert_eq!(
        other
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Other bare errors get pages too: a wrong method.
    let wrong = other.delete(app.url("/login")).send().await.unwrap();
    assert!(wrong.status().is_client_error());
    assert!(wrong.text().await.unwrap().contains("<html"));
}
