//! Session lifetime: the idle limit counts from the last authenticated request, the absolute
//! limit from sign-in, and nothing else (an anonymous request that writes session state) moves
//! either.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// keygate with a 4-second idle limit and an 8-second absolute limit.
async fn short_sessions() -> TestApp {
    spawn_app_with(AppOptions {
        extra: vec![
            ("KEYGATE_SESSION_IDLE_SECONDS", "4".into()),
            ("KEYGATE_SESSION_MAX_SECONDS", "8".into()),
        ],
        ..Default::default()
    })
    .await
}

#[actix_web::test]
async fn a_session_without_requests_ends_after_the_idle_limit() {
    let app = short_sessions().await;
    app.login(ALICE, "/").await;
    assert_eq!(app.me().await.status(), 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        app.me().await.status(),
        401,
        "idle for longer than the limit"
    );
    assert_eq!(app.get("/token").await.status(), 303);
}

#[actix_web::test]
async fn an_active_session_ends_at_the_absolute_limit() {
    let app = short_sessions().await;
    app.login(ALICE, "/").await;
    let signed_in = Instant::now();
    // Requests every 1.5 s keep the idle limit away, past where it alone would have ended it.
    while signed_in.elapsed() < Duration::from_secs(6) {
        assert_eq!(app.me().await.status(), 200, "at {:?}", signed_in.elapsed());
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    while signed_in.elapsed() < Duration::from_secs(9) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = app.me().await;
    }
    assert_eq!(app.me().await.status(), 401, "past the absolute limit");
}

#[actix_web::test]
async fn anonymous_requests_that_write_the_session_do_not_keep_it_alive() {
    let app = short_sessions().await;
    app.login(ALICE, "/").await;
    assert_eq!(app.me().await.status(), 200);
    // Each of these stores a pending login in the signed-in session.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(app.get("/login/keycloak?next=/").await.status(), 303);
    }
    assert_eq!(
        app.me().await.status(),
        401,
        "state writes are not activity"
    );
}
