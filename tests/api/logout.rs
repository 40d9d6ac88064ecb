//! RP-initiated logout: CSRF, the session ended here and at Keycloak, and the local session ended
//! even when Keycloak is down.

use crate::helpers::*;

#[actix_web::test]
async fn logout_ends_the_session_here_and_at_keycloak() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let refresh_token = {
        use diesel::prelude::*;
        use keygate::testing::schema::sessions::dsl::*;
        let raw: String = sessions.select(state).first(&mut app.conn()).unwrap();
        keygate::testing::auth_from_state(&raw)
            .unwrap()
            .tokens
            .refresh_token
            .unwrap()
    };

    let confirm = app.get("/logout").await;
    assert_eq!(confirm.status(), 200);
    let csrf = csrf_of(&confirm.text().await.unwrap());
    // Without the CSRF token nothing happens.
    let forged = app.post_logout("x").await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.me().await.status(), 200);

    let r = app.post_logout(&csrf).await;
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
    let r = app.post_logout(&csrf).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{}/?signed_out=1", app.address));
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.me().await.status(), 401);
    proxy.restore().await;
}
