//! Keycloak's back-channel logout, once its token is verified: end the sessions it names (by
//! `sid`, or every session of the user for a `sub`-only token), revoke their tokens on every
//! instance, and record it, in one transaction.
//!
//! Keycloak's admin sign-out of a user ends all of the user's Keycloak sessions but may send one
//! logout token naming one of them. So after a `sid` logout keygate asks Keycloak (admin API)
//! which of the user's sessions are still alive there and ends its own others; where the admin
//! API cannot be asked, the refresh on the next request ends them instead.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::revocations::{Revocations, Revoke};
use crate::idp::{KeycloakAdmin, LogoutClaims};
use crate::store::social_accounts::KEYCLOAK;
use crate::store::{self, logout_tokens, sessions, DbError, Pool, SocialAccount};
use crate::util::now;

/// How long after a `sid` logout keygate asks Keycloak about the user's other sessions: Keycloak
/// sends the logout token while it is still ending them.
const RECONCILE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub(crate) enum BackchannelError {
    /// This token (its `jti`) was used before.
    #[error("logout token replayed")]
    Replayed,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a back-channel logout ended.
pub(crate) struct Ended {
    pub sessions: usize,
    /// The local user and Keycloak subject, when known.
    pub user: Option<(i64, String)>,
}

/// Ends the sessions `claims` names.
pub(crate) async fn end_sessions(
    pool: &Pool,
    revocations: &Arc<Revocations>,
    ctx: &AuditContext,
    claims: LogoutClaims,
) -> Result<Ended, BackchannelError> {
    let mut items: Vec<Revoke> = claims.sid.as_deref().map(Revoke::sid).into_iter().collect();
    if claims.sid.is_none() {
        items.extend(claims.sub.as_deref().map(Revoke::sub));
    }
    let (ctx, list, rows) = (ctx.clone(), revocations.clone(), items.clone());
    let result = store::transaction(pool, move |conn| {
        // First, so a replay ends nothing: the unique jti rolls the whole transaction back.
        logout_tokens::insert(conn, &claims.jti, claims.exp)?;
        let user_id = match &claims.sub {
            Some(sub) => SocialAccount::find(conn, KEYCLOAK, sub)?.map(|a| a.user_id),
            None => None,
        };
        let sessions = match (&claims.sid, user_id) {
            (Some(sid), _) => sessions::delete_by_kc_sid(conn, sid)?,
            (None, Some(user_id)) => sessions::delete_by_user(conn, user_id)?,
            (None, None) => 0,
        };
        let detail = format!("Keycloak ended the session; {sessions} keygate session(s) deleted");
        Audit::new(AuditKind::BackchannelLogout, user_id, detail).record(conn, &ctx)?;
        let at = list.record(conn, &rows)?;
        let user = user_id.zip(claims.sub.clone());
        Ok((Ended { sessions, user }, at))
    })
    .await;
    let (ended, at) = match result {
        Err(e) if e.is_unique_violation() => return Err(BackchannelError::Replayed),
        other => other?,
    };
    revocations.remember(&items, at);
    Ok(ended)
}

/// Soon after a `sid` logout: ends the user's keygate sessions whose Keycloak session is gone.
pub(crate) fn reconcile_later(
    pool: Pool,
    admin: Arc<KeycloakAdmin>,
    revocations: Arc<Revocations>,
    user_id: i64,
    sub: String,
) {
    tokio::spawn(async move {
        tokio::time::sleep(RECONCILE_AFTER).await;
        match reconcile(&pool, &admin, &revocations, user_id, &sub).await {
            Ok(0) => {}
            Ok(n) => log::info!("ended {n} more session(s) of user {user_id} that Keycloak ended"),
            Err(why) => log::warn!(
                "cannot ask Keycloak which sessions of user {user_id} live ({why}); the next \
                 refresh of each ends it instead"
            ),
        }
    });
}

async fn reconcile(
    pool: &Pool,
    admin: &KeycloakAdmin,
    revocations: &Arc<Revocations>,
    user_id: i64,
    sub: &str,
) -> Result<usize, String> {
    let alive = admin.user_sessions(sub).await.map_err(|e| e.to_string())?;
    let ours = store::run(pool, move |conn| {
        Ok(sessions::logins_of_user(conn, user_id, now())?)
    })
    .await
    .map_err(|e| e.to_string())?;
    // Only sessions that name a Keycloak session can be told dead; the rest refresh.
    let dead: Vec<(String, String)> = ours
        .into_iter()
        .filter_map(|(login, sid)| login.zip(sid))
        .filter(|(_, sid)| !alive.contains(sid))
        .collect();
    if dead.is_empty() {
        return Ok(0);
    }
    let items: Vec<Revoke> = dead
        .iter()
        .flat_map(|(login, sid)| [Revoke::login(login), Revoke::sid(sid)])
        .collect();
    let (list, rows) = (revocations.clone(), items.clone());
    let (n, at) = store::transaction(pool, move |conn| {
        let mut n = 0;
        for (login, _) in &dead {
            n += sessions::delete_by_login(conn, login)?;
        }
        Ok((n, list.record(conn, &rows)?))
    })
    .await
    .map_err(|e| e.to_string())?;
    revocations.remember(&items, at);
    Ok(n)
}
