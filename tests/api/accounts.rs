//! Registration, password login, logout, back-channel logout and the linking policy.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::proxy::FaultProxy;

async fn register_form(app: &TestApp) -> String {
    let page = app.get("/register").await;
    assert_eq!(page.status(), 200);
    csrf_of(&page.text().await.unwrap())
}

async fn post_register(
    app: &TestApp,
    csrf: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf),
            ("username", username),
            ("email", &format!("{username}@example.org")),
            ("first_name", "New"),
            ("last_name", "Person"),
            ("password", password),
            ("password2", password),
        ])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn registration_creates_the_user_in_keycloak_and_locally_and_they_can_sign_in() {
    let app = spawn_app().await;
    let admin = KeycloakAdmin::connect().await;
    let username = unique("reg");
    let csrf = register_form(&app).await;
    let r = post_register(&app, &csrf, &username, "a-good-password").await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(
        to.starts_with("/login/keycloak?next=%2F&login_hint="),
        "{to}"
    );

    let in_keycloak = admin.find_users(&username).await;
    assert_eq!(in_keycloak.len(), 1);
    let keycloak_id = in_keycloak[0]["id"].as_str().unwrap().to_string();
    assert_eq!(in_keycloak[0]["email"], format!("{username}@example.org"));
    assert_eq!(app.user_count(), 1);

    // The new user signs in through Keycloak and is the same local user.
    let done = app.login((&username, "a-good-password"), "/").await;
    assert_eq!(done.status(), 303);
    let me = json(app.me().await).await;
    assert_eq!(me["username"], username.as_str());
    assert_eq!(me["accounts"][0]["uid"], keycloak_id.as_str());
    assert_eq!(app.user_count(), 1);
    assert_audited(&app, "registration");
}

#[actix_web::test]
async fn a_taken_username_is_a_form_error_and_writes_nothing_locally() {
    let app = spawn_app().await;
    let csrf = register_form(&app).await;
    let r = post_register(&app, &csrf, "alice", "a-good-password").await;
    assert_eq!(r.status(), 409);
    let page = r.text().await.unwrap();
    assert!(page.contains("already taken"), "{page}");
    assert!(
        page.contains("value=\"alice@example.org\""),
        "fields are kept"
    );
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn a_failed_local_write_leaves_no_user_in_keycloak() {
    let app = spawn_app().await;
    let admin = KeycloakAdmin::connect().await;
    let username = unique("clash");
    // A local user already holds the username (e.g. from another provider).
    keygate::accounts::login(
        &mut app.conn(),
        "some-other-subject",
        &json!({"preferred_username": username}),
        keygate::settings::LinkPolicy::SubjectOnly,
        None,
    )
    .unwrap();
    let csrf = register_form(&app).await;
    let r = post_register(&app, &csrf, &username, "a-good-password").await;
    assert_eq!(r.status(), 409);
    assert!(
        admin.find_users(&username).await.is_empty(),
        "compensated in Keycloak"
    );
    assert_eq!(app.user_count(), 1);
}

#[actix_web::test]
async fn registration_checks_csrf_fields_and_the_password_policy() {
    let app = spawn_app().await;
    let admin = KeycloakAdmin::connect().await;
    admin
        .update_realm(json!({"passwordPolicy": "length(10) and notUsername"}))
        .await;
    let username = unique("csrf");
    let forged = post_register(&app, "not-the-token", &username, "a-good-password").await;
    assert_eq!(forged.status(), 403);
    assert!(admin.find_users(&username).await.is_empty());

    let csrf = register_form(&app).await;
    let bad = app
        .client
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "x"),
            ("email", "nope"),
            ("password", "a-good-password"),
            ("password2", "different-one"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let page = bad.text().await.unwrap();
    for message in [
        "Use 3 to 64 characters",
        "valid email",
        "first name",
        "do not match",
    ] {
        assert!(page.contains(message), "{message}: {page}");
    }
    // Long enough for keygate, too short for the realm's policy: Keycloak's message is shown.
    let r = post_register(&app, &csrf, &username, "nine-char").await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Keycloak did not accept this account"),
        "{page}"
    );
    assert!(admin.find_users(&username).await.is_empty());
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn registration_can_be_switched_off_and_says_when_keycloak_is_down() {
    let off = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_REGISTRATION", "false".into())],
        ..Default::default()
    })
    .await;
    assert_eq!(off.get("/register").await.status(), 404);

    let mut proxy = FaultProxy::start().await;
    let app = spawn_app_with(AppOptions {
        issuer: proxy.issuer(),
        ..Default::default()
    })
    .await;
    let csrf = register_form(&app).await;
    proxy.cut();
    let r = post_register(&app, &csrf, &unique("down"), "a-good-password").await;
    assert_eq!(r.status(), 503);
    assert_eq!(app.user_count(), 0);
}

