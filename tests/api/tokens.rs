//! Tokens: the TOKEN cookie, `POST /api/token` serving the session's token, bearer tokens (new
//! subjects provisioned; wrong, hostile, expired and foreign-audience ones refused).

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn login_from_cookie_goes_straight_to_the_ui_page() {
    let app = spawn_app().await;
    let done = app.login(ALICE, "/").await;
    let token_cookie = set_cookies(&done)
        .into_iter()
        .find(|c| c.starts_with("TOKEN="))
        .expect("login sets the TOKEN cookie");
    assert!(token_cookie.contains("HttpOnly") && token_cookie.contains("SameSite=Lax"));
    assert!(token_cookie.contains("Path=/"), "{token_cookie}");

    let r = app.get("/login").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/token", "no trip to Keycloak");

    // Without the cookie, the login page.
    let fresh = browser().get(app.url("/login")).send().await.unwrap();
    assert_eq!(fresh.status(), 200);
    assert!(fresh
        .text()
        .await
        .unwrap()
        .contains("Sign in with Keycloak"));
}

#[actix_web::test]
async fn the_token_endpoint_returns_a_token_that_works_as_a_bearer_token() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    let r = post_token(&app).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = json(r).await;
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(expires_in > 30 && expires_in <= 300, "{expires_in}");
    let token = body["access_token"].as_str().unwrap();

    let me = bearer_me(&app, token).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["username"], "alice");

    // A form body works too.
    let form = app
        .client
        .post(app.url("/api/token"))
        .form(&[("process", "login-from-cookie")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert_eq!(json(form).await["access_token"], token);

    // The token page is there for the signed-in user.
    let page = app.get("/token").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/static/token.js"));
}

#[actix_web::test]
async fn a_bearer_token_of_a_new_subject_provisions_its_user() {
    let app = spawn_app().await;
    let body = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), BOB).await;
    assert_eq!(app.user_count(), 0);
    let me = bearer_me(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(json(me).await["username"], "bob");
    assert_eq!(app.user_count(), 1);
}

