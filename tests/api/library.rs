//! keygate as a library: an application's routes mounted beside keygate's, checked at start,
//! and the extractors they use (`AccessToken`, `MaybeUser`, `Page`, `Error`, app data).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use askama::Template;
use keygate::{AccessToken, Error, Keygate, MaybeUser, Migrations, Page, RequireRole, Role};
use serde_json::{json, Value};

use crate::helpers::*;

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Template)]
#[template(source = r#"<p id="probe">{{ text }}</p>"#, ext = "html")]
struct Probe {
    text: String,
}

async fn token(token: AccessToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({"token": token.secret(), "expires_at": token.expires_at()}))
}

async fn maybe(user: MaybeUser, greeting: web::Data<Greeting>) -> HttpResponse {
    let who = user
        .0
        .map_or("anonymous".to_string(), |u| u.user().username.clone());
    HttpResponse::Ok().body(format!("{} {who}", greeting.0))
}

async fn page(page: Page) -> HttpResponse {
    let text = format!("csrf {}", page.csrf_token().len());
    page.render("Probe", &Probe { text })
}

async fn fail() -> Result<HttpResponse, Error> {
    Err(Error::BadRequest("the probe says no".into()))
}

fn probes(keygate: Keygate) -> Keygate {
    keygate
        .nav_link("Probe", "/probe/page")
        .app_data(web::Data::new(Greeting("hello")))
        .mount("/probe", |scope| {
            scope
                .route("/token", web::get().to(token))
                .route("/maybe", web::get().to(maybe))
                .route("/page", web::get().to(page))
                .route("/fail", web::get().to(fail))
        })
        .mount("/api/probe", |scope| {
            scope.route("/fail", web::get().to(fail)).service(
                web::scope("/reports")
                    .wrap(RequireRole::new(Role::realm("reporter")))
                    .route(
                        "",
                        web::get().to(|| async { HttpResponse::Ok().body("reports") }),
                    ),
            )
        })
}

fn probe_options() -> AppOptions {
    AppOptions {
        assemble: probes,
        ..Default::default()
    }
}

async fn start_error(assemble: fn(Keygate) -> Keygate) -> String {
    let (settings, _dir) = test_settings(&AppOptions::default());
    match assemble(Keygate::new(settings)).start().await {
        Ok(_) => panic!("start-up should have failed"),
        Err(e) => format!("{e:#}"),
    }
}

#[actix_web::test]
async fn a_route_that_collides_with_keygates_stops_start_up_naming_both() {
    let why = start_error(|k| k.mount("/login/extra", |s| s)).await;
    assert!(
        why.contains("/login/extra") && why.contains("keygate's /login"),
        "{why}"
    );
    let why = start_error(|k| k.mount("/api", |s| s)).await;
    assert!(why.contains("keygate's /api/token"), "{why}");
    let why = start_error(|k| crate::notes_app::install(k).mount("/notes/more", |s| s)).await;
    assert!(
        why.contains("/notes/more") && why.contains("its own mount at /notes"),
        "{why}"
    );
}

#[actix_web::test]
async fn application_migrations_with_keygates_versions_stop_start_up() {
    const CLASH: Migrations = Migrations {
        sqlite: &diesel_migrations::embed_migrations!("migrations/sqlite"),
        postgres: &diesel_migrations::embed_migrations!("migrations/postgres"),
    };
    let why = start_error(|k| k.migrations(CLASH)).await;
    assert!(why.contains("has the version"), "{why}");
}

#[actix_web::test]
async fn every_path_keygate_reserves_is_served_by_keygate() {
    let app = spawn_app().await;
    for reserved in keygate::testing::RESERVED {
        let sample = match *reserved {
            "/account" => "/account/sessions",
            "/static" => "/static/style.css",
            other => other,
        };
        // A route answers its own methods only; the others fall through to the 404.
        let get = app.get(sample).await.status();
        let post = app
            .client
            .post(app.url(sample))
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            get != 404 || post != 404,
            "{sample} (reserved as {reserved}) is not a route"
        );
    }
}

