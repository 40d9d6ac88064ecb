//! Reverse-proxy mode (`KEYGATE_UPSTREAM`) in front of a real upstream server: identity headers
//! in, forged ones out, route rules, streaming both ways, WebSocket upgrades, and an upstream that
//! is down or slow.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use crate::helpers::*;

const RULES: &str = r#"
[[rules]]
prefix = "/public/"
access = "public"

[[rules]]
prefix = "/reports/"
methods = ["POST"]
access = "role:keygate-admin"

[[rules]]
prefix = "/reports/"
access = "authenticated"

[[rules]]
prefix = "/moderation/"
access = "client-role:keygate:notes-moderator"
"#;

/// keygate in proxy mode in front of `upstream`, with the rules above; the directory holds the
/// rules file.
async fn proxy_app(
    upstream: &str,
    extra: Vec<(&'static str, String)>,
) -> (TestApp, tempfile::TempDir) {
    let (dir, rules) = rules_file(RULES);
    let mut vars = vec![("KEYGATE_UPSTREAM", upstream.to_string()), rules];
    vars.extend(extra);
    let app = spawn_app_with(AppOptions {
        extra: vars,
        ..Default::default()
    })
    .await;
    (app, dir)
}

#[actix_web::test]
async fn the_upstream_sees_who_is_signed_in_and_never_a_forged_identity() {
    let upstream = spawn_upstream();
    let (app, _dir) = proxy_app(&upstream.address, vec![]).await;
    let anonymous = app.get("/app/page?x=1").await;
    assert_eq!(anonymous.status(), 303, "a page needs a sign-in");
    assert_eq!(location(&anonymous), "/login?next=%2Fapp%2Fpage%3Fx%3D1");
    let api = app.get("/api/things").await;
    assert_eq!(api.status(), 401);
    assert_eq!(json(api).await["error"]["code"], "auth_redirect");

    let done = app.login(("bob", "bob-password"), "/app/page?x=1").await;
    assert_eq!(location(&done), "/app/page?x=1", "back to the original URL");
    let session = session_cookie(&done);
    let seen = reqwest::Client::new()
        .get(app.url("/app/page?x=1"))
        .header("X-Auth-Request-User", "alice")
        .header("X-Auth-Request-Groups", "keygate-admin")
        .header("X-Keygate-User-Id", "1")
        .header("Cookie", format!("{session}; theme=dark"))
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 200);
    assert!(
        seen.headers().get("content-security-policy").is_none(),
        "no keygate CSP on the app"
    );
    let seen: Value = seen.json().await.unwrap();
    let headers = &seen["headers"];
    assert_eq!(seen["path"], "/app/page");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(headers["x-auth-request-user"], "bob");
    assert_eq!(headers["x-auth-request-preferred-username"], "bob");
    assert_eq!(headers["x-auth-request-email"], "bob@example.com");
    let id = user_id_of(&app.client, &app).await;
    assert_eq!(headers["x-keygate-user-id"], id.to_string());
    let groups = headers["x-auth-request-groups"].as_str().unwrap();
    assert!(
        !groups.split(',').any(|g| g == "keygate-admin"),
        "bob's own roles: {groups}"
    );
    assert!(
        headers.get("x-auth-request-access-token").is_none(),
        "off by default"
    );
    let cookies = headers["cookie"].as_str().unwrap_or("");
    assert!(
        cookies.contains("theme=dark"),
        "other cookies pass: {cookies}"
    );
    assert!(
        !cookies.contains("keygate_session"),
        "keygate's session cookie stays: {cookies}"
    );
    assert_eq!(headers["x-forwarded-proto"], "http");

    // A bearer token works the same way, and a forged header with no user does not pass either.
    let token = demo_token(("bob", "bob-password")).await;
    let r = reqwest::Client::new()
        .get(app.url("/app/x"))
        .bearer_auth(&token)
        .header("X-Auth-Request-User", "alice")
        .send()
        .await
        .unwrap();
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["headers"]["x-auth-request-user"], "bob");
    let public = reqwest::Client::new()
        .get(app.url("/public/a.css"))
        .header("X-Auth-Request-User", "alice")
        .send()
        .await
        .unwrap();
    let public: Value = public.json().await.unwrap();
    assert!(
        public["headers"].get("x-auth-request-user").is_none(),
        "{public}"
    );
}

