//! Registration: the user is made in Keycloak and locally, form errors and CSRF, the realm's
//! password policy, compensation when the local write fails, switched off, and Keycloak down.

use serde_json::json;

use crate::helpers::*;

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
    let admin = RealmAdmin::connect().await;
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
    let admin = RealmAdmin::connect().await;
    let username = unique("clash");
    // A local user already holds the username (e.g. from another provider).
    keygate::testing::provision(
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
    let admin = RealmAdmin::connect().await;
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

#[actix_web::test]
async fn a_taken_email_gets_the_same_answer_as_a_taken_username() {
    let app = spawn_app().await;
    let csrf = register_form(&app).await;
    let by_name = post_register(&app, &csrf, "alice", "a-good-password").await;
    let (status, name_page) = (by_name.status(), by_name.text().await.unwrap());
    let by_email = app
        .client
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", &unique("fresh")),
            ("email", "alice@example.com"),
            ("first_name", "New"),
            ("last_name", "Person"),
            ("password", "a-good-password"),
            ("password2", "a-good-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(by_email.status(), status);
    let email_page = by_email.text().await.unwrap();
    let message = |page: &str| {
        page.split("class=\"error\"")
            .nth(1)
            .and_then(|rest| rest.split("</").next())
            .map(String::from)
    };
    assert!(message(&name_page).is_some(), "{name_page}");
    assert_eq!(
        message(&email_page),
        message(&name_page),
        "one message for both"
    );
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn registrations_are_limited_per_client_address() {
    let app = spawn_app().await;
    let csrf = register_form(&app).await;
    // Each of these reaches Keycloak (and is refused there as taken): they count all the same.
    for _ in 0..10 {
        assert_eq!(
            post_register(&app, &csrf, "alice", "a-good-password")
                .await
                .status(),
            409
        );
    }
    let limited = post_register(&app, &csrf, &unique("eleventh"), "a-good-password").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let admin = RealmAdmin::connect().await;
    assert!(
        admin.find_users("eleventh").await.is_empty(),
        "the eleventh never reached Keycloak"
    );
}
