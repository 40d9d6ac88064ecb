//! The user's own sessions page: every browser listed, one signed out, or all of them together
//! with the user's Keycloak sessions.

use serde_json::Value;

use crate::helpers::*;

async fn post_form(client: &reqwest::Client, url: String, csrf: &str) -> reqwest::Response {
    client
        .post(url)
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap()
}

/// The login ids the sessions page offers to sign out (every session but this one).
fn other_sessions(page: &str) -> Vec<String> {
    page.split("action=\"/account/sessions/")
        .skip(1)
        .filter_map(|rest| rest.split_once("/end\"").map(|(id, _)| id.to_string()))
        .collect()
}

#[actix_web::test]
async fn users_see_and_end_their_own_sessions() {
    let admin = RealmAdmin::connect().await;
    let user = admin.create_user("mysessions").await;
    let app = spawn_app().await;
    app.login(user.creds(), "/").await;
    let (other, _) = app.other_browser(user.creds()).await;
    let (bob, _) = app.other_browser(BOB).await;

    let home = app.page("/").await;
    assert!(
        home.contains("href=\"/account/sessions\""),
        "linked from home"
    );
    let page = app.page("/account/sessions").await;
    assert_eq!(
        page.matches("<tr").count() - 1,
        2,
        "two sessions of this user: {page}"
    );
    assert!(page.contains("This browser"));
    let others = other_sessions(&page);
    assert_eq!(others.len(), 1);

    // Without the CSRF token nothing ends; another user's session is not one's own.
    let r = post_form(
        &app.client,
        app.url(&format!("/account/sessions/{}/end", others[0])),
        "x",
    )
    .await;
    assert_eq!(r.status(), 403);
    let csrf = csrf_of(&page);
    let bobs_page = bob.get(app.url("/account/sessions")).send().await.unwrap();
    let bobs_page = bobs_page.text().await.unwrap();
    assert!(other_sessions(&bobs_page).is_empty());
    let r = post_form(
        &bob,
        app.url(&format!("/account/sessions/{}/end", others[0])),
        &csrf_of(&bobs_page),
    )
    .await;
    assert_eq!(r.status(), 404, "bob cannot end this user's session");
    assert_eq!(
        other.get(app.url("/api/me")).send().await.unwrap().status(),
        200
    );

    let r = post_form(
        &app.client,
        app.url(&format!("/account/sessions/{}/end", others[0])),
        &csrf,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account/sessions?done=one");
    assert_eq!(
        other.get(app.url("/api/me")).send().await.unwrap().status(),
        401
    );
    assert_eq!(app.me().await.status(), 200, "this browser stays signed in");
    let page = app.page(&location(&r)).await;
    assert!(page.contains("The session was signed out."));
    assert_eq!(page.matches("<tr").count() - 1, 1);
    assert_audited(&app, "logout");

    // Everywhere: both keygate sessions and the Keycloak sessions end.
    let (other, _) = app.other_browser(user.creds()).await;
    let r = post_form(
        &app.client,
        app.url("/account/sessions/end-all"),
        &csrf_of(&page),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/?signed_out=1");
    assert_eq!(app.me().await.status(), 401);
    assert_eq!(
        other.get(app.url("/api/me")).send().await.unwrap().status(),
        401
    );
    let at_keycloak = admin
        .get_json(&format!("/users/{}/sessions", user.id))
        .await;
    assert_eq!(
        at_keycloak,
        Value::Array(vec![]),
        "no Keycloak session is left"
    );
    assert_eq!(
        bob.get(app.url("/api/me")).send().await.unwrap().status(),
        200,
        "bob is untouched"
    );
}
