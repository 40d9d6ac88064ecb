//! Keycloak's back-channel logout: its logout token ends the keygate session; forged, foreign and
//! malformed logout tokens end nothing.

use serde_json::{json, Value};

use crate::helpers::*;

#[actix_web::test]
async fn keycloak_back_channel_logout_ends_the_keygate_session() {
    let admin = RealmAdmin::connect().await;
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
        use keygate::testing::schema::sessions::dsl::*;
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
