//! What operators rely on: readiness with the database gone, Keycloak gone and while draining,
//! and a graceful drain with a request in flight.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

#[actix_web::test]
async fn readyz_is_ready_then_unready_when_the_database_cannot_be_opened() {
    let app = spawn_app().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let body: Value = json(r).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"]["migrations"], "current");
    assert_eq!(body["identity_provider"]["reachable"], true);
    assert_eq!(body["identity_provider"]["discovery_cached"], true);
    assert!(body["identity_provider"]["last_success"].as_i64().is_some());

    // The database file is replaced by a directory: pooled connections would still read the old
    // file, a fresh one cannot open it (even as root, unlike a chmod).
    let db = app.app_state.settings.database_url.clone();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    std::fs::create_dir(&db).unwrap();
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: Value = json(r).await;
    assert_eq!(body["status"], "unready");
    assert_eq!(body["database"]["ok"], false);
}

#[actix_web::test]
async fn readyz_is_degraded_not_unready_while_keycloak_is_down() {
    let mut proxy = FaultProxy::start().await;
    let app = spawn_app_with(AppOptions {
        issuer: proxy.issuer(),
        ..Default::default()
    })
    .await;
    // Through the proxy, so the token's issuer is the one keygate is configured with.
    let grant = password_grant(
        &proxy.issuer(),
        "keygate",
        Some("keygate-dev-secret"),
        ("bob", "bob-password"),
    )
    .await;
    let token = grant["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        app.bearer_get("/api/me", &token).await.status(),
        200,
        "keys cached"
    );
    proxy.cut();
    // The probe's answer is kept a moment; wait it out.
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let r = app.get("/readyz").await;
        assert_eq!(
            r.status(),
            200,
            "Keycloak down is not a reason to take traffic away"
        );
        let body: Value = json(r).await;
        if body["status"] == "degraded" || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["identity_provider"]["reachable"], false);
    assert!(body["identity_provider"]["keys_cached"].as_u64().unwrap() >= 1);
    assert!(body["identity_provider"]["last_error"]["error"].is_string());
    assert_eq!(
        app.bearer_get("/api/me", &token).await.status(),
        200,
        "bearer tokens still work"
    );
    proxy.restore().await;
}

#[actix_web::test]
async fn sigterm_drains_then_finishes_the_request_in_flight_and_exits_0() {
    let upstream = spawn_upstream();
    let mut server = KeygateProcess::start(&[
        ("KEYGATE_UPSTREAM", upstream.address.clone()),
        ("KEYGATE_DRAIN_SECONDS", "2".into()),
        ("KEYGATE_SHUTDOWN_TIMEOUT_SECONDS", "10".into()),
    ])
    .await;
    let token = demo_token(("bob", "bob-password")).await;
    let slow = {
        let url = format!("{}/slow", server.address);
        let token = token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = reqwest::get(format!("{}/readyz", server.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readyz turns 503 at once");
    assert_eq!(json(ready).await["status"], "draining");
    let still = reqwest::get(format!("{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        200,
        "the listener keeps serving while draining"
    );

    assert_eq!(
        slow.await.unwrap().unwrap(),
        200,
        "the request in flight finished"
    );
    let status = server.wait_exit(Duration::from_secs(15)).await;
    assert_eq!(status, Some(0), "exit status 0");
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "it drained first"
    );
}

#[actix_web::test]
async fn json_logs_carry_the_request_id_which_the_answer_and_error_page_show() {
    let server = KeygateProcess::start(&[
        ("KEYGATE_LOG_FORMAT", "json".into()),
        ("RUST_LOG", "info".into()),
    ])
    .await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/me", server.address))
        .header("X-Request-Id", "test-req-42")
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-request-id"], "test-req-42");
    let page = client
        .get(format!("{}/no-such-page", server.address))
        .header("X-Request-Id", "bad id\twith tab")
        .send()
        .await
        .unwrap();
    let made = page.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(made, "bad id\twith tab", "a malformed id is replaced");
    assert!(page
        .text()
        .await
        .unwrap()
        .contains(&format!("<code id=\"request-id\">{made}</code>")));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message", "fields"] {
            assert!(line.get(key).is_some(), "{key} in {line}");
        }
    }
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"].as_str().unwrap_or("").contains("test-req-42")
                || l["request_id"] == "test-req-42"
        })
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["request_id"] == "test-req-42" && l["target"] != "keygate::access"),
        "a line logged while serving the request carries its id: {log}"
    );
    assert!(
        of_request.iter().any(|l| l["target"] == "keygate::access"
            && l["request_id"] == "test-req-42"
            && l["fields"]["status"] == "401"
            && l["fields"]["path"] == "/api/me"),
        "the access log names the request id: {log}"
    );
}

#[actix_web::test]
async fn metrics_count_by_route_pattern_and_never_name_a_user() {
    let app = spawn_app().await;
    app.login(("bob", "bob-password"), "/").await;
    let token = demo_token(("bob", "bob-password")).await;
    assert_eq!(app.bearer_get("/api/me", &token).await.status(), 200);
    assert_eq!(app.bearer_get("/api/me", "not.a.token").await.status(), 401);
    assert_eq!(app.get("/admin/users/123456").await.status(), 403);
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for wanted in [
        r#"keygate_http_requests_total{route="/api/me",method="GET",status="200"}"#,
        r#"keygate_http_requests_total{route="/admin/users/{id}",method="GET",status="403"}"#,
        r#"keygate_http_request_duration_seconds_count{route="/api/me",method="GET"}"#,
        r#"keygate_logins_total{method="code",outcome="ok"}"#,
        r#"keygate_bearer_validations_total{result="ok"}"#,
        r#"keygate_bearer_validations_total{result="malformed"}"#,
        r#"keygate_keycloak_requests_total{endpoint="token",outcome="ok"}"#,
        r#"keygate_keycloak_request_duration_seconds_count{endpoint="token"}"#,
        r#"keygate_discovery_fetches_total{outcome="ok"}"#,
        r#"keygate_jwks_fetches_total{outcome="ok"}"#,
        r#"keygate_cache_lookups_total{cache="users","#,
        "keygate_sessions_open",
    ] {
        assert!(text.contains(wanted), "{wanted} missing from:\n{text}");
    }
    for leak in ["bob", "123456", &token[..20], "127.0.0.1"] {
        assert!(!text.contains(leak), "the metrics name {leak:?}");
    }

    // Behind a trusted proxy, a client from elsewhere is refused.
    let proxied = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_TRUST_FORWARDED", "true".into())],
        ..Default::default()
    })
    .await;
    let r = proxied
        .client
        .get(proxied.url("/metrics"))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[actix_web::test]
async fn metrics_bind_moves_metrics_to_a_listener_of_their_own() {
    let port = closed_port();
    let app = spawn_app_with(AppOptions {
        extra: vec![("KEYGATE_METRICS_BIND", format!("127.0.0.1:{port}"))],
        ..Default::default()
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("keygate_http_requests_total"));
}
