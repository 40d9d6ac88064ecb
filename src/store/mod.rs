//! Storage: Diesel on SQLite or PostgreSQL. One connection type for both backends, a pool,
//! embedded migrations, `run` (which moves blocking Diesel work off the async executor), the
//! generated schema and one file per table with plain query functions taking a connection.
//!
//! Uses `util` only: no actix, no identity provider.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool as R2d2Pool};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub(crate) mod audit_events;
pub(crate) mod logout_tokens;
pub(crate) mod revocations;
pub mod schema;
pub(crate) mod sessions;
pub(crate) mod social_accounts;
pub(crate) mod users;

pub(crate) use social_accounts::SocialAccount;
pub use users::User;

/// One connection type for both backends. Diesel tries the variants in order when it connects,
/// and SQLite accepts any string as a file name, so it must come last.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = R2d2Pool<ConnectionManager<DbConn>>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed")]
    Query(#[from] DieselError),
    #[error("no database connection available")]
    Pool(#[from] r2d2::Error),
    #[error("database task was cancelled")]
    Blocking,
}

impl DbError {
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// SQLite needs these on every connection: foreign keys are off by default, and without a busy
/// timeout concurrent writers fail at once instead of waiting their turn.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Opens a pool for `database_url`: a `postgres://` URL or a SQLite file path (`sqlite://` prefix
/// optional).
pub fn connect(database_url: &str) -> anyhow::Result<Pool> {
    connect_with(database_url, Box::new(r2d2::LoggingErrorHandler))
}

fn connect_with(
    database_url: &str,
    errors: Box<dyn r2d2::HandleError<diesel::r2d2::Error>>,
) -> anyhow::Result<Pool> {
    let url = database_url
        .strip_prefix("sqlite://")
        .unwrap_or(database_url);
    let is_pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !is_pg {
        set_wal_once(url)?;
    }
    let manager = ConnectionManager::<DbConn>::new(url);
    let pool = R2d2Pool::builder()
        .max_size(if is_pg { 16 } else { 8 })
        .connection_timeout(Duration::from_secs(10))
        .connection_customizer(Box::new(SqlitePragmas))
        .error_handler(errors)
        .build(manager)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", redact_url(url)))?;
    Ok(pool)
}

/// WAL is a property of the database file, and switching to it takes a write lock: done once,
/// on one connection, before the pool opens its connections all at once (which otherwise raced
/// for that lock on a fresh file and logged "database is locked").
fn set_wal_once(path: &str) -> anyhow::Result<()> {
    use diesel::Connection;
    let mut conn = SqliteConnection::establish(path)
        .map_err(|e| anyhow::anyhow!("cannot open database {path}: {e}"))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
        .map_err(|e| anyhow::anyhow!("cannot switch {path} to WAL: {e}"))?;
    Ok(())
}

/// Applies the embedded migrations of the connection's backend.
pub fn migrate(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get()?;
    let applied = match &mut *conn {
        DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    }
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    if applied > 0 {
        log::info!("applied {applied} database migration(s)");
    }
    Ok(())
}

/// Runs blocking Diesel work on the runtime's blocking thread pool with a pooled connection.
pub(crate) async fn run<T, F>(pool: &Pool, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(|_| DbError::Blocking)?
}

/// Runs `f` in a transaction on a pooled connection, off the async executor.
pub(crate) async fn transaction<T, F>(pool: &Pool, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    use diesel::Connection;
    run(pool, move |conn| conn.transaction(f)).await
}

/// Hides the password of a database URL before it reaches a log line.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Debug, Default)]
    struct Count(Arc<AtomicUsize>);

    impl r2d2::HandleError<diesel::r2d2::Error> for Count {
        fn handle_error(&self, _: diesel::r2d2::Error) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_fresh_sqlite_file_opens_its_pool_without_errors_and_in_wal() {
        let errors = Arc::new(AtomicUsize::new(0));
        for i in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(format!("fresh-{i}.db"));
            let pool =
                connect_with(&path.to_string_lossy(), Box::new(Count(errors.clone()))).unwrap();
            let mut conn = pool.get().unwrap();
            #[derive(diesel::QueryableByName)]
            struct Mode {
                #[diesel(sql_type = diesel::sql_types::Text)]
                journal_mode: String,
            }
            let mode: Vec<Mode> =
                diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA journal_mode"), &mut *conn)
                    .unwrap();
            assert_eq!(mode[0].journal_mode, "wal");
        }
        assert_eq!(errors.load(Ordering::SeqCst), 0, "no connection failed");
    }
}