fn password_app() -> AppOptions {
    AppOptions {
        extra: vec![("KEYGATE_PASSWORD_LOGIN", "true".into())],
        ..Default::default()
    }
}

async fn password_login(app: &TestApp, user: (&str, &str)) -> reqwest::Response {
    let page = app.page("/login").await;
    let csrf = csrf_of(&page);
    app.client
        .post(app.url("/login/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", user.0),
            ("password", user.1),
            ("next", "/token"),
        ])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn password_login_signs_in_like_the_code_flow() {
    let app = spawn_app_with(password_app()).await;
    let r = password_login(&app, BOB).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/token");
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("TOKEN=")));
    let me = json(app.me().await).await;
    assert_eq!(me["username"], "bob");
    assert_eq!(me["accounts"][0]["provider"], "keycloak");
}

#[actix_web::test]
async fn wrong_credentials_get_one_generic_message_and_then_a_rate_limit() {
    let app = spawn_app_with(password_app()).await;
    let wrong = password_login(&app, ("bob", "not-his-password")).await;
    assert_eq!(wrong.status(), 401);
    let page = wrong.text().await.unwrap();
    assert!(page.contains("Wrong username or password."));
    assert!(page.contains("value=\"bob\""), "the username is kept");
    let nobody = password_login(&app, ("no-such-user-xyz", "whatever-pass")).await;
    assert_eq!(nobody.status(), 401);
    assert!(nobody
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password."));

    // Three more failures reach five for this IP; the sixth attempt is refused unheard.
    for _ in 0..3 {
        assert_eq!(
            password_login(&app, ("bob", "still-wrong")).await.status(),
            401
        );
    }
    let limited = password_login(&app, BOB).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&wait));
    assert_eq!(app.me().await.status(), 401);
    assert_audited(&app, "login_failed");
}

