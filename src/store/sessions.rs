//! Rows of the server-side session store. The browser only holds a key; the row holds the state,
//! and the columns `user_id`, `kc_sid` and `login_id` let keygate find and end sessions from the
//! server side (back-channel logout, admin sign-out) and lease a row for one refresh at a time.

use diesel::prelude::*;

use crate::store::schema::sessions;
use crate::store::DbConn;

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = sessions)]
#[diesel(treat_none_as_null = true)]
pub(crate) struct SessionRow<'a> {
    pub key_hash: &'a str,
    pub state: &'a str,
    pub expires_at: i64,
    pub user_id: Option<i64>,
    pub kc_sid: Option<&'a str>,
    pub login_id: Option<&'a str>,
}

/// Loads the state of a live session.
pub(crate) fn load_state(
    conn: &mut DbConn,
    key_hash: &str,
    now: i64,
) -> QueryResult<Option<String>> {
    sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .first(conn)
        .optional()
}

/// The state and expiry of a live session.
pub(crate) fn load_row(
    conn: &mut DbConn,
    key_hash: &str,
    now: i64,
) -> QueryResult<Option<(String, i64)>> {
    sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .filter(sessions::expires_at.gt(now))
        .select((sessions::state, sessions::expires_at))
        .first(conn)
        .optional()
}

/// Signed-in sessions that have not expired.
pub(crate) fn count_open(conn: &mut DbConn, now: i64) -> QueryResult<i64> {
    sessions::table
        .filter(
            sessions::user_id
                .is_not_null()
                .and(sessions::expires_at.gt(now)),
        )
        .count()
        .get_result(conn)
}

pub(crate) fn insert(conn: &mut DbConn, row: &SessionRow<'_>) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Replaces a row's state; returns how many rows matched.
pub(crate) fn update(conn: &mut DbConn, row: &SessionRow<'_>) -> QueryResult<usize> {
    diesel::update(sessions::table.find(row.key_hash))
        .set(row)
        .execute(conn)
}

pub(crate) fn delete(conn: &mut DbConn, key_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(key_hash)).execute(conn)
}

pub(crate) fn delete_by_login(conn: &mut DbConn, login_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::login_id.eq(login_id))).execute(conn)
}

pub(crate) fn delete_by_kc_sid(conn: &mut DbConn, kc_sid: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::kc_sid.eq(kc_sid))).execute(conn)
}

pub(crate) fn delete_by_user(conn: &mut DbConn, user_id: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}

/// `(login_id, kc_sid)` of every live signed-in row of a user.
pub(crate) fn logins_of_user(
    conn: &mut DbConn,
    user_id: i64,
    now: i64,
) -> QueryResult<Vec<(Option<String>, Option<String>)>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .select((sessions::login_id, sessions::kc_sid))
        .load(conn)
}

/// The states of every live signed-in row of a user.
pub(crate) fn states_of_user(
    conn: &mut DbConn,
    user_id: i64,
    now: i64,
) -> QueryResult<Vec<String>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .load(conn)
}

pub(crate) fn purge_expired(conn: &mut DbConn, now: i64) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
}

pub(crate) fn count_for_user(conn: &mut DbConn, user_id: i64) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .count()
        .get_result(conn)
}

/// The state of the live row of a login, by `login_id`.
pub(crate) fn state_by_login(
    conn: &mut DbConn,
    login_id: &str,
    now: i64,
) -> QueryResult<Option<String>> {
    sessions::table
        .filter(sessions::login_id.eq(login_id))
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .first(conn)
        .optional()
}

/// Takes the refresh lease of a login's row for `owner` until `until`, if nobody holds it (or
/// the holder's lease ran out). True when taken. One UPDATE with the condition in its WHERE
/// clause, so two instances cannot both win.
pub(crate) fn take_lease(
    conn: &mut DbConn,
    login_id: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        sessions::table
            .filter(sessions::login_id.eq(login_id))
            .filter(
                sessions::refresh_lease_until
                    .is_null()
                    .or(sessions::refresh_lease_until.le(now)),
            ),
    )
    .set((
        sessions::refresh_lease_until.eq(Some(until)),
        sessions::refresh_lease_owner.eq(Some(owner)),
    ))
    .execute(conn)?;
    Ok(n > 0)
}

/// Releases `owner`'s lease of a login, storing its refreshed state when given. Matches nothing
/// (returns 0) when the lease has passed to someone else meanwhile: a late holder must not
/// overwrite newer tokens.
pub(crate) fn finish_lease(
    conn: &mut DbConn,
    login_id: &str,
    owner: &str,
    state: Option<&str>,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::login_id.eq(login_id))
        .filter(sessions::refresh_lease_owner.eq(owner));
    let free = (
        sessions::refresh_lease_until.eq(None::<i64>),
        sessions::refresh_lease_owner.eq(None::<String>),
    );
    match state {
        Some(state) => diesel::update(target)
            .set((sessions::state.eq(state), free))
            .execute(conn),
        None => diesel::update(target).set(free).execute(conn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, crate::store::Pool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = crate::store::connect(&dir.path().join("t.db").to_string_lossy()).unwrap();
        crate::store::migrate(&pool, &[]).unwrap();
        (dir, pool)
    }

    #[test]
    fn only_the_holder_of_a_lease_releases_it_or_writes_its_tokens() {
        let (_dir, pool) = database();
        let mut conn = pool.get().unwrap();
        let row = SessionRow {
            key_hash: "k",
            state: "old",
            expires_at: 1000,
            user_id: None,
            kc_sid: None,
            login_id: Some("l1"),
        };
        insert(&mut conn, &row).unwrap();
        assert!(take_lease(&mut conn, "l1", "a", 100, 130).unwrap());
        assert!(
            !take_lease(&mut conn, "l1", "b", 110, 140).unwrap(),
            "held by a"
        );
        // a's lease ran out while it waited on Keycloak; b takes over and writes.
        assert!(take_lease(&mut conn, "l1", "b", 131, 161).unwrap());
        assert_eq!(
            finish_lease(&mut conn, "l1", "b", Some("from b")).unwrap(),
            1
        );
        assert_eq!(
            finish_lease(&mut conn, "l1", "a", Some("late a")).unwrap(),
            0,
            "a late release writes nothing"
        );
        assert_eq!(
            load_state(&mut conn, "k", 0).unwrap().as_deref(),
            Some("from b")
        );
    }
}
