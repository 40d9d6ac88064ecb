//! The password form (KEYGATE_PASSWORD_LOGIN): sign-in, one message for wrong credentials and
//! disabled accounts, the rate limit (atomic, one budget per account, by forwarded address behind
//! a trusted proxy), unfinished accounts.

use serde_json::json;

use crate::helpers::*;

fn password_app() -> AppOptions {
    AppOptions {
        extra: vec![("KEYGATE_PASSWORD_LOGIN", "true".into())],
        ..Default::default()
    }
}

/// The password form behind a reverse proxy keygate trusts.
fn behind_a_proxy() -> AppOptions {
    let mut options = password_app();
    options
        .extra
        .push(("KEYGATE_TRUST_FORWARDED", "true".into()));
    options
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
async fn a_disabled_account_gets_the_generic_answer_and_an_unfinished_one_its_own() {
    let app = spawn_app_with(password_app()).await;
    let admin = RealmAdmin::connect().await;
    let disabled = admin.create_user("disabled").await;
    let r = admin
        .request(reqwest::Method::PUT, &format!("/users/{}", disabled.id))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Keycloak says "disabled" for any password: saying so would tell who has an account.
    let page = password_login(&app, (&disabled.username, "any-password-at-all")).await;
    assert_eq!(page.status(), 401);
    let page = page.text().await.unwrap();
    assert!(page.contains("Wrong username or password."), "{page}");
    assert!(!page.contains("disabled in Keycloak"), "{page}");
    assert_audited(&app, "login_failed");

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
async fn behind_a_trusted_proxy_the_rate_limit_counts_forwarded_addresses() {
    let app = spawn_app_with(behind_a_proxy()).await;
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
        use keygate::testing::schema::audit_events::dsl::*;
        audit_events.select(ip).load(&mut app.conn()).unwrap()
    };
    assert!(ips.contains(&Some("198.51.100.9".into())), "{ips:?}");
}

#[actix_web::test]
async fn parallel_attempts_cannot_pass_the_limit_together() {
    let app = spawn_app_with(password_app()).await;
    let csrf = csrf_of(&app.page("/login").await);
    let attempts = (0..30).map(|i| {
        let request = app.client.post(app.url("/login/password")).form(&[
            ("csrf_token", csrf.clone()),
            ("username", "bob".to_string()),
            ("password", format!("wrong-{i}")),
        ]);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let heard = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        heard, 5,
        "five attempts reach Keycloak, no more: {statuses:?}"
    );
    assert_eq!(limited, 25);
}

#[actix_web::test]
async fn the_username_and_the_email_of_an_account_share_one_budget() {
    let app = spawn_app_with(behind_a_proxy()).await;
    // Bob is known locally (with his email) once he has signed in.
    let (_, _) = app.other_browser(BOB).await;
    let csrf = csrf_of(&app.page("/login").await);
    // Each attempt from another address, so that only the account's budget can run out.
    let attempt = |i: u8, username: &'static str| {
        let request = app
            .client
            .post(app.url("/login/password"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[
                ("csrf_token", csrf.clone()),
                ("username", username.to_string()),
                ("password", "wrong-password".to_string()),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for i in 0..5 {
        assert_eq!(attempt(i, "Bob").await, 401);
    }
    assert_eq!(
        attempt(9, "BOB@EXAMPLE.COM").await,
        429,
        "the same account by its address, in capitals"
    );
    assert_eq!(
        attempt(10, "alice").await,
        401,
        "another account is not limited"
    );
}

#[actix_web::test]
async fn a_client_cannot_choose_its_address_by_writing_forwarded_headers() {
    let app = spawn_app_with(behind_a_proxy()).await;
    let csrf = csrf_of(&app.page("/login").await);
    // The client writes a new address each time; the proxy appends the one it saw.
    let attempt = |i: u8| {
        let request = app
            .client
            .post(app.url("/login/password"))
            .header("x-forwarded-for", format!("10.9.8.{i}, 203.0.113.7"))
            .header("forwarded", format!("for=10.7.7.{i}"))
            .form(&[
                ("csrf_token", csrf.clone()),
                ("username", format!("guess-{i}")),
                ("password", "wrong-password".to_string()),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for i in 0..5 {
        assert_eq!(attempt(i).await, 401);
    }
    assert_eq!(
        attempt(5).await,
        429,
        "one client, one budget, whatever it wrote"
    );
    let ips: Vec<Option<String>> = {
        use diesel::prelude::*;
        use keygate::testing::schema::audit_events::dsl::*;
        audit_events.select(ip).load(&mut app.conn()).unwrap()
    };
    assert!(
        ips.iter().all(|i| i.as_deref() == Some("203.0.113.7")),
        "the audit log holds the proxy's word only: {ips:?}"
    );
}