#[actix_web::test]
async fn disabled_and_unfinished_accounts_get_their_own_messages() {
    let app = spawn_app_with(password_app()).await;
    let admin = KeycloakAdmin::connect().await;
    let disabled = admin.create_user("disabled").await;
    let r = admin
        .request(reqwest::Method::PUT, &format!("/users/{}", disabled.id))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let page = password_login(&app, disabled.creds()).await;
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("disabled in Keycloak"));

    let unfinished = admin.create_user("unfinished").await;
    admin
        .request(reqwest::Method::PUT, &format!("/users/{}", unfinished.id))
        .json(&json!({"requiredActions": ["UPDATE_PASSWORD"]}))
        .send()
        .await
        .unwrap();
    let page = password_login(&app, unfinished.creds()).await;
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("finish setting up"));

    // CSRF is checked before anything else.
    let forged = app
        .client
        .post(app.url("/login/password"))
        .form(&[
            ("csrf_token", "x"),
            ("username", "bob"),
            ("password", "bob-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn logout_ends_the_session_here_and_at_keycloak() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let refresh_token = {
        use diesel::prelude::*;
        use keygate::schema::sessions::dsl::*;
        let raw: String = sessions.select(state).first(&mut app.conn()).unwrap();
        keygate::session::auth_from_state(&raw)
            .unwrap()
            .tokens
            .refresh_token
            .unwrap()
    };

    let confirm = app.get("/logout").await;
    assert_eq!(confirm.status(), 200);
    let csrf = csrf_of(&confirm.text().await.unwrap());
    // Without the CSRF token nothing happens.
    let forged = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(app.me().await.status(), 200);

    let r = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get_all("set-cookie").iter().any(|c| {
        let c = c.to_str().unwrap();
        c.starts_with("TOKEN=;") || (c.starts_with("TOKEN=") && c.contains("Max-Age=0"))
    }));
    let end_session = url::Url::parse(&location(&r)).unwrap();
    assert!(end_session
        .as_str()
        .starts_with(&format!("{}/protocol/openid-connect/logout", issuer())));
    let q: std::collections::HashMap<_, _> = end_session.query_pairs().into_owned().collect();
    assert!(q.contains_key("id_token_hint"));
    assert_eq!(
        q["post_logout_redirect_uri"],
        format!("{}/?signed_out=1", app.address)
    );
    // Keycloak sends the browser home, which says so.
    let back = app.client.get(end_session.as_str()).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let home = app
        .client
        .get(location(&back))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("You have been signed out."), "{home}");

    assert_eq!(app.me().await.status(), 401);
    assert_eq!(app.session_count(), 0);
    let refreshed = reqwest::Client::new()
        .post(format!("{}/protocol/openid-connect/token", issuer()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", "keygate"),
            ("client_secret", "keygate-dev-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refreshed.status(),
        400,
        "the old refresh token is dead at Keycloak"
    );
    assert_audited(&app, "logout");
}

#[actix_web::test]
async fn keycloak_back_channel_logout_ends_the_keygate_session() {
    let admin = KeycloakAdmin::connect().await;
    let client = admin.short_lived_client(300).await;
    let user = admin.create_user("backchannel").await;
    let app = spawn_app_with(client_options(&client)).await;
    admin
        .set_client_attributes(
            &client.uuid,
            json!({
                "backchannel.logout.url": app.url("/logout/backchannel"),
                "backchannel.logout.session.required": "true",
            }),
        )
        .await;
    app.login(user.creds(), "/").await;
    assert_eq!(app.me().await.status(), 200);
    assert_eq!(app.session_count(), 1);

    admin.logout_user(&user.id).await;
    // Keycloak calls keygate during the admin request; the next request is refused even though
    // the browser still holds an unexpired TOKEN cookie.
    let r = app.me().await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.post_token().await.status(), 401);
    assert_audited(&app, "backchannel_logout");
}

fn forge(claims: &Value, kid: &str) -> String {
    let pem = include_bytes!("../fixtures/forger-rsa.pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    header.typ = Some("logout+jwt".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem).unwrap(),
    )
    .unwrap()
}

