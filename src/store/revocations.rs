//! Rows of the revocation list: what ended (a Keycloak session id, a subject, a keygate login),
//! when, and until when it must be remembered.

use diesel::prelude::*;

use crate::store::schema::revocations;
use crate::store::DbConn;

#[derive(Insertable)]
#[diesel(table_name = revocations)]
pub(crate) struct NewRevocation<'a> {
    pub kind: &'a str,
    pub value: &'a str,
    pub revoked_at: i64,
    pub expires_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = revocations)]
pub(crate) struct Revocation {
    pub kind: String,
    pub value: String,
    pub revoked_at: i64,
    pub expires_at: i64,
}

pub(crate) fn insert(conn: &mut DbConn, row: &NewRevocation<'_>) -> QueryResult<()> {
    diesel::insert_into(revocations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Live rows revoked at or after `since`.
pub(crate) fn since(conn: &mut DbConn, since: i64, now: i64) -> QueryResult<Vec<Revocation>> {
    revocations::table
        .filter(revocations::revoked_at.ge(since))
        .filter(revocations::expires_at.gt(now))
        .select(Revocation::as_select())
        .load(conn)
}

pub(crate) fn purge_expired(conn: &mut DbConn, now: i64) -> QueryResult<usize> {
    diesel::delete(revocations::table.filter(revocations::expires_at.le(now))).execute(conn)
}
