use diesel::prelude::*;

use crate::store::schema::users;
use crate::store::DbConn;

/// A local user: a row of `users`, which keygate creates at a Keycloak subject's first sign-in
/// and keeps in step with Keycloak's profile at every sign-in. Times are Unix seconds.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    /// The local id: what the application's tables refer to.
    pub id: i64,
    /// Keycloak's `preferred_username` at the first sign-in (unique).
    pub username: String,
    /// The address Keycloak has for the user, if any.
    pub email: Option<String>,
    /// Given name, from Keycloak.
    pub first_name: String,
    /// Family name, from Keycloak.
    pub last_name: String,
    /// False once an admin deactivated the user here: keygate then refuses every request.
    pub is_active: bool,
    /// When the user was created here.
    pub created_at: i64,
    /// The last sign-in, if any.
    pub last_login_at: Option<i64>,
    /// Keycloak's word at the last sign-in that the address is the user's.
    pub email_verified: bool,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub is_active: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// Profile fields Keycloak owns; refreshed from the claims at every login.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub(crate) struct ProfileUpdate<'a> {
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub last_login_at: Option<i64>,
}

impl User {
    pub(crate) fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// The users with this address, compared case-insensitively.
    pub(crate) fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Vec<User>> {
        users::table
            .filter(lower_opt(users::email).eq(email.to_lowercase()))
            .select(User::as_select())
            .load(conn)
    }

    /// The username of the one user whose email is `email` (compared case-insensitively).
    pub(crate) fn username_of_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<String>> {
        let mut names: Vec<String> = users::table
            .filter(lower_opt(users::email).eq(email.to_lowercase()))
            .select(users::username)
            .limit(2)
            .load(conn)?;
        Ok(if names.len() == 1 { names.pop() } else { None })
    }

    pub(crate) fn username_taken(conn: &mut DbConn, username: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            users::table.filter(users::username.eq(username)),
        ))
        .get_result(conn)
    }

    /// Inserts and reads back by the unique username (portable across both backends, unlike
    /// RETURNING through the multi-backend connection).
    pub(crate) fn insert(conn: &mut DbConn, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(new)
            .execute(conn)?;
        users::table
            .filter(users::username.eq(new.username))
            .select(User::as_select())
            .first(conn)
    }

    pub(crate) fn update_profile(
        conn: &mut DbConn,
        id: i64,
        p: &ProfileUpdate<'_>,
    ) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(p).execute(conn)?;
        Ok(())
    }

    pub(crate) fn set_active(conn: &mut DbConn, id: i64, active: bool) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::is_active.eq(active))
            .execute(conn)
    }

    pub(crate) fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name, self.last_name);
        let full = full.trim();
        if full.is_empty() {
            self.username.clone()
        } else {
            full.to_string()
        }
    }
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
diesel::define_sql_function! {
    #[sql_name = "lower"]
    fn lower_opt(x: diesel::sql_types::Nullable<diesel::sql_types::Text>)
        -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// How the admin user list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserSort {
    Created,
    LastLogin,
}

/// One page of the admin user list.
pub(crate) struct UserQuery<'a> {
    /// Case-insensitive substring of username, email, first or last name.
    pub search: Option<&'a str>,
    pub sort: UserSort,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// `%text%` for LIKE, with LIKE's own wildcards escaped so a search for `a_b` means `a_b`.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl User {
    /// A page of users and the number of users matching the search. Only the page is loaded.
    pub(crate) fn page(conn: &mut DbConn, q: &UserQuery<'_>) -> QueryResult<(Vec<User>, i64)> {
        let filtered = || {
            let mut query = users::table.into_boxed();
            if let Some(text) = q.search.filter(|t| !t.trim().is_empty()) {
                let pattern = like_pattern(text.trim());
                query = query.filter(
                    lower(users::username)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower_opt(users::email).like(pattern.clone()).escape('\\'))
                        .or(lower(users::first_name).like(pattern.clone()).escape('\\'))
                        .or(lower(users::last_name).like(pattern).escape('\\')),
                );
            }
            query
        };
        let total: i64 = filtered().count().get_result(conn)?;
        let query = filtered();
        let query = match (q.sort, q.descending) {
            (UserSort::Created, true) => query.order((users::created_at.desc(), users::id.desc())),
            (UserSort::Created, false) => query.order((users::created_at.asc(), users::id.asc())),
            (UserSort::LastLogin, true) => {
                query.order((users::last_login_at.desc(), users::id.desc()))
            }
            (UserSort::LastLogin, false) => {
                query.order((users::last_login_at.asc(), users::id.asc()))
            }
        };
        let rows = query
            .offset(q.offset)
            .limit(q.limit)
            .select(User::as_select())
            .load(conn)?;
        Ok((rows, total))
    }

    pub(crate) fn count_all(conn: &mut DbConn) -> QueryResult<(i64, i64)> {
        let all = users::table.count().get_result(conn)?;
        let active = users::table
            .filter(users::is_active.eq(true))
            .count()
            .get_result(conn)?;
        Ok((all, active))
    }
}
