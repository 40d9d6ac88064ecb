//! The email linking policy (KEYGATE_LINK_BY_EMAIL): a new subject joins an existing local user by
//! email only when linking is switched on, Keycloak says the email is verified, and the local user
//! has a verified address of its own and no Keycloak account yet.

use serde_json::{json, Value};

use crate::helpers::*;

async fn bearer_user(app: &TestApp, user: (&str, &str)) -> Value {
    let r = app.bearer_get("/api/me", &demo_token(user).await).await;
    assert_eq!(r.status(), 200);
    json(r).await
}

/// A local user from before keygate (no Keycloak account), with an address verified or not.
fn legacy_user_with(app: &TestApp, address: &str, verified: bool) -> i64 {
    use diesel::prelude::*;
    use keygate::testing::schema::users::dsl::*;
    let name = unique("legacy");
    diesel::insert_into(users)
        .values((
            username.eq(&name),
            email.eq(Some(address)),
            email_verified.eq(verified),
            created_at.eq(keygate::testing::now()),
        ))
        .execute(&mut app.conn())
        .unwrap();
    users
        .filter(username.eq(&name))
        .select(id)
        .first(&mut app.conn())
        .unwrap()
}

fn legacy_user(app: &TestApp, address: &str) -> i64 {
    legacy_user_with(app, address, true)
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
    assert_eq!(
        me["accounts"].as_array().unwrap().len(),
        1,
        "the legacy user now has its Keycloak account"
    );

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

/// The pre-account takeover: someone registers (or signs in) first with the victim's address; the
/// victim's own first sign-in must not land in that account.
#[actix_web::test]
async fn linking_never_attaches_to_an_account_that_is_someone_elses() {
    let admin = RealmAdmin::connect().await;
    let app = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_LINK_BY_EMAIL", "verified".into())],
        ..Default::default()
    })
    .await;
    // The attacker's local user holds the victim's address and a Keycloak account of its own.
    let email = format!("{}@example.net", unique("victim"));
    let attacker = keygate::testing::provision(
        &mut app.conn(),
        &unique("attacker-sub"),
        &json!({"preferred_username": unique("attacker"), "email": email, "email_verified": true}),
        keygate::settings::LinkPolicy::SubjectOnly,
        None,
    )
    .unwrap()
    .id;
    let victim = admin.create_user_with("victim", Some(&email), true).await;
    let me = bearer_user(&app, victim.creds()).await;
    assert_ne!(
        me["id"], attacker,
        "a user with a Keycloak account is not linkable"
    );

    // A legacy user whose own address was never verified is not linkable either.
    let email = format!("{}@example.net", unique("unclaimed"));
    let unverified = legacy_user_with(&app, &email, false);
    let owner = admin.create_user_with("owner", Some(&email), true).await;
    assert_ne!(bearer_user(&app, owner.creds()).await["id"], unverified);

    // Addresses compare case-insensitively.
    let email = format!("{}@example.net", unique("cased"));
    let legacy = legacy_user(&app, &email.to_uppercase());
    let cased = admin.create_user_with("cased", Some(&email), true).await;
    assert_eq!(bearer_user(&app, cased.creds()).await["id"], legacy);
}
