use diesel::prelude::*;

use crate::db::DbConn;
use crate::schema::users;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub is_active: bool,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// Profile fields Keycloak owns; refreshed from the claims at every login.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileUpdate<'a> {
    pub email: Option<&'a str>,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub last_login_at: Option<i64>,
}

impl User {
    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::email.eq(email))
            .select(User::as_select())
            .load(conn)
    }

    pub fn username_taken(conn: &mut DbConn, username: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(
            users::table.filter(users::username.eq(username)),
        ))
        .get_result(conn)
    }

    /// Inserts and reads back by the unique username (portable across both backends, unlike
    /// RETURNING through the multi-backend connection).
    pub fn insert(conn: &mut DbConn, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(new)
            .execute(conn)?;
        users::table
            .filter(users::username.eq(new.username))
            .select(User::as_select())
            .first(conn)
    }

    pub fn update_profile(conn: &mut DbConn, id: i64, p: &ProfileUpdate<'_>) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(p).execute(conn)?;
        Ok(())
    }

    pub fn set_active(conn: &mut DbConn, id: i64, active: bool) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::is_active.eq(active))
            .execute(conn)
    }

    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name, self.last_name);
        let full = full.trim();
        if full.is_empty() {
            self.username.clone()
        } else {
            full.to_string()
        }
    }
}
