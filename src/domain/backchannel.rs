//! Keycloak's back-channel logout, once its token is verified: end the sessions it names (by
//! `sid`, or every session of the user for a `sub`-only token) and record it, in one transaction.

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::idp::LogoutClaims;
use crate::store::social_accounts::KEYCLOAK;
use crate::store::{self, sessions, DbError, Pool, SocialAccount};

/// Ends the sessions `claims` names; returns how many keygate sessions ended.
pub(crate) async fn end_sessions(
    pool: &Pool,
    ctx: &AuditContext,
    claims: LogoutClaims,
) -> Result<usize, DbError> {
    let ctx = ctx.clone();
    store::transaction(pool, move |conn| {
        let user_id = match &claims.sub {
            Some(sub) => SocialAccount::find(conn, KEYCLOAK, sub)?.map(|a| a.user_id),
            None => None,
        };
        let ended = match (&claims.sid, user_id) {
            (Some(sid), _) => sessions::delete_by_kc_sid(conn, sid)?,
            (None, Some(user_id)) => sessions::delete_by_user(conn, user_id)?,
            (None, None) => 0,
        };
        let detail = format!("Keycloak ended the session; {ended} keygate session(s) deleted");
        Audit::new(AuditKind::BackchannelLogout, user_id, detail).record(conn, &ctx)?;
        Ok(ended)
    })
    .await
}
