//! Admin pages: who may enter, user actions, CSRF, audit rows, and a 10,000-user table.

use diesel::prelude::*;
use serde_json::Value;

use crate::helpers::*;

/// Confirms and runs an admin action as the signed-in admin of `app.client`.
async fn admin_action(app: &TestApp, user: i64, action: &str) -> reqwest::Response {
    let confirm = app
        .get(&format!("/admin/users/{user}/confirm/{action}"))
        .await;
    assert_eq!(confirm.status(), 200, "confirm page for {action}");
    let csrf = csrf_of(&confirm.text().await.unwrap());
    app.client
        .post(app.url(&format!("/admin/users/{user}/{action}")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn only_admins_enter_and_anonymous_visitors_are_sent_to_login() {
    let app = spawn_app().await;
    let anonymous = app.get("/admin/users?q=x").await;
    assert_eq!(anonymous.status(), 303);
    assert_eq!(location(&anonymous), "/login?next=%2Fadmin%2Fusers%3Fq%3Dx");

    let (bob, bob_id) = app.other_browser(BOB).await;

    app.login(ALICE, "/").await;
    let alice_id = user_id_of(&app.client, &app).await;
    for page in [
        "/admin".to_string(),
        "/admin/users".to_string(),
        "/admin/users?q=bo&sort=last_login&dir=asc&page=1".to_string(),
        format!("/admin/users/{bob_id}"),
        format!("/admin/users/{bob_id}/confirm/deactivate"),
        "/admin/audit".to_string(),
        format!("/admin/audit?kind=login&user={alice_id}"),
    ] {
        let r = app.get(&page).await;
        assert_eq!(r.status(), 200, "alice on {page}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("style=") && !body.contains("<script>"),
            "no inline code: {page}"
        );
        let r = bob.get(app.url(&page)).send().await.unwrap();
        assert_eq!(r.status(), 403, "bob on {page}");
    }
    let dashboard = app.page("/admin").await;
    assert!(dashboard.contains("id=\"stat-users\">2<"), "{dashboard}");
    assert!(dashboard.contains("id=\"stat-logins-day\">2<"));
    assert!(dashboard.contains("<svg class=\"chart\""));
    assert_eq!(app.get("/admin/users/999999").await.status(), 404);
    assert_eq!(app.get("/admin/users/not-a-number").await.status(), 404);
}

#[actix_web::test]
async fn deactivation_ends_bobs_sessions_and_tokens_and_reactivation_lets_him_sign_in_again() {
    let app = spawn_app().await;
    let (bob, bob_id) = app.other_browser(BOB).await;
    let bearer = demo_token(BOB).await;
    let with_bearer = |token: String| {
        let app = &app;
        async move { app.bearer_get("/api/me", &token).await.status() }
    };
    assert_eq!(
        with_bearer(bearer.clone()).await,
        200,
        "bearer works and is cached"
    );

    app.login(ALICE, "/").await;
    let alice_id = user_id_of(&app.client, &app).await;
    let r = admin_action(&app, bob_id, "deactivate").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        format!("/admin/users/{bob_id}?done=deactivate")
    );

    assert_eq!(
        bob.get(app.url("/api/me")).send().await.unwrap().status(),
        401,
        "his session ended"
    );
    assert_eq!(with_bearer(bearer.clone()).await, 401, "caches included");
    assert_eq!(token_request(&bob, &app).await.status(), 401);
    let again = keycloak_login_until_callback(&bob, &app.address, BOB, "/").await;
    let refused = bob.get(again).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("deactivated by an administrator"));

    let r = admin_action(&app, bob_id, "reactivate").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        with_bearer(bearer).await,
        401,
        "a reactivation does not revive the tokens of before"
    );
    let again = keycloak_login_until_callback(&bob, &app.address, BOB, "/").await;
    assert_eq!(bob.get(again).send().await.unwrap().status(), 303);
    assert_eq!(
        bob.get(app.url("/api/me")).send().await.unwrap().status(),
        200,
        "a new sign-in works"
    );
    // Revocations are kept to the second: a token from the second of the deactivation is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        with_bearer(demo_token(BOB).await).await,
        200,
        "a new token works"
    );

    let events = audit_kinds(&app);
    let has = |k: &str, user: i64, actor: Option<i64>| {
        events
            .iter()
            .any(|(kind, u, a)| kind == k && *u == Some(user) && *a == actor)
    };
    assert!(has("login", bob_id, None));
    assert!(has("login", alice_id, None));
    assert!(has("admin_deactivate", bob_id, Some(alice_id)));
    assert!(has("admin_reactivate", bob_id, Some(alice_id)));
    assert!(
        has("login_failed", bob_id, None),
        "the refused login: {events:?}"
    );
    let page = app.page("/admin/audit?kind=admin_deactivate").await;
    assert!(
        page.contains("event-admin_deactivate") && page.contains(">bob<"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<td class=\"actor\"><a href=\"/admin/users/{alice_id}\">alice</a></td>"
        )),
        "the acting admin is shown: {page}"
    );
}