#[actix_web::test]
async fn bad_token_requests_get_clear_errors() {
    let app = spawn_app().await;
    let anonymous = post_token(&app).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(json(anonymous).await["error"]["code"], "auth_redirect");

    app.login(ALICE, "/").await;
    let unknown = app
        .client
        .post(app.url("/api/token"))
        .json(&json!({"process": "steal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let body = json(unknown).await;
    assert_eq!(body["error"]["code"], "invalid_process");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("login-from-cookie"));
    let garbage = app
        .client
        .post(app.url("/api/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(json(garbage).await["error"]["code"], "invalid_request");
}

#[actix_web::test]
async fn a_cross_site_token_request_is_refused() {
    let app = spawn_app().await;
    app.login(ALICE, "/").await;
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = app
            .client
            .post(app.url("/api/token"))
            .header(name, value)
            .form(&[("process", "login-from-cookie")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        assert!(json(r).await.get("access_token").is_none());
    }
    let same = app
        .client
        .post(app.url("/api/token"))
        .header("origin", &app.address)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"process": "login-from-cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn parts(token: &str) -> (Value, Value, String) {
    use base64::Engine;
    let mut it = token.split('.');
    let dec = |s: &str| -> Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    let h = dec(it.next().unwrap());
    let p = dec(it.next().unwrap());
    (h, p, it.next().unwrap().to_string())
}

#[actix_web::test]
async fn hostile_and_wrong_tokens_are_all_401_and_never_500() {
    let app = spawn_app().await;
    let grant = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), ALICE).await;
    let good = grant["access_token"].as_str().unwrap().to_string();
    assert_eq!(bearer_me(&app, &good).await.status(), 200);
    let (header, payload, signature) = parts(&good);

    let mut cases: Vec<(&str, String)> = vec![];
    // Tampered payload, original signature.
    let mut p = payload.clone();
    p["preferred_username"] = "mallory".into();
    cases.push((
        "tampered payload",
        format!("{}.{}.{}", b64(&header), b64(&p), signature),
    ));
    // Tampered signature.
    let mut sig = signature.clone().into_bytes();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    cases.push((
        "tampered signature",
        format!(
            "{}.{}.{}",
            b64(&header),
            b64(&payload),
            String::from_utf8(sig).unwrap()
        ),
    ));
    // alg none.
    let none = json!({"alg": "none", "typ": "JWT", "kid": header["kid"]});
    cases.push(("alg none", format!("{}.{}.", b64(&none), b64(&payload))));
    // HS256 "signed" with the realm's public key (the key-confusion attack).
    let jwks = realm_jwks().await;
    let cert = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .and_then(|k| k["x5c"][0].as_str())
        .unwrap()
        .to_string();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----\n");
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = header["kid"].as_str().map(String::from);
    let forged = jsonwebtoken::encode(
        &hs,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .unwrap();
    cases.push(("HS256 with the public key", forged));
    // An ID token is not an access token.
    cases.push(("ID token", grant["id_token"].as_str().unwrap().to_string()));
    // A token for another audience: Keycloak's admin-cli client in the same realm.
    let other = password_grant(&issuer(), "admin-cli", None, ALICE).await;
    cases.push((
        "wrong audience",
        other["access_token"].as_str().unwrap().to_string(),
    ));
    // Same realm keys, another issuer: Keycloak behind a proxy names itself by the proxy.
    let proxy = FaultProxy::start().await;
    let elsewhere = password_grant(
        &proxy.issuer(),
        "keygate",
        Some("keygate-dev-secret"),
        ALICE,
    )
    .await;
    let elsewhere = elsewhere["access_token"].as_str().unwrap().to_string();
    assert_ne!(parts(&elsewhere).1["iss"], payload["iss"]);
    cases.push(("wrong issuer", elsewhere));
    // A critical header extension nobody here understands.
    let mut h = header.clone();
    h["crit"] = json!(["exp"]);
    cases.push((
        "crit header",
        format!("{}.{}.{}", b64(&h), b64(&payload), signature),
    ));
    // Unknown key id.
    let mut h = header.clone();
    h["kid"] = "no-such-key".into();
    cases.push((
        "unknown kid",
        format!("{}.{}.{}", b64(&h), b64(&payload), signature),
    ));
    // Garbage.
    cases.push(("not a JWT", "abc".into()));
    cases.push(("bad base64", "a.b.c".into()));
    cases.push(("empty segments", "..".into()));

    for (name, token) in &cases {
        let r = bearer_me(&app, token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_eq!(json(r).await["error"]["code"], "auth_redirect", "{name}");
    }
    for header_value in [
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        "Bearer",
        "Bearer  ",
        "bearer",
        "Token x",
    ] {
        let r = reqwest::Client::new()
            .get(app.url("/api/me"))
            .header("authorization", header_value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header_value:?}");
    }
    // And a bad header never falls back to a valid session.
    app.login(ALICE, "/").await;
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn an_expired_token_is_rejected() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(2).await;
    let app = spawn_app_with(client_options(&client)).await;
    let grant = password_grant(&issuer(), &client.client_id, Some(&client.secret), BOB).await;
    let token = grant["access_token"].as_str().unwrap();
    assert_eq!(bearer_me(&app, token).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The cached validation ends with the token's exp.
    assert_eq!(bearer_me(&app, token).await.status(), 401);
}

#[actix_web::test]
async fn a_token_too_large_for_a_cookie_is_served_from_the_session() {
    let admin = RealmAdmin::connect().await;
    let user = admin.create_user("bigtoken").await;
    // Enough realm roles to push the access token far past 4 KB.
    let mut roles = vec![];
    for i in 0..120 {
        let name = format!("bulk-role-{i:03}-with-a-deliberately-long-name-for-token-size");
        let _ = admin
            .request(reqwest::Method::POST, "/roles")
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        let role = admin.get_json(&format!("/roles/{name}")).await;
        roles.push(role);
    }
    let r = admin
        .request(
            reqwest::Method::POST,
            &format!("/users/{}/role-mappings/realm", user.id),
        )
        .json(&roles)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let app = spawn_app().await;
    let done = app.login(user.creds(), "/").await;
    assert_eq!(done.status(), 303);
    let cookies = set_cookies(&done);
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("TOKEN=") && !c.starts_with("TOKEN=;")),
        "no oversized TOKEN cookie: {cookies:?}"
    );
    assert_eq!(app.me().await.status(), 200, "served from the session");
    let token = json(post_token(&app).await).await;
    let token = token["access_token"]
        .as_str()
        .expect("token from the session");
    assert!(
        token.len() > 4096,
        "the token really is large ({})",
        token.len()
    );
    assert_eq!(bearer_me(&app, token).await.status(), 200);
}

#[actix_web::test]
async fn without_an_audience_mapper_tokens_pass_only_with_accept_azp() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(300).await;
    let mappers: Vec<Value> = serde_json::from_value(
        admin
            .get_json(&format!("/clients/{}/protocol-mappers/models", client.uuid))
            .await,
    )
    .unwrap();
    for m in mappers
        .iter()
        .filter(|m| m["protocolMapper"] == "oidc-audience-mapper")
    {
        let r = admin
            .request(
                reqwest::Method::DELETE,
                &format!(
                    "/clients/{}/protocol-mappers/models/{}",
                    client.uuid,
                    m["id"].as_str().unwrap()
                ),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let grant = password_grant(&issuer(), &client.client_id, Some(&client.secret), BOB).await;
    let token = grant["access_token"].as_str().unwrap();
    let aud = parts(token).1["aud"].clone();
    assert!(
        !aud.to_string().contains(&client.client_id),
        "no audience mapper: aud is {aud}"
    );

    let options = |accept_azp: &str| AppOptions {
        extra: vec![
            ("KEYGATE_CLIENT_ID", client.client_id.clone()),
            ("KEYGATE_CLIENT_SECRET", client.secret.clone()),
            ("KEYGATE_ACCEPT_AZP", accept_azp.into()),
        ],
        ..Default::default()
    };
    let strict = spawn_app_with(options("false")).await;
    assert_eq!(bearer_me(&strict, token).await.status(), 401);
    let lenient = spawn_app_with(options("true")).await;
    assert_eq!(bearer_me(&lenient, token).await.status(), 200);
    // azp must name this client: another client's token is still refused.
    let other = password_grant(&issuer(), "keygate", Some("keygate-dev-secret"), BOB).await;
    let other = other["access_token"].as_str().unwrap();
    assert_eq!(bearer_me(&lenient, other).await.status(), 401);
}

/// Someone who can set cookies for this site (a sibling subdomain, an application proxied under
/// its origin) plants their own token: browsers send the cookie with the longer path first.
#[actix_web::test]
async fn a_planted_token_cookie_never_becomes_the_victims_token() {
    let app = spawn_app().await;
    let session = session_cookie(&app.login(ALICE, "/").await);
    let attacker = demo_token(BOB).await;
    let r = reqwest::Client::new()
        .post(app.url("/api/token"))
        .header("cookie", format!("TOKEN={attacker}; {session}"))
        .json(&serde_json::json!({"process": "login-from-cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let handed_out = json(r).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        jwt_claims(&handed_out)["preferred_username"],
        "alice",
        "the session's own token, not the planted one"
    );

    // Nor does the extractor look up (or create) a user for a planted subject.
    let admin = RealmAdmin::connect().await;
    let stranger = admin.create_user("planted").await;
    let foreign = demo_token(stranger.creds()).await;
    let before = app.user_count();
    let me = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", format!("TOKEN={foreign}; {session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(me).await["username"], "alice");
    assert_eq!(app.user_count(), before, "no user for the planted subject");
}

#[actix_web::test]
async fn on_https_the_cookies_carry_the_host_prefix() {
    let app = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_PUBLIC_URL", "https://127.0.0.1:8443".into())],
        ..Default::default()
    })
    .await;
    let r = app.get("/login/keycloak?next=/").await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r);
    assert!(cookie.starts_with("__Host-keygate_session="), "{cookie}");
    let header = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        header.contains("Secure") && header.contains("Path=/"),
        "{header}"
    );
    assert!(!header.contains("Domain"), "{header}");
}