#[actix_web::test]
async fn route_rules_pick_public_authenticated_and_role_paths() {
    let upstream = spawn_upstream();
    let (app, _dir) = proxy_app(&upstream.address, vec![]).await;
    assert_eq!(
        app.get("/public/logo.png").await.status(),
        200,
        "public for anyone"
    );
    assert_eq!(app.get("/reports/1").await.status(), 303);

    let (bob, _) = app.other_browser(("bob", "bob-password")).await;
    let (alice, _) = app.other_browser(("alice", "alice-password")).await;
    assert_eq!(
        bob.get(app.url("/reports/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = bob.post(app.url("/reports/1")).send().await.unwrap();
    assert_eq!(refused.status(), 403, "POST needs keygate-admin");
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("realm role keygate-admin"));
    assert_eq!(
        alice
            .post(app.url("/reports/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A client role: bob has none, a user given it gets in.
    let admin = RealmAdmin::connect().await;
    let moderator = admin.create_user("mod").await;
    admin
        .set_client_role(&moderator.id, "keygate", "notes-moderator", true)
        .await;
    let (moderator, _) = app.other_browser(moderator.creds()).await;
    assert_eq!(
        bob.get(app.url("/moderation/"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        moderator
            .get(app.url("/moderation/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let api = bob.get(app.url("/api/moderation/")).send().await.unwrap();
    assert_eq!(api.status(), 200, "/api/moderation/ is under no role rule");
}

/// `VmHWM` (peak resident set) of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[actix_web::test]
async fn large_bodies_stream_through_without_growing_keygate() {
    let upstream = spawn_upstream();
    let server = KeygateProcess::start(&[("KEYGATE_UPSTREAM", upstream.address.clone())]).await;
    let client = browser();
    let callback =
        keycloak_login_until_callback(&client, &server.address, ("bob", "bob-password"), "/").await;
    assert_eq!(client.get(callback).send().await.unwrap().status(), 303);
    // Warm up every path once, so what is measured next is the bodies alone.
    let small = client
        .post(format!("{}/upload", server.address))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    let _ = client
        .get(format!("{}/download?mb=1", server.address))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    let before = peak_rss_kib(server.pid());

    let ten_mb = 10 * 1024 * 1024;
    let sent = client
        .post(format!("{}/upload", server.address))
        .body(vec![b'u'; ten_mb])
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    assert_eq!(sent.json::<Value>().await.unwrap()["bytes"], ten_mb);
    let mut got = 0usize;
    let mut download = client
        .get(format!("{}/download?mb=10", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    while let Some(chunk) = download.chunk().await.unwrap() {
        got += chunk.len();
    }
    assert_eq!(got, ten_mb);
    let growth = peak_rss_kib(server.pid()).saturating_sub(before);
    assert!(
        growth < 5 * 1024,
        "keygate's peak RSS grew by {growth} KiB moving 2 x 10 MiB: a body was buffered"
    );
}

#[actix_web::test]
async fn websocket_upgrades_pass_through() {
    let upstream = spawn_upstream();
    let (app, _dir) = proxy_app(&upstream.address, vec![]).await;
    let signed_in = app.login(("bob", "bob-password"), "/").await;
    let cookie = session_cookie(&signed_in);
    let (_, mut socket) = awc::Client::new()
        .ws(format!("{}/ws", app.address.replacen("http", "ws", 1)))
        .set_header("Cookie", cookie)
        .connect()
        .await
        .expect("the WebSocket opens through keygate");
    socket
        .send(awc::ws::Message::Text("hello".into()))
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an answer")
        .unwrap()
        .unwrap();
    assert_eq!(frame, awc::ws::Frame::Text("echo: hello".into()));

    let refused = awc::Client::new()
        .ws(format!("{}/ws", app.address.replacen("http", "ws", 1)))
        .connect()
        .await;
    assert!(refused.is_err(), "no WebSocket without a sign-in");
}

#[actix_web::test]
async fn an_upstream_down_or_slow_is_a_502_or_504() {
    let down = format!("http://127.0.0.1:{}", closed_port());
    let (app, _dir) = proxy_app(&down, vec![]).await;
    app.login(("bob", "bob-password"), "/").await;
    let page = app.get("/anything").await;
    assert_eq!(page.status(), 502);
    assert!(page.text().await.unwrap().contains("cannot be reached"));
    let api = app.get("/api/anything").await;
    assert_eq!(api.status(), 502);
    assert_eq!(json(api).await["error"]["code"], "upstream_unavailable");

    let upstream = spawn_upstream();
    let (slow, _dir) = proxy_app(
        &upstream.address,
        vec![("KEYGATE_UPSTREAM_TIMEOUT_SECONDS", "1".into())],
    )
    .await;
    slow.login(("bob", "bob-password"), "/").await;
    let started = std::time::Instant::now();
    let r = slow.get("/slow").await;
    assert_eq!(r.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the timeout"
    );
    assert_eq!(
        slow.get("/healthz").await.status(),
        200,
        "keygate itself still answers"
    );
}
