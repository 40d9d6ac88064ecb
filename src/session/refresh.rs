//! Refreshing a session's access token, once per session at a time.
//!
//! With refresh-token rotation Keycloak accepts each refresh token once, so two concurrent refreshes
//! of one session would log it out. The refresher takes a short lease on the session row (one
//! conditional UPDATE, so it holds across keygate instances sharing the database), refreshes, writes
//! the new tokens into the row and releases the lease. Everyone else waits for the lease to go and
//! reuses the tokens it left in the row.

use std::time::Duration;

use diesel::Connection;

use crate::db::{self, now, DbError};
use crate::models::audit::{self, Audit, AuditContext, AuditKind};
use crate::models::session_row;
use crate::oidc::OidcError;
use crate::session::{auth_from_state, state_with_auth, AuthSession};
use crate::startup::AppState;

/// Longest a refresher may hold the lease (it is released at once when done).
const LEASE_SECS: i64 = 20;
/// How long a waiter waits for someone else's refresh before giving up.
const WAIT: Duration = Duration::from_secs(25);
/// A token with less life than this left is refreshed rather than handed out.
pub const MIN_REMAINING_SECS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Keycloak refused the refresh token (SSO session over, token revoked): the session ended.
    #[error("the Keycloak session has ended: {0}")]
    Ended(String),
    /// The session row is gone (logged out elsewhere, expired).
    #[error("the session no longer exists")]
    Gone,
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// True when `auth`'s access token is still good for a while: more than [`MIN_REMAINING_SECS`]
/// left, or for short-lived tokens more than half their lifetime, so a realm with very short
/// access tokens does not get a refresh on nearly every request.
pub fn is_fresh(auth: &AuthSession) -> bool {
    let t = &auth.tokens;
    let lifetime = if t.access_issued_at > 0 {
        (t.access_expires_at - t.access_issued_at).max(0)
    } else {
        i64::MAX
    };
    t.access_expires_at - now() > MIN_REMAINING_SECS.min(lifetime / 2)
}

/// Whether the row's tokens can be handed out instead of refreshing. A token that someone else
/// refreshed meanwhile is taken as long as it has not expired (with very short lifespans it may
/// already be under the freshness margin; refreshing again would only race).
fn reusable(current: &AuthSession, stale: &AuthSession, force: bool) -> bool {
    let moved_on = current.tokens.access_token != stale.tokens.access_token;
    if moved_on {
        current.tokens.access_expires_at > now()
    } else {
        !force && is_fresh(current)
    }
}

/// Returns the session's tokens, refreshed at Keycloak if they are stale (or when `force`), with at
/// most one refresh of this login in flight anywhere.
pub async fn fresh_tokens(
    state: &AppState,
    stale: &AuthSession,
    force: bool,
    ctx: &AuditContext,
) -> Result<AuthSession, RefreshError> {
    let login_id = stale.login_id.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let current = read(state, &login_id).await?;
        if reusable(&current, stale, force) {
            return Ok(current);
        }
        if take_lease(state, &login_id).await? {
            return refresh_holding_lease(state, &login_id, stale, force, ctx).await;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RefreshError::Unavailable(
                "timed out waiting for another refresh of this session".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn refresh_holding_lease(
    state: &AppState,
    login_id: &str,
    stale: &AuthSession,
    force: bool,
    ctx: &AuditContext,
) -> Result<AuthSession, RefreshError> {
    // Someone may have finished a refresh between our read and our lease.
    let current = match read(state, login_id).await {
        Ok(c) => c,
        Err(e) => {
            release(state, login_id, None).await;
            return Err(e);
        }
    };
    if reusable(&current, stale, force) {
        release(state, login_id, None).await;
        return Ok(current);
    }
    let Some(refresh_token) = current.tokens.refresh_token.clone() else {
        end_login(state, login_id, current.user_id, "no refresh token", ctx).await;
        return Err(RefreshError::Ended("no refresh token".into()));
    };
    state
        .refreshes
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match state.oidc.refresh(&refresh_token).await {
        Ok(tokens) => {
            let mut next = current;
            // Keycloak's refreshed ID token is the one to hint at logout.
            let old_id_token = next.tokens.id_token.take();
            next.tokens = tokens;
            if next.tokens.id_token.is_none() {
                next.tokens.id_token = old_id_token;
            }
            release(state, login_id, Some((&next, ctx))).await;
            log::info!("refreshed the access token of user {}", next.user_id);
            Ok(next)
        }
        Err(OidcError::Rejected { error, description }) => {
            let why = format!("{error}: {description}");
            end_login(state, login_id, current.user_id, &why, ctx).await;
            Err(RefreshError::Ended(format!("{error}: {description}")))
        }
        Err(OidcError::Unavailable(why)) => {
            release(state, login_id, None).await;
            Err(RefreshError::Unavailable(why))
        }
        Err(other) => {
            release(state, login_id, None).await;
            Err(RefreshError::Unexpected(anyhow::Error::new(other)))
        }
    }
}

async fn read(state: &AppState, login_id: &str) -> Result<AuthSession, RefreshError> {
    let id = login_id.to_string();
    let raw = db::run(&state.pool, move |conn| {
        Ok(session_row::state_by_login(conn, &id, now())?)
    })
    .await?;
    raw.as_deref()
        .and_then(auth_from_state)
        .ok_or(RefreshError::Gone)
}

async fn take_lease(state: &AppState, login_id: &str) -> Result<bool, RefreshError> {
    let id = login_id.to_string();
    Ok(db::run(&state.pool, move |conn| {
        let t = now();
        Ok(session_row::take_lease(conn, &id, t, t + LEASE_SECS)?)
    })
    .await?)
}

/// Releases the lease, storing a refreshed `auth` into the row (and its audit event, in the same
/// transaction) when given. Failures are logged: the lease then simply runs out.
async fn release(
    state: &AppState,
    login_id: &str,
    refreshed: Option<(&AuthSession, &AuditContext)>,
) {
    let id = login_id.to_string();
    let refreshed = refreshed.map(|(a, c)| (a.clone(), c.clone()));
    let result = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let Some((auth, ctx)) = &refreshed else {
                return Ok(session_row::finish_lease(conn, &id, None)?);
            };
            // Write first, so SQLite takes its write lock before the read below.
            let event = Audit {
                kind: AuditKind::TokenRefresh,
                user_id: Some(auth.user_id),
                actor_id: None,
                detail: "access token refreshed",
            };
            audit::record(conn, ctx, &event)?;
            let raw = session_row::state_by_login(conn, &id, now())?;
            let new_state = raw.as_deref().and_then(|r| state_with_auth(r, auth));
            Ok(session_row::finish_lease(conn, &id, new_state.as_deref())?)
        })
    })
    .await;
    if let Err(e) = result {
        log::error!("could not release the refresh lease: {e}");
    }
}

/// Deletes the session row of a login whose Keycloak session is over, and says why in the audit
/// log.
async fn end_login(state: &AppState, login_id: &str, user_id: i64, why: &str, ctx: &AuditContext) {
    let id = login_id.to_string();
    let detail = format!("refresh refused, session ended: {why}");
    let ctx = ctx.clone();
    if let Err(e) = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let event = Audit {
                kind: AuditKind::RefreshFailed,
                user_id: Some(user_id),
                actor_id: None,
                detail: &detail,
            };
            audit::record(conn, &ctx, &event)?;
            Ok(session_row::delete_by_login(conn, &id)?)
        })
    })
    .await
    {
        log::error!("could not delete an ended session: {e}");
    }
}
