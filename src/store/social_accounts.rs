use diesel::prelude::*;

use crate::store::schema::social_accounts;
use crate::store::DbConn;

/// The provider name of accounts that come from Keycloak logins.
pub(crate) const KEYCLOAK: &str = "keycloak";

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = social_accounts)]
pub(crate) struct SocialAccount {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub uid: String,
    pub extra_data: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = social_accounts)]
pub(crate) struct NewSocialAccount<'a> {
    pub user_id: i64,
    pub provider: &'a str,
    pub uid: &'a str,
    pub extra_data: &'a str,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

impl SocialAccount {
    pub(crate) fn find(conn: &mut DbConn, provider: &str, uid: &str) -> QueryResult<Option<Self>> {
        social_accounts::table
            .filter(social_accounts::provider.eq(provider))
            .filter(social_accounts::uid.eq(uid))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    pub(crate) fn for_user(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Self>> {
        social_accounts::table
            .filter(social_accounts::user_id.eq(user_id))
            .order(social_accounts::id.asc())
            .select(Self::as_select())
            .load(conn)
    }

    /// Records a login of a known account; returns how many rows matched (0 or 1). Written
    /// first in the login transaction so SQLite takes its write lock before any read.
    pub(crate) fn touch(
        conn: &mut DbConn,
        provider: &str,
        uid: &str,
        extra_data: &str,
        now: i64,
    ) -> QueryResult<usize> {
        diesel::update(
            social_accounts::table
                .filter(social_accounts::provider.eq(provider))
                .filter(social_accounts::uid.eq(uid)),
        )
        .set((
            social_accounts::extra_data.eq(extra_data),
            social_accounts::last_login_at.eq(Some(now)),
        ))
        .execute(conn)
    }

    pub(crate) fn insert(conn: &mut DbConn, new: &NewSocialAccount<'_>) -> QueryResult<()> {
        diesel::insert_into(social_accounts::table)
            .values(new)
            .execute(conn)?;
        Ok(())
    }

    pub(crate) fn delete(conn: &mut DbConn, id: i64, user_id: i64) -> QueryResult<usize> {
        diesel::delete(
            social_accounts::table
                .filter(social_accounts::id.eq(id))
                .filter(social_accounts::user_id.eq(user_id)),
        )
        .execute(conn)
    }
}

/// How many accounts each of `user_ids` has linked.
pub(crate) fn counts_for(conn: &mut DbConn, user_ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    social_accounts::table
        .filter(social_accounts::user_id.eq_any(user_ids))
        .group_by(social_accounts::user_id)
        .select((social_accounts::user_id, diesel::dsl::count_star()))
        .load(conn)
}
