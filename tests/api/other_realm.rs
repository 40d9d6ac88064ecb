//! keygate against a realm configured differently from the demo one: ES256 signatures, no
//! audience mapper (KEYGATE_ACCEPT_AZP), the admin role as a client role under another name,
//! signed userinfo responses, and a client id that is not "keygate".

use serde_json::{json, Value};

use crate::helpers::*;

struct OtherRealm {
    name: String,
    issuer: String,
}

async fn create_realm(admin: &RealmAdmin) -> OtherRealm {
    let name = unique("alt");
    let realm = json!({
        "realm": name,
        "enabled": true,
        "defaultSignatureAlgorithm": "ES256",
        "roles": {"client": {"portal": [{"name": "portal-admin"}]}},
        "clients": [{
            "clientId": "portal",
            "enabled": true,
            "publicClient": false,
            "secret": "portal-secret",
            "standardFlowEnabled": true,
            "directAccessGrantsEnabled": true,
            "redirectUris": ["http://127.0.0.1/login/callback"],
            "attributes": {
                "post.logout.redirect.uris": "http://127.0.0.1/*",
                "user.info.response.signature.alg": "RS256",
                "pkce.code.challenge.method": "S256",
            },
        }],
        "users": [{
            "username": "carol", "enabled": true, "email": "carol@example.org",
            "emailVerified": true, "firstName": "Carol", "lastName": "Other",
            "credentials": [{"type": "password", "value": "carol-password-1", "temporary": false}],
            "clientRoles": {"portal": ["portal-admin"]},
        }, {
            "username": "dave", "enabled": true, "email": "dave@example.org",
            "emailVerified": false, "firstName": "Dave", "lastName": "Other",
            "credentials": [{"type": "password", "value": "dave-password-1", "temporary": false}],
        }],
    });
    let base = keycloak_base();
    let r = reqwest::Client::new()
        .post(format!("{base}/admin/realms"))
        .bearer_auth(admin.token())
        .json(&realm)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "create realm: {}",
        r.text().await.unwrap_or_default()
    );
    OtherRealm {
        issuer: format!("{base}/realms/{name}"),
        name,
    }
}

async fn delete_realm(admin: &RealmAdmin, realm: &OtherRealm) {
    let _ = reqwest::Client::new()
        .delete(format!("{}/admin/realms/{}", keycloak_base(), realm.name))
        .bearer_auth(admin.token())
        .send()
        .await;
}

fn header_alg(token: &str) -> String {
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    header["alg"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn a_differently_configured_realm_works_end_to_end() {
    let admin = RealmAdmin::connect().await;
    let realm = create_realm(&admin).await;
    let app = spawn_app_with(AppOptions {
        issuer: realm.issuer.clone(),
        extra: vec![
            ("KEYGATE_CLIENT_ID", "portal".into()),
            ("KEYGATE_CLIENT_SECRET", "portal-secret".into()),
            ("KEYGATE_ACCEPT_AZP", "true".into()),
            ("KEYGATE_ADMIN_ROLE", "portal-admin".into()),
        ],
        ..Default::default()
    })
    .await;

    // The code flow, with ES256 ID tokens and a signed userinfo (which keygate skips, logging why).
    let done = app.login(("carol", "carol-password-1"), "/admin").await;
    assert_eq!(done.status(), 303, "code flow against the other realm");
    {
        let me = json(app.me().await).await;
        assert_eq!(me["username"], "carol");
        assert_eq!(me["first_name"], "Carol");
        // The client role under another name opens the admin pages.
        assert_eq!(app.get("/admin").await.status(), 200);
        assert_eq!(app.get("/admin/users").await.status(), 200);

        // The token endpoint hands out an ES256 access token without our audience; azp admits it.
        let token = app.post_token().await;
        assert_eq!(token.status(), 200);
        let token = json(token).await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(header_alg(&token), "ES256");
        assert_eq!(app.bearer_get("/api/me", &token).await.status(), 200);

        // A plain user of that realm: no admin pages; unverified email is fine for login.
        let grant = password_grant(
            &realm.issuer,
            "portal",
            Some("portal-secret"),
            ("dave", "dave-password-1"),
        )
        .await;
        let dave = grant["access_token"].as_str().unwrap();
        assert_eq!(app.bearer_get("/admin", dave).await.status(), 403);
        // A token of the demo realm is another issuer with other keys here.
        let demo = demo_token(ALICE).await;
        assert_eq!(app.bearer_get("/api/me", &demo).await.status(), 401);
    }
    // Keycloak keeps data between runs; a failed run leaves its uniquely named realm behind.
    delete_realm(&admin, &realm).await;
}
