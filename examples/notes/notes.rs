//! A small notes application living inside keygate: each signed-in user keeps their own notes.
//!
//! - `/notes`: the user's notes and a form to add one (pages in keygate's layout, CSRF-checked);
//! - `/notes/{id}/delete`: deletes one of the user's notes (someone else's is a 404);
//! - `/notes/moderation`: every user's notes, for the `notes-moderator` realm or client role;
//! - `/api/notes`: the same as JSON for a UI with a bearer token from keygate's `/api/token`.
//!
//! Its table `notes` refers to keygate's `users` and has its own migrations for both backends.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use diesel::prelude::*;
use keygate::{
    AuditEvent, AuditLog, CsrfForm, CurrentUser, Db, DbConn, DbError, Error, Keygate, Migrations,
    Page, RequireRole, Role,
};
use serde::{Deserialize, Serialize};

/// The notes' migrations, applied after keygate's.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &diesel_migrations::embed_migrations!("examples/notes/migrations/sqlite"),
    postgres: &diesel_migrations::embed_migrations!("examples/notes/migrations/postgres"),
};

diesel::table! {
    notes (id) {
        id -> Int8,
        user_id -> Int8,
        title -> Text,
        body -> Text,
        created_at -> Int8,
    }
}

// keygate's `users`, declared in this crate so that Diesel lets the two tables meet in one query.
keygate::users_table!();

diesel::joinable!(notes -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(notes, users);

const MAX_TITLE: usize = 200;
const MAX_BODY: usize = 2000;

/// Adds the notes application to keygate: its migrations, its nav link and its routes.
pub fn install(keygate: Keygate) -> Keygate {
    let client = keygate.settings().client_id.clone();
    keygate
        .migrations(MIGRATIONS)
        .nav_link("Notes", "/notes")
        .mount("/notes", move |scope| {
            scope
                .route("", web::get().to(list_page))
                .route("", web::post().to(add))
                .route("/{id}/delete", web::post().to(delete))
                .service(
                    web::scope("/moderation")
                        .wrap(moderators(&client))
                        .route("", web::get().to(moderation_page)),
                )
        })
        .mount("/api/notes", |scope| {
            scope
                .route("", web::get().to(api_list))
                .route("", web::post().to(api_add))
                .route("/{id}", web::get().to(api_get))
                .route("/{id}", web::delete().to(api_delete))
        })
}

/// The realm role `notes-moderator`, or the client role of the same name.
fn moderators(client: &str) -> RequireRole {
    RequireRole::any([
        Role::realm("notes-moderator"),
        Role::client(client, "notes-moderator"),
    ])
}

#[derive(Clone, Debug, Queryable, Selectable, Serialize)]
#[diesel(table_name = notes)]
struct Note {
    id: i64,
    title: String,
    body: String,
    created_at: i64,
}

#[derive(Insertable)]
#[diesel(table_name = notes)]
struct NewNoteRow<'a> {
    user_id: i64,
    title: &'a str,
    body: &'a str,
    created_at: i64,
}

#[derive(Deserialize)]
struct NewNote {
    title: String,
    #[serde(default)]
    body: String,
}

impl NewNote {
    /// The note with surrounding spaces trimmed, or why it cannot be saved.
    fn checked(&self) -> Result<(&str, &str), String> {
        let (title, body) = (self.title.trim(), self.body.trim());
        if title.is_empty() {
            return Err("A note needs a title.".into());
        }
        if title.chars().count() > MAX_TITLE || body.chars().count() > MAX_BODY {
            return Err(format!(
                "Titles have at most {MAX_TITLE} characters and notes at most {MAX_BODY}."
            ));
        }
        Ok((title, body))
    }
}

// --- storage -------------------------------------------------------------------------------

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn notes_of(conn: &mut DbConn, user_id: i64) -> Result<Vec<Note>, DbError> {
    Ok(notes::table
        .filter(notes::user_id.eq(user_id))
        .order(notes::id.desc())
        .select(Note::as_select())
        .load(conn)?)
}

