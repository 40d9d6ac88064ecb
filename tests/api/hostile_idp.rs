//! A hostile identity provider: the fault injector for the ID-token attacks of OpenID Connect Core
//! 3.1.3.7 and the OAuth security BCP, which a real Keycloak cannot be made to send. It serves
//! discovery, a JWKS with its own RSA key, an authorization endpoint that answers at once, and a
//! token endpoint whose ID token is broken in one chosen way. Each broken login must end on a
//! clear 4xx/503 page with nothing written; the control case proves the fake is otherwise valid.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use base64::Engine;

use crate::helpers::*;

const CLIENT: &str = "keygate";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Attack {
    None,
    AlgNone,
    HmacWithClientSecret,
    WrongIssuer,
    WrongAudience,
    ExtraUntrustedAudience,
    OtherAuthorizedParty,
    ExtraAudienceForUs,
    Expired,
    IssuedInTheFuture,
    WrongNonce,
    MissingNonce,
    BadAtHash,
    UnknownKid,
    TamperedSignature,
    MissingSub,
    NoIdToken,
    UnknownTokenType,
    NotJson,
    ServerError,
    UserinfoOtherSubject,
    UserinfoForbidden,
    /// A refresh answered with an ID token nobody signed.
    ForgedIdTokenOnRefresh,
    /// Discovery promises RFC 9207's `iss` in responses; the response has none.
    IssPromisedButMissing,
    /// The response names the issuer with a trailing slash: another string.
    IssWithTrailingSlash,
    /// The response names the issuer exactly, as promised: the control case.
    IssExact,
}

struct Fake {
    base: String,
    attack: Attack,
    nonce: Option<String>,
}

fn now() -> i64 {
    keygate::testing::now()
}

