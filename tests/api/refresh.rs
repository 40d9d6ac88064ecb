//! Refresh: short-lived access tokens refreshed once for many concurrent requests under
//! refresh-token rotation, by one instance or two sharing a database (the leased refresh), a
//! session that Keycloak ended, and what every page learns from the refresh once a session's
//! token expired (a role removed, a user disabled in Keycloak).

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn expired_tokens_are_refreshed_once_for_ten_concurrent_requests() {
    let admin = RealmAdmin::connect().await;
    // Refresh-token rotation: a refresh token works once, so a second refresh would fail.
    admin.enable_rotation_and_events().await;
    let client = admin.short_lived_client(10).await;
    let user = admin.create_user("refresh").await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;
    let first = json(post_token(&app).await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        bearer_me(&app, &first).await.status(),
        401,
        "first token expired"
    );
    // The expired TOKEN cookie falls back to the session for API calls.
    assert_eq!(app.me().await.status(), 200);

    let requests = (0..10).map(|_| post_token(&app));
    let answers = futures_util::future::join_all(requests).await;
    let mut tokens = vec![];
    for r in answers {
        assert_eq!(r.status(), 200);
        tokens.push(json(r).await["access_token"].as_str().unwrap().to_string());
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one refresh, one new token"
    );
    assert_ne!(tokens[0], first);
    assert_eq!(app.app_state.refresh_count(), 1);
    assert_eq!(bearer_me(&app, &tokens[0]).await.status(), 200);
    let events = admin.events("REFRESH_TOKEN", &client.client_id).await;
    assert_eq!(
        events.len(),
        1,
        "Keycloak saw exactly one refresh: {events:?}"
    );
    let errors = admin.events("REFRESH_TOKEN_ERROR", &client.client_id).await;
    assert!(errors.is_empty(), "no refresh was refused: {errors:?}");

    // The rotated refresh token was kept: the next expiry refreshes again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let third = json(post_token(&app).await).await;
    let third = third["access_token"].as_str().expect("refreshed again");
    assert_ne!(third, tokens[0]);
    assert_eq!(
        admin.events("REFRESH_TOKEN", &client.client_id).await.len(),
        2
    );
    let refreshes = audit_kinds(&app)
        .into_iter()
        .filter(|(k, _, _)| k == "token_refresh")
        .count();
    assert_eq!(refreshes, 2, "each refresh is in the audit log");
}

#[actix_web::test]
async fn a_session_ended_in_keycloak_answers_auth_redirect_and_is_deleted() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("ended").await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;
    assert_eq!(post_token(&app).await.status(), 200);
    assert_eq!(app.session_count(), 1);

    admin.logout_user(&user.id).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = post_token(&app).await;
    assert_eq!(r.status(), 401);
    let body = json(r).await;
    assert_eq!(body["error"]["code"], "auth_redirect");
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/login/keycloak?next=", app.address)));
    assert_eq!(app.session_count(), 0, "the local session row is gone");
    assert_audited(&app, "refresh_failed");
}

#[actix_web::test]
async fn two_instances_sharing_a_database_refresh_a_session_once() {
    let admin = RealmAdmin::connect().await;
    admin.enable_rotation_and_events().await;
    let client = admin.short_lived_client(10).await;
    let user = admin.create_user("twoinstances").await;
    let (first, second) = spawn_pair(|| client_options(&client)).await;

    first.login(user.creds(), "/").await;
    // Cookies are per host, not per port: the browser's session reaches both instances.
    assert_eq!(
        second
            .client
            .get(second.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let me = first
        .client
        .get(second.url("/api/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the second instance knows the session");

    tokio::time::sleep(Duration::from_secs(11)).await;
    let requests = (0..10).map(|i| {
        let target = if i % 2 == 0 { &first } else { &second };
        first
            .client
            .post(target.url("/api/token"))
            .json(&json!({"process": "login-from-cookie"}))
            .send()
    });
    let mut tokens = vec![];
    for r in futures_util::future::join_all(requests).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        tokens.push(json(r).await["access_token"].as_str().unwrap().to_string());
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one refresh for both instances"
    );
    let refreshes = first.app_state.refresh_count() + second.app_state.refresh_count();
    assert_eq!(refreshes, 1);
    assert_eq!(
        admin.events("REFRESH_TOKEN", &client.client_id).await.len(),
        1
    );
    assert!(admin
        .events("REFRESH_TOKEN_ERROR", &client.client_id)
        .await
        .is_empty());
}

#[actix_web::test]
async fn a_role_removed_in_keycloak_is_gone_once_the_token_expires() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("demoted").await;
    admin.set_realm_role(&user.id, "keygate-admin", true).await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;
    assert_eq!(app.get("/admin").await.status(), 200, "an admin at sign-in");

    admin.set_realm_role(&user.id, "keygate-admin", false).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = app.get("/admin").await;
    assert_eq!(r.status(), 403, "the role of sign-in time is not kept");
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").starts_with("TOKEN=ey")),
        "the refreshed token comes along as the TOKEN cookie"
    );
    assert_eq!(app.app_state.refresh_count(), 1);
    assert_eq!(app.get("/").await.status(), 200, "plain pages still work");
}