fn find(conn: &mut DbConn, user_id: i64, id: i64) -> Result<Option<Note>, DbError> {
    Ok(notes::table
        .filter(notes::id.eq(id).and(notes::user_id.eq(user_id)))
        .select(Note::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts the note and its audit event in one transaction.
async fn create(
    db: &Db,
    audit: &AuditLog,
    user_id: i64,
    title: &str,
    body: &str,
) -> Result<Note, DbError> {
    let (title, body, audit) = (title.to_string(), body.to_string(), audit.clone());
    db.transaction(move |conn| {
        let row = NewNoteRow {
            user_id,
            title: &title,
            body: &body,
            created_at: now(),
        };
        // RETURNING goes through the backend's own connection: Diesel's multi-backend
        // connection cannot return rows from an insert.
        let note = match conn {
            DbConn::Pg(c) => diesel::insert_into(notes::table)
                .values(&row)
                .returning(Note::as_returning())
                .get_result(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(notes::table)
                .values(&row)
                .returning(Note::as_returning())
                .get_result(c)?,
        };
        let event = AuditEvent::new("note_created")
            .about(user_id)
            .detail(format!("note {}", note.id));
        audit.record(conn, &event)?;
        Ok(note)
    })
    .await
}

/// Deletes the user's own note `id` and records it; false when the user has no such note
/// (it does not exist, or it is someone else's: the same answer for both).
async fn remove(db: &Db, audit: &AuditLog, user_id: i64, id: i64) -> Result<bool, DbError> {
    let audit = audit.clone();
    db.transaction(move |conn| {
        let deleted =
            diesel::delete(notes::table.filter(notes::id.eq(id).and(notes::user_id.eq(user_id))))
                .execute(conn)?;
        if deleted == 1 {
            let event = AuditEvent::new("note_deleted")
                .about(user_id)
                .detail(format!("note {id}"));
            audit.record(conn, &event)?;
        }
        Ok(deleted == 1)
    })
    .await
}

// --- pages ---------------------------------------------------------------------------------

struct NoteView {
    id: i64,
    title: String,
    body: String,
    created_at: String,
}

impl From<Note> for NoteView {
    fn from(n: Note) -> Self {
        NoteView {
            id: n.id,
            title: n.title,
            body: n.body,
            created_at: date(n.created_at),
        }
    }
}

fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
}

#[derive(Template)]
#[template(path = "notes.html", config = "examples/notes/askama.toml")]
struct NotesList {
    notes: Vec<NoteView>,
    csrf_token: String,
    error: Option<String>,
    title: String,
    body: String,
}

#[derive(Template)]
#[template(path = "moderation.html", config = "examples/notes/askama.toml")]
struct Moderation {
    notes: Vec<(NoteView, String)>,
}

/// GET /notes
async fn list_page(user: CurrentUser, page: Page, db: Db) -> Result<HttpResponse, Error> {
    let id = user.id();
    let notes = db.run(move |conn| notes_of(conn, id)).await?;
    let content = NotesList {
        notes: notes.into_iter().map(NoteView::from).collect(),
        csrf_token: page.csrf_token(),
        error: None,
        title: String::new(),
        body: String::new(),
    };
    Ok(page.render("Notes", &content))
}

/// POST /notes: adds a note, then back to the list (a form with a mistake is shown again).
async fn add(
    user: CurrentUser,
    page: Page,
    db: Db,
    audit: AuditLog,
    CsrfForm(form): CsrfForm<NewNote>,
) -> Result<HttpResponse, Error> {
    let (title, body) = match form.checked() {
        Ok(ok) => ok,
        Err(why) => {
            let id = user.id();
            let notes = db.run(move |conn| notes_of(conn, id)).await?;
            let content = NotesList {
                notes: notes.into_iter().map(NoteView::from).collect(),
                csrf_token: page.csrf_token(),
                error: Some(why),
                title: form.title.clone(),
                body: form.body.clone(),
            };
            return Ok(page.render_with_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Notes",
                &content,
            ));
        }
    };
    create(&db, &audit, user.id(), title, body).await?;
    Ok(see_other("/notes"))
}

/// The delete form carries nothing but its CSRF token.
#[derive(Deserialize)]
struct Nothing {}

/// POST /notes/{id}/delete
async fn delete(
    user: CurrentUser,
    db: Db,
    audit: AuditLog,
    id: web::Path<i64>,
    _form: CsrfForm<Nothing>,
) -> Result<HttpResponse, Error> {
    if !remove(&db, &audit, user.id(), id.into_inner()).await? {
        return Err(Error::NotFound);
    }
    Ok(see_other("/notes"))
}

/// GET /notes/moderation, behind the moderator gate.
async fn moderation_page(page: Page, db: Db) -> Result<HttpResponse, Error> {
    let rows: Vec<(Note, String)> = db
        .run(|conn| {
            Ok(notes::table
                .inner_join(users::table)
                .order(notes::id.desc())
                .limit(500)
                .select((Note::as_select(), users::username))
                .load(conn)?)
        })
        .await?;
    let notes = rows
        .into_iter()
        .map(|(n, author)| (NoteView::from(n), author))
        .collect();
    Ok(page.render("Moderation", &Moderation { notes }))
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

// --- JSON API ------------------------------------------------------------------------------

/// GET /api/notes
async fn api_list(user: CurrentUser, db: Db) -> Result<HttpResponse, Error> {
    let id = user.id();
    let notes = db.run(move |conn| notes_of(conn, id)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "notes": notes })))
}

/// GET /api/notes/{id}
async fn api_get(user: CurrentUser, db: Db, id: web::Path<i64>) -> Result<HttpResponse, Error> {
    let (user_id, id) = (user.id(), id.into_inner());
    match db.run(move |conn| find(conn, user_id, id)).await? {
        Some(note) => Ok(HttpResponse::Ok().json(note)),
        None => Err(Error::NotFound),
    }
}

/// POST /api/notes with `{"title": …, "body": …}`: 201 with the note.
async fn api_add(
    user: CurrentUser,
    db: Db,
    audit: AuditLog,
    form: web::Json<NewNote>,
) -> Result<HttpResponse, Error> {
    let (title, body) = form.checked().map_err(Error::BadRequest)?;
    let note = create(&db, &audit, user.id(), title, body).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/notes/{}", note.id)))
        .json(note))
}

/// DELETE /api/notes/{id}: 204, or 404 when the user has no such note.
async fn api_delete(
    user: CurrentUser,
    db: Db,
    audit: AuditLog,
    id: web::Path<i64>,
) -> Result<HttpResponse, Error> {
    if !remove(&db, &audit, user.id(), id.into_inner()).await? {
        return Err(Error::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}