fn sign(header: Header, claims: &Value) -> String {
    let pem = include_bytes!("../fixtures/forger-rsa.pem");
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

fn id_token(fake: &Fake) -> String {
    let mut claims = json!({
        "iss": fake.base, "aud": CLIENT, "sub": "hostile-subject", "exp": now() + 300,
        "iat": now(), "nonce": fake.nonce, "preferred_username": "mallory", "sid": "fake-sid",
        "email": "mallory@example.com", "email_verified": true,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("hostile-1".into());
    match fake.attack {
        Attack::WrongIssuer => claims["iss"] = "https://evil.example/realms/keygate".into(),
        Attack::WrongAudience => claims["aud"] = "someone-else".into(),
        Attack::ExtraUntrustedAudience => claims["aud"] = json!([CLIENT, "someone-else"]),
        Attack::OtherAuthorizedParty => claims["azp"] = "someone-else".into(),
        Attack::ExtraAudienceForUs => {
            claims["aud"] = json!([CLIENT, "account"]);
            claims["azp"] = CLIENT.into();
        }
        Attack::Expired => claims["exp"] = (now() - 3600).into(),
        Attack::IssuedInTheFuture => {
            claims["iat"] = (now() + 86_400).into();
            claims["exp"] = (now() + 90_000).into();
        }
        Attack::WrongNonce => claims["nonce"] = "not-the-nonce".into(),
        Attack::MissingNonce => {
            claims.as_object_mut().unwrap().remove("nonce");
        }
        Attack::BadAtHash => claims["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA".into(),
        Attack::UnknownKid => header.kid = Some("no-such-key".into()),
        Attack::MissingSub => {
            claims.as_object_mut().unwrap().remove("sub");
        }
        _ => {}
    }
    match fake.attack {
        Attack::AlgNone => {
            use base64::Engine;
            let enc =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                enc(&json!({"alg": "none", "kid": "hostile-1"})),
                enc(&claims)
            )
        }
        Attack::HmacWithClientSecret => {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("hostile-1".into());
            jsonwebtoken::encode(
                &h,
                &claims,
                &EncodingKey::from_secret(b"keygate-dev-secret"),
            )
            .unwrap()
        }
        Attack::TamperedSignature => {
            let token = sign(header, &claims);
            let (rest, sig) = token.rsplit_once('.').unwrap();
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            format!("{rest}.{flipped}{}", &sig[1..])
        }
        _ => sign(header, &claims),
    }
}

async fn discovery(fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let (base, promise) = {
        let fake = fake.lock().unwrap();
        let promise = matches!(
            fake.attack,
            Attack::IssPromisedButMissing | Attack::IssWithTrailingSlash | Attack::IssExact
        );
        (fake.base.clone(), promise)
    };
    HttpResponse::Ok().json(json!({
        "authorization_response_iss_parameter_supported": promise,
        "issuer": base,
        "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
    }))
}

async fn jwks() -> HttpResponse {
    let jwk: Value = serde_json::from_str(include_str!("../fixtures/forger-jwk.json")).unwrap();
    HttpResponse::Ok().json(json!({"keys": [jwk]}))
}

/// Consents at once: straight back to the client with a code.
async fn authorize(req: HttpRequest, fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let (base, attack) = {
        let mut fake = fake.lock().unwrap();
        fake.nonce = q.get("nonce").cloned();
        (fake.base.clone(), fake.attack)
    };
    let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
    back.query_pairs_mut()
        .append_pair("code", "hostile-code")
        .append_pair("state", &q["state"]);
    match attack {
        Attack::IssWithTrailingSlash => {
            back.query_pairs_mut()
                .append_pair("iss", &format!("{base}/"));
        }
        Attack::IssExact => {
            back.query_pairs_mut().append_pair("iss", &base);
        }
        _ => {}
    }
    HttpResponse::Found()
        .insert_header(("Location", back.to_string()))
        .finish()
}

async fn token(
    fake: web::Data<Mutex<Fake>>,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    let fake = fake.lock().unwrap();
    let mut body = json!({"access_token": "opaque-access-token", "token_type": "Bearer",
                          "expires_in": 300, "refresh_token": "opaque-refresh",
                          "id_token": id_token(&fake)});
    let refresh = form.get("grant_type").map(String::as_str) == Some("refresh_token");
    match fake.attack {
        Attack::ForgedIdTokenOnRefresh if refresh => {
            // Well-formed, so a client parses it; unsigned, so nothing vouches for it.
            use base64::Engine;
            let b64 =
                |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            let claims = json!({"iss": fake.base, "aud": CLIENT, "sub": "someone-else",
                                "exp": now() + 300, "iat": now()});
            body["id_token"] = format!("{}.{}.", b64(json!({"alg": "none"})), b64(claims)).into()
        }
        Attack::NoIdToken => {
            body.as_object_mut().unwrap().remove("id_token");
        }
        Attack::UnknownTokenType => body["token_type"] = "strange".into(),
        Attack::NotJson => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{oops")
        }
        Attack::ServerError => return HttpResponse::InternalServerError().body("boom"),
        _ => {}
    }
    HttpResponse::Ok().json(body)
}

async fn userinfo(fake: web::Data<Mutex<Fake>>) -> HttpResponse {
    let sub = match fake.lock().unwrap().attack {
        Attack::UserinfoOtherSubject => "someone-else",
        // What Keycloak answers when the access token lacks the openid scope.
        Attack::UserinfoForbidden => return HttpResponse::Forbidden().finish(),
        _ => "hostile-subject",
    };
    HttpResponse::Ok().json(json!({"sub": sub, "preferred_username": "userinfo-name"}))
}

async fn start_fake(attack: Attack) -> Arc<web::Data<Mutex<Fake>>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = web::Data::new(Mutex::new(Fake {
        base,
        attack,
        nonce: None,
    }));
    let data = fake.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery),
            )
            .route("/jwks", web::get().to(jwks))
            .route("/auth", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/userinfo", web::get().to(userinfo))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Arc::new(fake)
}

/// Runs one login against the fake; returns the callback's status and body.
async fn login_against(attack: Attack) -> (u16, String, TestApp) {
    let fake = start_fake(attack).await;
    let issuer = fake.lock().unwrap().base.clone();
    let app = spawn_app_with(AppOptions {
        issuer,
        ..Default::default()
    })
    .await;
    let start = app.get("/login/keycloak?next=/").await;
    assert_eq!(start.status(), 303, "{attack:?}: start");
    let at_idp = app.client.get(location(&start)).send().await.unwrap();
    assert_eq!(at_idp.status(), 302, "{attack:?}: fake IdP consents");
    let callback = app.client.get(location(&at_idp)).send().await.unwrap();
    let status = callback.status().as_u16();
    (status, callback.text().await.unwrap(), app)
}

#[actix_web::test]
async fn the_fake_provider_is_valid_when_it_does_not_attack() {
    let (status, _, app) = login_against(Attack::None).await;
    assert_eq!(status, 303);
    let me = json(app.me().await).await;
    // Userinfo (same subject) overlays the ID token's claims.
    assert_eq!(me["username"], "userinfo-name");
    assert_eq!(me["accounts"][0]["uid"], "hostile-subject");
}

#[actix_web::test]
async fn a_userinfo_403_does_not_fail_the_login() {
    let (status, _, app) = login_against(Attack::UserinfoForbidden).await;
    assert_eq!(status, 303);
    assert_eq!(
        json(app.me().await).await["username"],
        "mallory",
        "ID token claims"
    );
}

#[actix_web::test]
async fn userinfo_for_another_subject_is_ignored() {
    let (status, _, app) = login_against(Attack::UserinfoOtherSubject).await;
    assert_eq!(status, 303);
    assert_eq!(json(app.me().await).await["username"], "mallory");
}

#[actix_web::test]
async fn every_broken_id_token_is_refused_with_nothing_written() {
    let attacks = [
        Attack::AlgNone,
        Attack::HmacWithClientSecret,
        Attack::WrongIssuer,
        Attack::WrongAudience,
        Attack::ExtraUntrustedAudience,
        Attack::OtherAuthorizedParty,
        Attack::Expired,
        Attack::WrongNonce,
        Attack::MissingNonce,
        Attack::BadAtHash,
        Attack::UnknownKid,
        Attack::TamperedSignature,
        Attack::MissingSub,
        Attack::NoIdToken,
        Attack::UnknownTokenType,
        Attack::NotJson,
    ];
    for attack in attacks {
        let (status, body, app) = login_against(attack).await;
        assert_eq!(status, 400, "{attack:?}: {body}");
        assert!(
            body.contains("Sign-in failed"),
            "{attack:?}: a clear page: {body}"
        );
        assert_eq!(app.user_count(), 0, "{attack:?}: no user");
        assert_eq!(app.me().await.status(), 401, "{attack:?}: no session");
    }
}

#[actix_web::test]
async fn an_id_token_issued_in_the_future_is_refused() {
    let (status, _, app) = login_against(Attack::IssuedInTheFuture).await;
    assert_eq!(status, 400);
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn a_token_endpoint_error_is_a_503_page() {
    let (status, body, app) = login_against(Attack::ServerError).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Identity provider unreachable"));
    assert_eq!(app.user_count(), 0);
}

#[actix_web::test]
async fn extra_audiences_pass_when_azp_names_us() {
    let (status, body, _app) = login_against(Attack::ExtraAudienceForUs).await;
    assert_eq!(status, 303, "{body}");
}

/// Access tokens signed with the fake provider's own key: everything right but one claim.
#[actix_web::test]
async fn access_tokens_with_one_bad_claim_are_401() {
    let fake = start_fake(Attack::None).await;
    let base = fake.lock().unwrap().base.clone();
    let app = spawn_app_with(AppOptions {
        issuer: base.clone(),
        extra: vec![("KEYGATE_LEEWAY_SECONDS", "5".into())],
        ..Default::default()
    })
    .await;
    let good = json!({"iss": base, "aud": [CLIENT, "account"], "azp": CLIENT, "sub": "s-1",
                      "typ": "Bearer", "exp": now() + 300, "iat": now(), "nbf": now() - 10,
                      "preferred_username": "tokenuser"});
    let kid = |k: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(k.into());
        h
    };
    let me = |token: String| {
        let app = &app;
        async move { app.bearer_get("/api/me", &token).await.status().as_u16() }
    };
    assert_eq!(
        me(sign(kid("hostile-1"), &good)).await,
        200,
        "the control token"
    );

    let mut cases: Vec<(&str, Value)> = vec![];
    let mut with = |name: &'static str, f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        cases.push((name, c));
    };
    with("issued in the future", &|c| {
        c["iat"] = (now() + 3600).into()
    });
    with("not yet valid", &|c| c["nbf"] = (now() + 3600).into());
    with("expired", &|c| c["exp"] = (now() - 3600).into());
    with("no exp", &|c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    with("exp as text", &|c| c["exp"] = "tomorrow".into());
    with("no typ", &|c| {
        c.as_object_mut().unwrap().remove("typ");
    });
    with("refresh token typ", &|c| c["typ"] = "Refresh".into());
    with("no aud", &|c| {
        c.as_object_mut().unwrap().remove("aud");
    });
    with("aud of another client", &|c| c["aud"] = "other".into());
    with("empty sub", &|c| c["sub"] = "".into());
    with("no sub", &|c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    with("issuer with a trailing slash", &|c| {
        c["iss"] = format!("{base}/").into()
    });
    for (name, claims) in cases {
        assert_eq!(me(sign(kid("hostile-1"), &claims)).await, 401, "{name}");
    }
    // Properly signed, so that each defect below is the only one.
    assert_eq!(me(sign(kid("other-key"), &good)).await, 401, "unknown kid");
    let mut critical = kid("hostile-1");
    critical.crit = Some(vec!["exp".into()]);
    assert_eq!(
        me(sign(critical, &good)).await,
        401,
        "a critical header extension"
    );
    let signed = sign(kid("hostile-1"), &good);
    let (body, signature) = signed.rsplit_once('.').unwrap();
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap();
    bytes[0] ^= 1;
    let tampered = format!(
        "{body}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    assert_eq!(me(tampered).await, 401, "one bit of the signature");
    // An `exp` at the end of time is valid, and its cached entry must not overflow `exp + leeway`.
    let mut forever = good.clone();
    forever["exp"] = i64::MAX.into();
    let forever = sign(kid("hostile-1"), &forever);
    assert_eq!(me(forever.clone()).await, 200, "the end of time");
    assert_eq!(me(forever).await, 200, "and again, from the cache");
    // A token far too large to be honest.
    let mut huge = good.clone();
    huge["padding"] = "x".repeat(100_000).into();
    let status = me(sign(kid("hostile-1"), &huge)).await;
    assert!(
        status == 401 || status == 431 || status == 400,
        "huge token: {status}"
    );
    assert_eq!(
        app.user_count(),
        1,
        "only the control token provisioned a user"
    );
}

/// Back-channel logout tokens signed with the provider's real key, each wrong in one way, end
/// nothing; the correct one ends the session.
#[actix_web::test]
async fn logout_tokens_with_one_defect_are_400_and_the_right_one_ends_the_session() {
    let (status, _, app) = login_against(Attack::None).await;
    assert_eq!(status, 303);
    assert_eq!(app.session_count(), 1);
    let base = app
        .app_state
        .settings
        .issuer_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let event = json!({"http://schemas.openid.net/event/backchannel-logout": {}});
    let good = json!({"iss": base, "aud": CLIENT, "iat": now(), "exp": now() + 120,
                      "jti": "j-1", "sid": "fake-sid", "sub": "hostile-subject", "events": event});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("hostile-1".into());
    header.typ = Some("logout+jwt".into());
    let post = |token: String| {
        let url = app.url("/logout/backchannel");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut cases: Vec<(&str, Value)> = vec![];
    let mut with = |name: &'static str, f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        cases.push((name, c));
    };
    with("a nonce", &|c| c["nonce"] = "n".into());
    with("no events", &|c| {
        c.as_object_mut().unwrap().remove("events");
    });
    with("another event", &|c| {
        c["events"] = json!({"http://example.com/other": {}})
    });
    with("neither sid nor sub", &|c| {
        let o = c.as_object_mut().unwrap();
        o.remove("sid");
        o.remove("sub");
    });
    with("another audience", &|c| c["aud"] = "someone-else".into());
    with("another issuer", &|c| {
        c["iss"] = "https://evil.example".into()
    });
    with("no iat", &|c| {
        c.as_object_mut().unwrap().remove("iat");
    });
    with("issued in the future", &|c| {
        c["iat"] = (now() + 3600).into()
    });
    with("expired", &|c| c["exp"] = (now() - 3600).into());
    with("no exp", &|c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    with("no jti", &|c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    for (name, claims) in cases {
        assert_eq!(post(sign(header.clone(), &claims)).await, 400, "{name}");
        assert_eq!(app.session_count(), 1, "{name} ended nothing");
    }
    assert_eq!(post(sign(header.clone(), &good)).await, 200);
    assert_eq!(app.session_count(), 0, "the right token ends the session");
    assert_eq!(app.me().await.status(), 401);

    // Signed in again (the fake names the same sid): a replay of the used token ends nothing.
    let start = app.get("/login/keycloak?next=/").await;
    let at_idp = app.client.get(location(&start)).send().await.unwrap();
    let back = app.client.get(location(&at_idp)).send().await.unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(app.session_count(), 1);
    assert_eq!(
        post(sign(header.clone(), &good)).await,
        400,
        "a replay is refused"
    );
    assert_eq!(app.session_count(), 1, "and ends nothing");
}

/// A `sub`-only logout token (what a provider sends for "all sessions of this user") refuses
/// every bearer token of that subject issued up to then, and none issued after.
#[actix_web::test]
async fn a_sub_only_logout_token_revokes_the_subjects_older_bearer_tokens() {
    let fake = start_fake(Attack::None).await;
    let base = fake.lock().unwrap().base.clone();
    let app = spawn_app_with(AppOptions {
        issuer: base.clone(),
        ..Default::default()
    })
    .await;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("hostile-1".into());
    let token = |iat: i64| {
        let claims = json!({"iss": base, "aud": CLIENT, "sub": "s-2", "typ": "Bearer",
                            "exp": now() + 300, "iat": iat, "sid": "sid-of-s-2"});
        sign(header.clone(), &claims)
    };
    let before = token(now() - 1);
    assert_eq!(app.bearer_get("/api/me", &before).await.status(), 200);

    let mut logout_header = header.clone();
    logout_header.typ = Some("logout+jwt".into());
    let event = json!({"http://schemas.openid.net/event/backchannel-logout": {}});
    let logout = json!({"iss": base, "aud": CLIENT, "iat": now(), "exp": now() + 120,
                        "jti": "j-sub", "sub": "s-2", "events": event});
    let r = reqwest::Client::new()
        .post(app.url("/logout/backchannel"))
        .form(&[("logout_token", sign(logout_header, &logout))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.bearer_get("/api/me", &before).await.status(),
        401,
        "a token of the subject from before its logout, even from the cache"
    );
    let after = token(now() + 1);
    assert_eq!(
        app.bearer_get("/api/me", &after).await.status(),
        200,
        "a new sign-in"
    );
}

/// The ID token of a refresh is not validated, so it must not become the logout hint.
#[actix_web::test]
async fn an_id_token_from_a_refresh_is_not_kept() {
    let (status, _, app) = login_against(Attack::ForgedIdTokenOnRefresh).await;
    assert_eq!(status, 303);
    let stored = || {
        use diesel::prelude::*;
        use keygate::testing::schema::sessions::dsl::*;
        let raw: String = sessions.select(state).first(&mut app.conn()).unwrap();
        keygate::testing::auth_from_state(&raw)
            .unwrap()
            .tokens
            .id_token
            .unwrap()
    };
    let signed_in = stored();
    // Forced refreshes come at most every 5 s per session.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let r = app
        .client
        .post(app.url("/api/token"))
        .json(&json!({"process": "login-from-cookie", "fresh": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the refresh itself goes through");
    assert_eq!(app.app_state.refresh_count(), 1);
    assert_eq!(
        stored(),
        signed_in,
        "the sign-in's validated ID token stays the hint"
    );
}

/// RFC 9207: a provider that promises to name itself in every authorization response must do so,
/// exactly.
#[actix_web::test]
async fn a_promised_issuer_in_the_response_must_be_there_and_exact() {
    for attack in [Attack::IssPromisedButMissing, Attack::IssWithTrailingSlash] {
        let (status, body, app) = login_against(attack).await;
        assert_eq!(status, 400, "{attack:?}: {body}");
        assert!(body.contains("Sign-in failed"), "{attack:?}: {body}");
        assert_eq!(app.user_count(), 0, "{attack:?}: no user");
    }
    let (status, _, app) = login_against(Attack::IssExact).await;
    assert_eq!(status, 303, "the exact issuer signs in");
    assert_eq!(app.user_count(), 1);
}
