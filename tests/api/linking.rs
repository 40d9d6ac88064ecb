//! The email linking policy (KEYGATE_LINK_BY_EMAIL): a new subject joins an existing local user by
//! email only when linking is switched on and Keycloak says the email is verified.

use serde_json::{json, Value};

use crate::helpers::*;

async fn bearer_user(app: &TestApp, user: (&str, &str)) -> Value {
    let r = app.bearer_get("/api/me", &demo_token(user).await).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

fn legacy_user(app: &TestApp, email: &str) -> i64 {
    keygate::domain::provisioning::provision(
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
    let admin = RealmAdmin::connect().await;
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
