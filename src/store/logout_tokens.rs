//! Ids of back-channel logout tokens already used, kept until the tokens expire.

use diesel::prelude::*;

use crate::store::schema::logout_tokens;
use crate::store::DbConn;

/// Records a token's `jti`; a unique violation means the token was used before.
pub(crate) fn insert(conn: &mut DbConn, jti: &str, expires_at: i64) -> QueryResult<()> {
    diesel::insert_into(logout_tokens::table)
        .values((
            logout_tokens::jti.eq(jti),
            logout_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub(crate) fn purge_expired(conn: &mut DbConn, now: i64) -> QueryResult<usize> {
    diesel::delete(logout_tokens::table.filter(logout_tokens::expires_at.le(now))).execute(conn)
}
