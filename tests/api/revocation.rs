//! Logout stops bearer tokens everywhere: a session ended on one instance (user logout,
//! Keycloak's back-channel logout, an admin's sign-out) refuses its access token as a bearer
//! token on every instance within the revocation list's reload interval, and Keycloak's sign-out
//! of a user ends all of the user's keygate sessions, not only the one its logout token names.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// Polls `check` until it holds or `within` passes; returns how long it took.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn access_token(app: &TestApp) -> String {
    json(post_token(app).await).await["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

#[actix_web::test]
async fn a_logout_on_one_instance_ends_the_bearer_token_on_the_other() {
    let (first, second) = spawn_pair(AppOptions::default).await;
    let session = session_cookie(&first.login(ALICE, "/").await);
    // The same session cookie, copied: what a second tab or a stolen cookie would send.
    let copy = |app: &TestApp| {
        let (url, cookie) = (app.url("/api/me"), session.clone());
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let token = access_token(&first).await;
    assert_eq!(
        bearer_me(&second, &token).await.status(),
        200,
        "cached on B"
    );
    assert_eq!(copy(&first).await, 200);
    assert_eq!(copy(&second).await, 200, "the session is in B's memory too");

    let csrf = csrf_of(&first.get("/logout").await.text().await.unwrap());
    let r = first.post_logout(&csrf).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        bearer_me(&first, &token).await.status(),
        401,
        "at once on the instance that ended it"
    );
    assert_eq!(
        copy(&first).await,
        401,
        "the session too, from memory or not"
    );
    let took = eventually(Duration::from_secs(5), || async {
        copy(&second).await == 401
    })
    .await;
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(4)),
        "the other instance ends the session within the reload interval: {took:?}"
    );
    let took = eventually(Duration::from_secs(5), || async {
        bearer_me(&second, &token).await.status() == 401
    })
    .await;
    let took = took.expect("the other instance refuses the token");
    assert!(
        took < Duration::from_secs(4),
        "within the reload interval: {took:?}"
    );
}

#[actix_web::test]
async fn keycloaks_sign_out_ends_every_session_and_their_tokens_on_both_instances() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_admin_client(300).await;
    let user = admin.create_user("everywhere").await;
    let (first, second) = spawn_pair(|| client_options(&client)).await;
    admin
        .set_client_attributes(
            &client.uuid,
            json!({
                "backchannel.logout.url": first.url("/logout/backchannel"),
                "backchannel.logout.session.required": "true",
            }),
        )
        .await;
    first.login(user.creds(), "/").await;
    let (other, _) = first.other_browser(user.creds()).await;
    assert_eq!(first.session_count(), 2, "two browsers");
    let token = access_token(&first).await;
    assert_eq!(bearer_me(&second, &token).await.status(), 200);

    admin.logout_user(&user.id).await;
    let ended = eventually(Duration::from_secs(5), || async {
        first.session_count() == 0
    })
    .await;
    assert!(ended.is_some(), "both keygate sessions end");
    let other_me = other.get(first.url("/api/me")).send().await.unwrap();
    assert_eq!(other_me.status(), 401, "the second browser is signed out");
    let refused = eventually(Duration::from_secs(5), || async {
        bearer_me(&second, &token).await.status() == 401
    })
    .await;
    assert!(refused.is_some(), "the other instance refuses the token");
}
