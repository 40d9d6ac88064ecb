//! The notes example (`examples/notes`), started inside keygate exactly as its `main` does: its
//! pages, its JSON API, its role gate and its migrations, on SQLite and PostgreSQL.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::notes_app;

fn notes_options(db: Db) -> AppOptions {
    AppOptions {
        db,
        assemble: notes_app::install,
        ..Default::default()
    }
}

/// `(id, user_id, title)` of every note, by id.
fn notes_in_db(app: &TestApp) -> Vec<(i64, i64, String)> {
    diesel::sql_query("SELECT id, user_id, title FROM notes ORDER BY id")
        .load::<NoteRow>(&mut *app.conn())
        .expect("notes")
        .into_iter()
        .map(|r| (r.id, r.user_id, r.title))
        .collect()
}

#[derive(QueryableByName)]
struct NoteRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    user_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    title: String,
}

async fn add_note(client: &reqwest::Client, app: &TestApp, title: &str) -> reqwest::Response {
    let page = client.get(app.url("/notes")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    client
        .post(app.url("/notes"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("title", title),
            ("body", "some text"),
        ])
        .send()
        .await
        .unwrap()
}

async fn notes_are_private_to_their_owner(db: Db) {
    let admin = RealmAdmin::connect().await;
    let (ann, ben) = (
        admin.create_user("ann").await,
        admin.create_user("ben").await,
    );
    let app = spawn_app_with(notes_options(db)).await;
    let (ann_browser, ann_id) = app.other_browser(ann.creds()).await;
    let (ben_browser, _) = app.other_browser(ben.creds()).await;

    let empty = ann_browser.get(app.url("/notes")).send().await.unwrap();
    let html = empty.text().await.unwrap();
    assert!(html.contains("No notes yet"), "{html}");
    assert!(
        html.contains(r#"href="/notes">Notes</a>"#),
        "the app's nav link"
    );
    assert!(
        html.contains(r#"action="/logout""#),
        "the sign-out form of the layout"
    );
    assert!(
        html.contains(&ann.username),
        "the signed-in user in the nav"
    );

    let added = add_note(&ann_browser, &app, "Ann secret plan").await;
    assert_eq!(added.status(), 303);
    assert_eq!(location(&added), "/notes");
    let list = ann_browser.get(app.url("/notes")).send().await.unwrap();
    assert!(list.text().await.unwrap().contains("Ann secret plan"));
    let rows = notes_in_db(&app);
    assert_eq!(rows.len(), 1);
    let (note_id, owner, _) = rows[0].clone();
    assert_eq!(owner, ann_id, "the note refers to Ann's local user");
    assert_audited(&app, "app.note_created");

    // Ben sees nothing of it, and cannot delete it: 404, as for a note that does not exist.
    let ben_list = ben_browser.get(app.url("/notes")).send().await.unwrap();
    let ben_html = ben_list.text().await.unwrap();
    assert!(!ben_html.contains("secret plan") && ben_html.contains("No notes yet"));
    let csrf = csrf_of(&ben_html);
    let stolen = ben_browser
        .post(app.url(&format!("/notes/{note_id}/delete")))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 404);
    let missing = ben_browser
        .post(app.url("/notes/999999/delete"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        missing.status(),
        404,
        "the same answer as for a note that is not there"
    );
    let api = ben_browser
        .get(app.url(&format!("/api/notes/{note_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(json(api).await["error"]["code"], "not_found");
    assert_eq!(notes_in_db(&app).len(), 1, "Ann's note is still there");

    // A delete without the session's CSRF token changes nothing.
    let forged = ann_browser
        .post(app.url(&format!("/notes/{note_id}/delete")))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(notes_in_db(&app).len(), 1);

    let ann_csrf = csrf_of(
        &ann_browser
            .get(app.url("/notes"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let deleted = ann_browser
        .post(app.url(&format!("/notes/{note_id}/delete")))
        .form(&[("csrf_token", ann_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 303);
    assert!(notes_in_db(&app).is_empty());
    assert_audited(&app, "app.note_deleted");
}

#[actix_web::test]
async fn notes_are_private_to_their_owner_on_sqlite() {
    notes_are_private_to_their_owner(Db::Sqlite).await;
}

#[actix_web::test]
async fn notes_are_private_to_their_owner_on_postgres() {
    notes_are_private_to_their_owner(Db::Postgres).await;
}

/// The example's migration ran after keygate's, on both backends, and left its version in
/// diesel's table next to keygate's.
async fn migrations_run_after_keygates(db: Db) {
    let app = spawn_app_with(notes_options(db)).await;
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let versions: Vec<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load::<Version>(&mut *app.conn())
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
    assert_eq!(versions.last().map(String::as_str), Some("20261202100000"));
    assert!(versions.len() > 1, "keygate's own migrations are there too");
    assert_eq!(count(&mut app.conn(), "notes"), 0);
}

#[actix_web::test]
async fn the_notes_migrations_run_after_keygates_on_sqlite() {
    migrations_run_after_keygates(Db::Sqlite).await;
}

#[actix_web::test]
async fn the_notes_migrations_run_after_keygates_on_postgres() {
    migrations_run_after_keygates(Db::Postgres).await;
}

#[actix_web::test]
async fn the_notes_api_works_with_a_bearer_token_from_api_token() {
    let admin = RealmAdmin::connect().await;
    let user = admin.create_user("api").await;
    let app = spawn_app_with(notes_options(Db::Sqlite)).await;
    app.login(user.creds(), "/").await;
    let token = json(app.post_token().await).await["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let ui = reqwest::Client::new();

    let created = ui
        .post(app.url("/api/notes"))
        .bearer_auth(&token)
        .json(&json!({"title": "From the UI", "body": "via bearer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let note = json(created).await;
    let id = note["id"].as_i64().expect("id");
    assert_eq!(note["title"], "From the UI");

    let list = json(app.bearer_get("/api/notes", &token).await).await;
    let titles: Vec<&str> = list["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["title"].as_str())
        .collect();
    assert_eq!(titles, ["From the UI"]);
    assert_eq!(
        app.bearer_get(&format!("/api/notes/{id}"), &token)
            .await
            .status(),
        200
    );

    let invalid = ui
        .post(app.url("/api/notes"))
        .bearer_auth(&token)
        .json(&json!({"title": "   "}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let body = json(invalid).await;
    assert_eq!(body["error"]["code"], "bad_request");
    assert_eq!(body["error"]["message"], "A note needs a title.");

    let removed = ui
        .delete(app.url(&format!("/api/notes/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let again = ui
        .delete(app.url(&format!("/api/notes/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[actix_web::test]
async fn anonymous_visitors_are_sent_to_login_and_api_callers_get_the_401_json() {
    let app = spawn_app_with(notes_options(Db::Sqlite)).await;
    for path in ["/notes", "/notes/moderation"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        let next = url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(location(&r), format!("/login?next={next}"), "{path}");
    }
    let api = app.get("/api/notes").await;
    assert_eq!(api.status(), 401);
    let body: Value = json(api).await;
    assert_eq!(body["error"]["code"], "auth_redirect");
    assert!(body["error"]["details"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/login/keycloak?next=", app.address)));
    let post = reqwest::Client::new()
        .post(app.url("/api/notes"))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(count(&mut app.conn(), "notes"), 0);
}

#[actix_web::test]
async fn the_moderation_page_needs_the_realm_or_the_client_role() {
    let admin = RealmAdmin::connect().await;
    let by_realm = admin.create_user("modrealm").await;
    let by_client = admin.create_user("modclient").await;
    let plain = admin.create_user("plain").await;
    admin
        .set_realm_role(&by_realm.id, "notes-moderator", true)
        .await;
    admin
        .set_client_role(&by_client.id, "keygate", "notes-moderator", true)
        .await;
    let app = spawn_app_with(notes_options(Db::Sqlite)).await;
    let (plain_browser, _) = app.other_browser(plain.creds()).await;
    assert_eq!(
        add_note(&plain_browser, &app, "Plain note").await.status(),
        303
    );

    for (user, wanted) in [(&by_realm, 200), (&by_client, 200), (&plain, 403)] {
        let (browser, _) = app.other_browser(user.creds()).await;
        let r = browser
            .get(app.url("/notes/moderation"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), wanted, "{}", user.username);
        let html = r.text().await.unwrap();
        if wanted == 200 {
            assert!(
                html.contains("Plain note") && html.contains(&plain.username),
                "moderators see every note with its author (a join to users)"
            );
        } else {
            assert!(
                html.contains("notes-moderator"),
                "the 403 page names the role"
            );
        }
    }
}