#[actix_web::test]
async fn admin_posts_without_a_valid_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let (bob, bob_id) = app.other_browser(BOB).await;
    app.login(ALICE, "/").await;
    for form in [vec![], vec![("csrf_token", "forged")]] {
        let r = app
            .client
            .post(app.url(&format!("/admin/users/{bob_id}/deactivate")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    // Another session's token is no token for this one, even the same admin's other browser.
    let (other_tab, _) = app.other_browser(ALICE).await;
    let theirs = other_tab
        .get(app.url(&format!("/admin/users/{bob_id}/confirm/deactivate")))
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&theirs.text().await.unwrap());
    let r = app
        .client
        .post(app.url(&format!("/admin/users/{bob_id}/deactivate")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text().await.unwrap().contains("Form expired"),
        "refused by the CSRF check, not by the role"
    );
    // And a non-admin with a valid token of his own is stopped by the role.
    let own = bob.get(app.url("/account/sessions")).send().await.unwrap();
    let bobs = csrf_of(&own.text().await.unwrap());
    let r = bob
        .post(app.url(&format!("/admin/users/{bob_id}/deactivate")))
        .form(&[("csrf_token", bobs.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Administrators only"));
    assert_eq!(
        bob.get(app.url("/api/me")).send().await.unwrap().status(),
        200
    );
    assert!(!audit_kinds(&app)
        .iter()
        .any(|(k, _, _)| k.starts_with("admin_")));
}

#[actix_web::test]
async fn sign_out_everywhere_and_unlink() {
    let admin = RealmAdmin::connect().await;
    let user = admin.create_user("signout").await;
    let app = spawn_app().await;
    let (victim, id) = app.other_browser(user.creds()).await;
    app.login(ALICE, "/").await;

    let r = admin_action(&app, id, "signout").await;
    assert_eq!(r.status(), 303);
    let done = location(&r);
    assert_eq!(
        victim
            .get(app.url("/api/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let sessions: Vec<Value> = serde_json::from_value(
        admin
            .get_json(&format!("/users/{}/sessions", user.id))
            .await,
    )
    .unwrap();
    assert!(
        sessions.is_empty(),
        "no Keycloak sessions left: {sessions:?}"
    );

    let detail = app.page(&done).await;
    assert!(detail.contains("signed out everywhere"));
    let account_id: i64 = {
        use keygate::testing::schema::social_accounts::dsl::*;
        social_accounts
            .filter(user_id.eq(id))
            .select(keygate::testing::schema::social_accounts::id)
            .first(&mut app.conn())
            .unwrap()
    };
    let confirm = app
        .page(&format!(
            "/admin/users/{id}/confirm/unlink?account={account_id}"
        ))
        .await;
    let csrf = csrf_of(&confirm);
    let r = app
        .client
        .post(app.url(&format!("/admin/users/{id}/unlink")))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("account_id", &account_id.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        count(&mut app.conn(), "social_accounts"),
        1,
        "only alice's is left"
    );
    let kinds: Vec<String> = audit_kinds(&app).into_iter().map(|(k, _, _)| k).collect();
    assert!(kinds.contains(&"admin_sign_out".to_string()));
    assert!(kinds.contains(&"admin_unlink".to_string()));
}

#[actix_web::test]
async fn pagination_and_search_answer_correctly_on_ten_thousand_users() {
    let app = spawn_app().await;
    {
        use keygate::testing::schema::users::dsl::*;
        let mut pooled = app.conn();
        // Batch inserts need the concrete backend (the multi-backend connection lacks them).
        let keygate::DbConn::Sqlite(conn) = &mut *pooled else {
            panic!("the test app runs on SQLite")
        };
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for chunk in (0..10_000i64).collect::<Vec<_>>().chunks(1000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|i| {
                        (
                            username.eq(format!("user-{i:05}")),
                            email.eq(Some(format!("user{i}@bulk.example"))),
                            first_name.eq(if i % 1000 == 7 { "Zebedee" } else { "Bulk" }),
                            last_name.eq("User"),
                            is_active.eq(true),
                            created_at.eq(1_700_000_000 + i),
                            last_login_at.eq(None::<i64>),
                        )
                    })
                    .collect();
                diesel::insert_into(users).values(rows).execute(conn)?;
            }
            Ok(())
        })
        .unwrap();
    }
    app.login(ALICE, "/").await;

    let first = app.page("/admin/users").await;
    assert!(first.contains("id=\"users-total\">(10001)<"));
    assert!(first.contains("Page 1 of 401"));
    assert_eq!(
        first.matches("<tr>").count() - 1,
        25,
        "a header row and 25 users"
    );
    assert!(
        first.contains(">alice<"),
        "newest first: alice signed up last"
    );

    let oldest = app.page("/admin/users?sort=created&dir=asc&page=1").await;
    let first_row = oldest.find(">user-00000<").expect("oldest first");
    assert!(first_row < oldest.find(">user-00001<").unwrap());
    let last = app.page("/admin/users?sort=created&dir=asc&page=401").await;
    assert_eq!(last.matches("<tr>").count() - 1, 1);
    assert!(last.contains(">alice<"));

    let found = app.page("/admin/users?q=USER-0424").await;
    assert!(
        found.contains("id=\"users-total\">(10)<"),
        "case-insensitive substring"
    );
    let by_name = app.page("/admin/users?q=zebedee").await;
    assert!(by_name.contains("id=\"users-total\">(10)<"));
    let by_email = app.page("/admin/users?q=user9999%40bulk").await;
    assert!(by_email.contains("id=\"users-total\">(1)<"));
    assert!(by_email.contains(">user-09999<"));
    // LIKE wildcards in the search are literal.
    let wildcard = app.page("/admin/users?q=%25").await;
    assert!(wildcard.contains("id=\"users-total\">(0)<"));
    let beyond = app.get("/admin/users?page=9999").await;
    assert_eq!(beyond.status(), 200);
}

#[actix_web::test]
async fn admin_pages_work_on_postgres_too() {
    let app = spawn_app_with(AppOptions {
        db: Db::Postgres,
        ..Default::default()
    })
    .await;
    app.login(ALICE, "/").await;
    let dashboard = app.get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    let dashboard = dashboard.text().await.unwrap();
    assert!(
        dashboard.contains("id=\"stat-logins-day\">1<"),
        "{dashboard}"
    );
    assert!(dashboard.contains("<title>"), "chart bars carry titles");
    let found = app.page("/admin/users?q=ALI&sort=last_login&dir=asc").await;
    assert!(found.contains("id=\"users-total\">(1)<"));
    let none = app.page("/admin/users?q=a_i").await;
    assert!(
        none.contains("id=\"users-total\">(0)<"),
        "`_` is literal on PostgreSQL too"
    );
    let audit = app.page("/admin/audit?kind=login").await;
    assert!(audit.contains("event-login"));
}

#[actix_web::test]
async fn old_audit_events_and_expired_sessions_are_purged() {
    let app = spawn_app().await;
    let now = keygate::testing::now();
    {
        use keygate::testing::schema::audit_events::dsl::*;
        use keygate::testing::schema::sessions;
        let mut conn = app.conn();
        for (age_days, text) in [(100, "old"), (1, "recent")] {
            diesel::insert_into(audit_events)
                .values((
                    kind.eq("login"),
                    created_at.eq(now - age_days * 86400),
                    detail.eq(text),
                ))
                .execute(&mut conn)
                .unwrap();
        }
        diesel::insert_into(sessions::table)
            .values((
                sessions::key_hash.eq("expired"),
                sessions::state.eq("{}"),
                sessions::expires_at.eq(now - 1),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    // A second instance on the same database purges when it starts (then every 5 minutes).
    let _other = spawn_app_with(AppOptions {
        extra: vec![
            (
                "KEYGATE_DATABASE_URL",
                app.app_state.settings.database_url.clone(),
            ),
            ("KEYGATE_AUDIT_RETENTION_DAYS", "90".into()),
        ],
        ..Default::default()
    })
    .await;
    let mut left = vec![];
    for _ in 0..50 {
        use keygate::testing::schema::audit_events::dsl::*;
        left = audit_events
            .select(detail)
            .load::<String>(&mut app.conn())
            .unwrap();
        if left.len() == 1 && app.session_count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, vec!["recent".to_string()]);
    assert_eq!(app.session_count(), 0, "the expired session is gone");
}
