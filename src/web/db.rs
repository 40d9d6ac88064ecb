//! An application's way into keygate's database and audit log: the [`Db`] extractor, which runs
//! Diesel work on the pool off the async executor, and [`AuditLog`], which writes the
//! application's events next to keygate's own.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use super::client::audit_context;
use super::AppState;
use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::store::{self, DbConn, DbError, Pool};

/// keygate's database pool, as an extractor. Your queries run on the same connections as
/// keygate's (SQLite or PostgreSQL: [`DbConn`] is either), and may read and join `users`
/// (declared with [`users_table!`](crate::users_table)):
///
/// ```no_run
/// use diesel::prelude::*;
/// use keygate::{CurrentUser, Db};
///
/// keygate::users_table!();
///
/// async fn names(db: Db, _user: CurrentUser) -> Result<String, keygate::Error> {
///     let names: Vec<String> = db
///         .run(|conn| Ok(users::table.select(users::username).load(conn)?))
///         .await?;
///     Ok(names.join(", "))
/// }
/// ```
#[derive(Clone)]
pub struct Db(Pool);

impl Db {
    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        store::run(&self.0, f).await
    }

    /// Runs `f` in a transaction: every write in it lands, or none does.
    pub async fn transaction<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        store::transaction(&self.0, f).await
    }

    /// The pool itself, for work outside a request.
    pub fn pool(&self) -> &Pool {
        &self.0
    }
}

impl FromRequest for Db {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Db(state(req).pool.clone())))
    }
}

/// An event for keygate's audit log (shown on `/admin/audit`), of kind `app.<name>`.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    audit: Audit,
}

impl AuditEvent {
    /// An event named `name`: lower-case ASCII letters, digits and `_` (anything else is
    /// replaced by `_`), at most 40 characters, e.g. `note_deleted`.
    pub fn new(name: &'static str) -> Self {
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            log::error!("audit event name {name:?} is not lower_snake_case; stored as app.event");
        }
        AuditEvent {
            audit: Audit::new(AuditKind::App(if valid { name } else { "event" }), None, ""),
        }
    }

    /// The local user the event is about.
    pub fn about(mut self, user_id: i64) -> Self {
        self.audit.user_id = Some(user_id);
        self
    }

    /// The local user who caused it, when that is someone else (a moderator, an admin).
    pub fn by(mut self, actor_id: i64) -> Self {
        self.audit = self.audit.by(actor_id);
        self
    }

    /// What happened, in a sentence (at most 500 characters are kept). No secrets: admins read
    /// this.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.audit.detail = detail.into();
        self
    }
}

/// Writes [`AuditEvent`]s with the request's client address and user agent, as keygate's own
/// events are.
#[derive(Clone)]
pub struct AuditLog {
    pool: Pool,
    ctx: AuditContext,
}

impl AuditLog {
    /// Writes `event` on its own. The audit log never fails the request it records: a failure
    /// is logged.
    pub async fn write(&self, event: AuditEvent) {
        event.audit.write(&self.pool, &self.ctx).await;
    }

    /// Writes `event` on `conn`, inside your transaction when there is one, so the event and
    /// the change it records land together.
    pub fn record(&self, conn: &mut DbConn, event: &AuditEvent) -> Result<(), DbError> {
        event.audit.record(conn, &self.ctx)
    }
}

impl FromRequest for AuditLog {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(AuditLog {
            pool: state(req).pool.clone(),
            ctx: audit_context(req),
        }))
    }
}

fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by the app factory")
}
