//! Key rotation, in its own test binary: a new realm key changes what every concurrent test would
//! see, so it runs alone (cargo runs test binaries one after another).

#[path = "../api/helpers/mod.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use std::time::Duration;

use helpers::*;
use serde_json::{json, Value};

fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn me_with(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn tokens_signed_with_a_rotated_key_validate_without_a_restart() {
    let admin = RealmAdmin::connect().await;
    let app = spawn_app().await;
    // A second keygate without the validated-token cache: there the old-key token is checked
    // against the key set as fetched again after the rotation, not answered from memory.
    let uncached = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_TOKEN_CACHE", "false".into())],
        ..Default::default()
    })
    .await;
    let secret = Some("keygate-dev-secret");
    let before = password_grant(&issuer(), "keygate", secret, ALICE).await;
    let before = before["access_token"].as_str().unwrap().to_string();
    assert_eq!(me_with(&app, &before).await, 200);
    assert_eq!(me_with(&uncached, &before).await, 200);

    let realm = admin.get_json("").await;
    let name = format!("rotated-{}", keygate::testing::random_token(4));
    let r = admin
        .request(reqwest::Method::POST, "/components")
        .json(&json!({
            "name": name,
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {"priority": ["1000000"], "enabled": ["true"], "active": ["true"],
                       "keySize": ["2048"], "algorithm": ["RS256"]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "add key provider");
    let component = location(&r).rsplit('/').next().unwrap().to_string();

    // keygate refetches keys at most once a second; let that window pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = password_grant(&issuer(), "keygate", secret, ALICE).await;
    let after = after["access_token"].as_str().unwrap().to_string();
    let result_new = me_with(&app, &after).await;
    // The new kid makes the uncached keygate fetch the JWKS again; the old key must survive it.
    let uncached_new = me_with(&uncached, &after).await;
    let result_old = me_with(&uncached, &before).await;
    // A login (ID token signed with the new key) works too.
    let login = app.login(ALICE, "/").await.status();

    // Put the realm back before asserting, so a failure does not leave the key behind.
    let removed = admin
        .request(reqwest::Method::DELETE, &format!("/components/{component}"))
        .send()
        .await
        .unwrap();
    assert_ne!(kid(&before), kid(&after), "Keycloak signs with the new key");
    assert_eq!(result_new, 200, "new kid validates without a restart");
    assert_eq!(uncached_new, 200, "there too");
    assert_eq!(
        result_old, 200,
        "tokens of the old key stay valid after the refetch"
    );
    assert_eq!(login, 303, "code-flow login with the rotated key");
    assert!(removed.status().is_success());
}