#[actix_web::test]
async fn mounted_routes_get_app_data_the_layout_and_the_optional_user() {
    let app = spawn_app_with(probe_options()).await;
    assert_eq!(app.page("/probe/maybe").await, "hello anonymous");
    let anonymous = app.page("/probe/page").await;
    assert!(
        anonymous.contains(r#"<p id="probe">csrf 43</p>"#),
        "{anonymous}"
    );
    assert!(
        anonymous.contains(r#"href="/probe/page">Probe</a>"#),
        "the app's nav link"
    );
    assert!(
        anonymous.contains("/login?next=%2Fprobe%2Fpage"),
        "a sign-in link back here"
    );
    assert!(
        !anonymous.contains("/logout"),
        "no sign-out form for a visitor"
    );
    let home = app.page("/").await;
    assert!(
        home.contains(r#"href="/probe/page">Probe</a>"#),
        "keygate's home has the link"
    );

    // A bad bearer token is not a user, but not an error page either.
    let r = reqwest::Client::new()
        .get(app.url("/probe/maybe"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "hello anonymous");

    app.login(("bob", "bob-password"), "/").await;
    assert_eq!(app.page("/probe/maybe").await, "hello bob");
    let signed_in = app.page("/probe/page").await;
    let csrf = csrf_of(&signed_in);
    assert!(signed_in.contains(r#"action="/logout""#) && csrf.len() == 43);
    let out = app.post_logout(&csrf).await;
    assert_eq!(out.status(), 303, "the layout's sign-out form works");
    assert_eq!(app.page("/probe/maybe").await, "hello anonymous");
}

#[actix_web::test]
async fn an_application_error_is_a_page_or_the_json_error_by_path() {
    let app = spawn_app_with(probe_options()).await;
    let page = app.get("/probe/fail").await;
    assert_eq!(page.status(), 400);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("the probe says no"));
    let api = app.get("/api/probe/fail").await;
    assert_eq!(api.status(), 400);
    let body: Value = json(api).await;
    assert_eq!(
        body,
        json!({"error": {"code": "bad_request", "message": "the probe says no", "details": null}})
    );
}

#[actix_web::test]
async fn the_access_token_is_the_bearers_or_the_sessions_refreshed_when_stale() {
    let admin = RealmAdmin::connect().await;
    let client = admin.short_lived_client(5).await;
    let user = admin.create_user("token").await;
    let app = spawn_app_with(AppOptions {
        assemble: probes,
        ..client_options(&client)
    })
    .await;
    let anonymous = app.get("/probe/token").await;
    assert_eq!(anonymous.status(), 303, "no token without a sign-in");

    app.login(user.creds(), "/").await;
    let first = json(app.get("/probe/token").await).await;
    let first_token = first["token"].as_str().expect("a token").to_string();
    assert!(first["expires_at"].as_i64().is_some());
    assert_eq!(
        jwt_claims(&first_token)["preferred_username"],
        user.username
    );
    assert!(
        !first.to_string().contains("refresh"),
        "nothing but the access token"
    );
    let refreshes = app.app_state.refresh_count();

    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = json(app.get("/probe/token").await).await;
    let second_token = second["token"].as_str().expect("a refreshed token");
    assert_ne!(second_token, first_token, "the stale token was refreshed");
    assert_eq!(app.app_state.refresh_count(), refreshes + 1);
    assert_eq!(app.bearer_get("/api/me", second_token).await.status(), 200);

    // With a bearer token, the token is the one the request came with.
    let bearer = json(app.bearer_get("/probe/token", second_token).await).await;
    assert_eq!(bearer["token"], second_token);
}

#[test]
fn the_readme_shows_the_minimal_example_as_it_is() {
    let readme = include_str!("../../README.md");
    let minimal = include_str!("../../examples/minimal/main.rs");
    assert!(
        readme.contains(&format!("```rust\n{minimal}```")),
        "README.md's main.rs differs from examples/minimal/main.rs (which cargo test compiles): \
         copy the file into the README"
    );
}

#[actix_web::test]
async fn a_role_gate_under_api_answers_the_json_401_and_403() {
    let app = spawn_app_with(probe_options()).await;
    let anonymous = app.get("/api/probe/reports").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(json(anonymous).await["error"]["code"], "auth_redirect");
    app.login(("bob", "bob-password"), "/").await;
    let bob = app.get("/api/probe/reports").await;
    assert_eq!(bob.status(), 403);
    let body = json(bob).await;
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("realm role reporter"));
}

#[actix_web::test]
async fn migrate_applies_keygates_migrations_then_the_applications() {
    for db in [Db::Sqlite, Db::Postgres] {
        let (settings, _dir) = test_settings(&AppOptions {
            db,
            ..Default::default()
        });
        let url = settings.database_url.clone();
        crate::notes_app::install(Keygate::new(settings))
            .migrate()
            .await
            .expect("migrate");
        let pool = keygate::testing::connect(&url).unwrap();
        let mut conn = pool.get().unwrap();
        assert_eq!(count(&mut conn, "notes"), 0, "the notes table exists");
        assert_eq!(count(&mut conn, "users"), 0, "and keygate's tables");
    }
}

#[actix_web::test]
async fn route_rules_gate_an_embedded_applications_mounts() {
    let (_dir, rules) = rules_file(
        "[[rules]]\nprefix = \"/probe/maybe\"\naccess = \"role:keygate-admin\"\n\
         [[rules]]\nprefix = \"/probe/\"\naccess = \"public\"\n",
    );
    let app = spawn_app_with(AppOptions {
        assemble: probes,
        extra: vec![rules],
        ..Default::default()
    })
    .await;
    assert_eq!(app.get("/probe/page").await.status(), 200, "public by rule");
    assert_eq!(
        app.get("/probe/maybe").await.status(),
        303,
        "the rule asks for a sign-in"
    );
    app.login(("bob", "bob-password"), "/").await;
    assert_eq!(
        app.get("/probe/maybe").await.status(),
        403,
        "bob lacks the role"
    );
    let (alice, _) = app.other_browser(("alice", "alice-password")).await;
    let r = alice.get(app.url("/probe/maybe")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "hello alice");
}
