//! keygate: puts Keycloak login in front of an application and its UI.
//!
//! The folders are the layers. Each may use the ones listed after it, never one above it; the
//! `layering` test reads every `use crate::` path and fails on a step upwards or a forbidden crate.
//!
//! | layer      | holds                                                              | may use            | never          |
//! |------------|--------------------------------------------------------------------|--------------------|----------------|
//! | `app`      | the composition root: state and middleware from `Settings`         | everything         |                |
//! | `web`      | `AppState`, the extractor, the route table, handlers, responses    | session and below  | app            |
//! | `session`  | the typed session, pending login, session store, leased refresh    | domain and below   | web            |
//! | `domain`   | provisioning, registration, admin actions, back-channel, audit     | store, idp, below  | actix          |
//! | `store`    | Diesel: pool, migrations, schema, one file per table               | util               | actix, idp     |
//! | `idp`      | Keycloak over HTTP: discovery, grants, token checks, JWKS, admin   | settings, util     | actix, diesel  |
//! | `settings` | configuration, parsed once into typed values                       | util               |                |
//! | `util`     | the clock, randomness, hashing, text for logs                      | nothing            |                |
//!
//! ## Using keygate inside an actix-web application
//!
//! keygate is also a library: an application lives *inside* it, with Keycloak login, local
//! users, keygate's pages and its own routes in one server. In the order a request meets them:
//!
//! 1. **Assemble** a [`Keygate`] from the environment ([`Keygate::from_env`]) or from
//!    [`Settings`], [`mount`](Keygate::mount) the application's scopes under paths keygate does
//!    not use (a collision is a start-up error naming both), add [`nav_link`](Keygate::nav_link)s
//!    and the application's [`Migrations`]. [`main`] turns that into a binary with `migrate` and
//!    `--help`; [`Keygate::start`] gives a [`Server`] to run yourself.
//! 2. **Start**: keygate's migrations run, then the application's; every route, keygate's and
//!    the application's, sits inside one middleware stack (sessions, security headers, the
//!    error pages).
//! 3. **Authenticate**: a handler takes [`CurrentUser`] (signed in, or the login redirect / the
//!    401 JSON under `/api/`), [`MaybeUser`] (or `None`) or [`AccessToken`] (for calling other
//!    APIs). Bearer tokens, the TOKEN cookie and the session all count, refreshed at Keycloak and
//!    checked against logouts exactly as on keygate's own routes.
//! 4. **Authorise**: wrap a scope in [`RequireRole`] with a realm or client [`Role`].
//! 5. **Work**: [`Db`] runs Diesel queries on keygate's pool ([`DbConn`] is SQLite or
//!    PostgreSQL; [`users_table!`] declares the local users for joins), [`AuditLog`] writes
//!    [`AuditEvent`]s into keygate's audit log.
//! 6. **Answer**: [`Page`] renders the application's Askama template inside keygate's layout
//!    and hands out the CSRF token that [`CsrfForm`] checks; [`Error`] is the failure that
//!    becomes keygate's error page or, under `/api/`, its JSON error.
//!
//! `examples/notes` is a complete application built this way.
//!
//! Everything else is crate-private, so rustc reports what nothing uses. `testing` is for
//! keygate's own integration tests and is not part of the API.

#![warn(missing_docs)]

mod app;
mod domain;
pub(crate) mod idp;
mod session;
pub mod settings;
mod store;
mod util;
mod web;

pub use app::{main, Keygate, Server};
pub use settings::{Settings, SettingsError};
pub use store::{DbConn, DbError, Migrations, Pool, User};
pub use web::{
    AccessToken, AuditEvent, AuditLog, AuthError, CsrfForm, CurrentUser, Db, Error, MaybeUser,
    Page, RequireRole, Role, RoleGate, RoleRejection,
};

/// Declares keygate's `users` table in the calling crate, for the application's own Diesel
/// queries: its rows refer to it (`user_id BIGINT NOT NULL REFERENCES users (id)`), and
/// `joinable!`/`allow_tables_to_appear_in_same_query!` with the application's tables need the
/// table in the application's crate (Diesel's impls cannot cross crates). The columns are the
/// ones keygate's migrations create; keygate's tests check the two stay equal.
///
/// ```no_run
/// keygate::users_table!();
///
/// diesel::table! {
///     notes (id) {
///         id -> Int8,
///         user_id -> Int8,
///         title -> Text,
///     }
/// }
///
/// diesel::joinable!(notes -> users (user_id));
/// diesel::allow_tables_to_appear_in_same_query!(notes, users);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! users_table {
    () => {
        diesel::table! {
            /// keygate's local users (declared by `keygate::users_table!`). Read them; keygate
            /// writes them.
            users (id) {
                /// The local id, what the application's rows refer to.
                id -> Int8,
                /// Unique; Keycloak's `preferred_username` at the first sign-in.
                username -> Text,
                /// Keycloak's address for the user.
                email -> Nullable<Text>,
                /// Given name.
                first_name -> Text,
                /// Family name.
                last_name -> Text,
                /// False once an admin deactivated the user.
                is_active -> Bool,
                /// Unix seconds.
                created_at -> Int8,
                /// Unix seconds.
                last_login_at -> Nullable<Int8>,
                /// Keycloak's word at the last sign-in that the address is the user's.
                email_verified -> Bool,
            }
        }
    };
}

/// Reach into keygate for its own integration tests. Not part of the API: it changes with
/// keygate's insides.
#[doc(hidden)]
pub mod testing {
    pub use crate::domain::provisioning::provision;
    pub use crate::session::auth_from_state;
    pub use crate::store::connect;
    pub use crate::store::schema;
    pub use crate::util::{now, random_token};
    pub use crate::web::{AppState, RESERVED};

    /// keygate's own migrations alone.
    pub fn migrate(pool: &crate::Pool) -> anyhow::Result<()> {
        crate::store::migrate(pool, &[])
    }
}

#[cfg(test)]
mod layering;

#[cfg(test)]
mod tests {
    mod copy {
        crate::users_table!();
    }

    #[test]
    fn the_users_table_applications_declare_is_the_one_the_migrations_make() {
        use diesel::RunQueryDsl;
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::connect(&dir.path().join("u.db").to_string_lossy()).unwrap();
        crate::store::migrate(&pool, &[]).unwrap();
        let mut conn = pool.get().unwrap();
        diesel::sql_query(
            "INSERT INTO users (username, email, first_name, last_name, is_active, created_at, \
             email_verified) VALUES ('u', NULL, 'F', 'L', 1, 5, 0)",
        )
        .execute(&mut *conn)
        .unwrap();
        type Row = (
            i64,
            String,
            Option<String>,
            String,
            String,
            bool,
            i64,
            Option<i64>,
            bool,
        );
        let rows: Vec<Row> = diesel::QueryDsl::select(copy::users::table, copy::users::all_columns)
            .load(&mut *conn)
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1, "u");
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let columns: Vec<Count> =
            diesel::sql_query("SELECT COUNT(*) AS n FROM pragma_table_info('users')")
                .load(&mut *conn)
                .unwrap();
        assert_eq!(
            columns[0].n, 9,
            "a column was added: add it to users_table! too"
        );
    }
}