#[actix_web::test]
async fn forged_logout_tokens_are_rejected_and_end_nothing() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let sid = {
        use diesel::prelude::*;
        use keygate::schema::sessions::dsl::*;
        sessions
            .select(kc_sid)
            .first::<Option<String>>(&mut app.conn())
            .unwrap()
            .unwrap()
    };
    let jwks = realm_jwks().await;
    let realm_kid = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["use"] == "sig" && k["alg"] == "RS256")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer(), "aud": "keygate", "iat": now, "exp": now + 60,
        "jti": "j1", "sid": sid,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}});
    let mut with_nonce = claims.clone();
    with_nonce["nonce"] = "n".into();

    let grant = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), ALICE).await;
    let cases = vec![
        ("wrong signature", forge(&claims, &realm_kid)),
        ("unknown key", forge(&claims, "forger")),
        ("with a nonce (and forged)", forge(&with_nonce, &realm_kid)),
        (
            "an access token",
            grant["access_token"].as_str().unwrap().to_string(),
        ),
        (
            "an ID token",
            grant["id_token"].as_str().unwrap().to_string(),
        ),
        ("garbage", "x.y.z".to_string()),
    ];
    for (name, token) in cases {
        let r = reqwest::Client::new()
            .post(app.url("/logout/backchannel"))
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{name}");
        assert_eq!(json(r).await["error"], "invalid_request", "{name}");
    }
    let missing = reqwest::Client::new()
        .post(app.url("/logout/backchannel"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(app.session_count(), 1);
    assert_eq!(app.me().await.status(), 200);
}

async fn bearer_user(app: &TestApp, user: (&str, &str)) -> Value {
    let r = app.bearer_get("/api/me", &demo_token(user).await).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

fn legacy_user(app: &TestApp, email: &str) -> i64 {
    keygate::accounts::login(
        &mut app.conn(),
        &unique("legacy-sub"),
        &json!({"preferred_username": unique("legacy"), "email": email}),
        keygate::settings::LinkPolicy::SubjectOnly,
        None,
    )
    .unwrap()
    .id
}

#[actix_web::test]
async fn email_linking_only_when_switched_on_and_verified() {
    let admin = KeycloakAdmin::connect().await;
    let linking = || AppOptions {
        extra: vec![("KEYGATE_LINK_BY_EMAIL", "verified".into())],
        ..Default::default()
    };

    // On, verified: the first login attaches to the existing local user.
    let app = spawn_app_with(linking()).await;
    let email = format!("{}@example.net", unique("link"));
    let legacy = legacy_user(&app, &email);
    let verified = admin.create_user_with("verified", Some(&email), true).await;
    let me = bearer_user(&app, verified.creds()).await;
    assert_eq!(me["id"], legacy);
    assert_eq!(me["accounts"].as_array().unwrap().len(), 2);

    // On, unverified: a new user.
    let app = spawn_app_with(linking()).await;
    let email = format!("{}@example.net", unique("link"));
    let legacy = legacy_user(&app, &email);
    let unverified = admin
        .create_user_with("unverified", Some(&email), false)
        .await;
    let me = bearer_user(&app, unverified.creds()).await;
    assert_ne!(me["id"], legacy);

    // Off (the default), verified: a new user.
    let app = spawn_app().await;
    let email = format!("{}@example.net", unique("link"));
    let legacy = legacy_user(&app, &email);
    let other = admin.create_user_with("default", Some(&email), true).await;
    let me = bearer_user(&app, other.creds()).await;
    assert_ne!(me["id"], legacy);
    assert_eq!(app.user_count(), 2);
}

#[actix_web::test]
async fn logout_still_ends_the_local_session_when_keycloak_is_down() {
    let mut proxy = FaultProxy::start().await;
    let app = spawn_app_with(AppOptions {
        issuer: proxy.issuer(),
        ..Default::default()
    })
    .await;
    app.login(ALICE, "/").await;
    let csrf = csrf_of(&app.get("/logout").await.text().await.unwrap());
    proxy.cut();
    let r = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{}/?signed_out=1", app.address));
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.me().await.status(), 401);
    proxy.restore().await;
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_rate_limit_counts_forwarded_addresses() {
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("KEYGATE_PASSWORD_LOGIN", "true".into()),
            ("KEYGATE_TRUST_FORWARDED", "true".into()),
        ],
        ..Default::default()
    })
    .await;
    let csrf = csrf_of(&app.get("/login").await.text().await.unwrap());
    let attempt = |ip: &'static str, user: String| {
        let request = app
            .client
            .post(app.url("/login/password"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("csrf_token", csrf.clone()),
                ("username", user),
                ("password", "wrong-password".into()),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for i in 0..5 {
        assert_eq!(attempt("203.0.113.7", format!("guess-{i}")).await, 401);
    }
    // That address is used up, whatever the username; another address is not.
    assert_eq!(attempt("203.0.113.7", "guess-new".into()).await, 429);
    assert_eq!(attempt("198.51.100.9", "guess-other".into()).await, 401);
    let ips: Vec<Option<String>> = {
        use diesel::prelude::*;
        use keygate::schema::audit_events::dsl::*;
        audit_events.select(ip).load(&mut app.conn()).unwrap()
    };
    assert!(ips.contains(&Some("198.51.100.9".into())), "{ips:?}");
}