#[actix_web::test]
async fn a_user_disabled_in_keycloak_is_signed_out_at_the_next_page_after_expiry() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("disabled").await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;
    assert_eq!(app.get("/token").await.status(), 200);
    assert_eq!(app.session_count(), 1);

    admin.set_enabled(&user.id, false).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = app.get("/token").await;
    assert_eq!(r.status(), 303, "signed out, not served");
    assert_eq!(location(&r), "/login?next=%2Ftoken");
    assert_eq!(app.me().await.status(), 401);
    assert_eq!(app.session_count(), 0, "the session row is gone");
    assert_audited(&app, "refresh_failed");
}

#[actix_web::test]
async fn ten_concurrent_pages_of_a_session_whose_token_expired_refresh_once() {
    let admin = RealmAdmin::connect().await;
    admin.enable_rotation_and_events().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("pages").await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;

    tokio::time::sleep(Duration::from_secs(6)).await;
    let pages = (0..10).map(|_| app.get("/token"));
    for r in futures_util::future::join_all(pages).await {
        assert_eq!(r.status(), 200, "every page is answered");
    }
    assert_eq!(app.app_state.refresh_count(), 1);
    assert_eq!(
        admin.events("REFRESH_TOKEN", &client.client_id).await.len(),
        1,
        "Keycloak saw one refresh"
    );
    assert!(admin
        .events("REFRESH_TOKEN_ERROR", &client.client_id)
        .await
        .is_empty());
}

#[actix_web::test]
async fn with_keycloak_down_an_expired_session_keeps_its_user_but_no_role() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("offline").await;
    admin.set_realm_role(&user.id, "keygate-admin", true).await;
    let mut proxy = FaultProxy::start().await;
    let app = spawn_app_with(AppOptions {
        issuer: proxy.issuer(),
        ..client_options(&client)
    })
    .await;
    app.login(user.creds(), "/").await;
    assert_eq!(app.get("/admin").await.status(), 200);

    proxy.cut();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = app.get("/admin").await;
    assert_eq!(r.status(), 503, "no role from an expired token");
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Identity provider unreachable"));
    assert_eq!(app.get("/token").await.status(), 200, "plain pages work");
    assert_eq!(app.me().await.status(), 200, "the user is still known");
    assert_eq!(app.session_count(), 1, "nothing was signed out");

    proxy.restore().await;
    assert_eq!(
        app.get("/admin").await.status(),
        200,
        "back once Keycloak is"
    );
}

#[actix_web::test]
async fn an_sso_session_deleted_in_keycloak_without_back_channel_ends_after_expiry() {
    let admin = RealmAdmin::connect().await;
    // A copy of keygate's client without a back-channel URL: Keycloak tells keygate nothing.
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("ssogone").await;
    let app = spawn_app_with(client_options(&client)).await;
    app.login(user.creds(), "/").await;
    assert_eq!(app.get("/token").await.status(), 200);

    let sessions = admin
        .get_json(&format!("/users/{}/sessions", user.id))
        .await;
    let sid = sessions[0]["id"].as_str().expect("a Keycloak session");
    let r = admin
        .request(reqwest::Method::DELETE, &format!("/sessions/{sid}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete session: {}", r.status());
    assert_eq!(app.session_count(), 1, "keygate was not told");

    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = app.get("/token").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=%2Ftoken");
    assert_eq!(app.me().await.status(), 401);
    assert_eq!(app.session_count(), 0);
}

#[actix_web::test]
async fn forced_refreshes_are_throttled_per_session() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let fresh = || {
        app.client
            .post(app.url("/api/token"))
            .json(&json!({"process": "login-from-cookie", "fresh": true}))
            .send()
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let first = json(fresh().await.unwrap()).await["access_token"].clone();
    let mut tokens = vec![];
    for _ in 0..5 {
        let r = fresh().await.unwrap();
        assert_eq!(r.status(), 200);
        tokens.push(json(r).await["access_token"].clone());
    }
    assert_eq!(
        app.app_state.refresh_count(),
        1,
        "one forced refresh, not six"
    );
    assert!(
        tokens.iter().all(|t| *t == first),
        "the others get the fresh token"
    );
}
