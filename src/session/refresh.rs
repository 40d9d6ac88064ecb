//! Refreshing a session's access token, once per session at a time.
//!
//! With refresh-token rotation Keycloak accepts each refresh token once, so two concurrent refreshes
//! of one session would log it out. The refresher takes a short lease on the session row (one
//! conditional UPDATE, so it holds across keygate instances sharing the database), refreshes, writes
//! the new tokens into the row and releases the lease. Everyone else waits for the lease to go and
//! reuses the tokens it left in the row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{auth_from_state, state_with_auth, AuthSession};
use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::revocations::{Revocations, Revoke};
use crate::idp::{GrantError, Grants, Unavailable};
use crate::store::{self as db, sessions as session_row, DbError, Pool};
use crate::util::metrics;
use crate::util::{now, random_token};

/// Longest a refresher may hold the lease (it is released at once when done). Under the lease
/// runs only the token request (discovery is fetched before taking it), which gives up after
/// 15 s; the rest is two database writes. Twice that, so a slow Keycloak cannot outlast it.
const LEASE_SECS: i64 = 30;
/// How long a waiter waits for someone else's refresh before giving up.
const WAIT: Duration = Duration::from_secs(35);
/// A token with less life than this left is refreshed rather than handed out.
const MIN_REMAINING_SECS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    /// Keycloak refused the refresh token (SSO session over, token revoked): the session ended.
    #[error("the Keycloak session has ended: {0}")]
    Ended(String),
    /// The session row is gone (logged out elsewhere, expired).
    #[error("the session no longer exists")]
    Gone,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// True when a token issued at `issued_at` (0: unknown) and expiring at `expires_at` is still
/// good for a while: more than [`MIN_REMAINING_SECS`] left, or for short-lived tokens more than
/// half their lifetime, so a realm with very short access tokens does not get a refresh on nearly
/// every request. The one freshness rule, for the session's token and the TOKEN cookie alike.
pub(crate) fn fresh_enough(issued_at: i64, expires_at: i64) -> bool {
    let lifetime = if issued_at > 0 {
        (expires_at - issued_at).max(0)
    } else {
        i64::MAX
    };
    expires_at - now() > MIN_REMAINING_SECS.min(lifetime / 2)
}

/// [`fresh_enough`] for the session's own access token.
pub(crate) fn is_fresh(auth: &AuthSession) -> bool {
    fresh_enough(auth.tokens.access_issued_at, auth.tokens.access_expires_at)
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

/// A lease this refresher holds: the login's row and the random owner id written into it.
struct Lease<'a> {
    login_id: &'a str,
    owner: &'a str,
}

/// Refreshes sessions' access tokens at Keycloak under the lease; counts the refreshes it made.
pub(crate) struct Refresher {
    pool: Pool,
    grants: Arc<Grants>,
    revocations: Arc<Revocations>,
    count: AtomicU64,
}

impl Refresher {
    pub(crate) fn new(pool: Pool, grants: Arc<Grants>, revocations: Arc<Revocations>) -> Self {
        Refresher {
            pool,
            grants,
            revocations,
            count: AtomicU64::new(0),
        }
    }

    /// Refreshes this process made at Keycloak (observability, and tests of the lease).
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Returns the session's tokens, refreshed at Keycloak if they are stale (or when `force`), with at
    /// most one refresh of this login in flight anywhere.
    pub(crate) async fn fresh_tokens(
        &self,
        stale: &AuthSession,
        force: bool,
        ctx: &AuditContext,
    ) -> Result<AuthSession, RefreshError> {
        let login_id = stale.login_id.clone();
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut waited = false;
        loop {
            let current = self.read(&login_id).await?;
            if reusable(&current, stale, force) {
                if waited {
                    metrics::refresh("waited");
                }
                return Ok(current);
            }
            // Whatever can be slow and needs no lease runs before it is taken.
            self.grants.ready().await?;
            let owner = random_token(16);
            if self.take_lease(&login_id, &owner).await? {
                let lease = Lease {
                    login_id: &login_id,
                    owner: &owner,
                };
                return self.refresh_holding_lease(&lease, stale, force, ctx).await;
            }
            waited = true;
            if tokio::time::Instant::now() >= deadline {
                metrics::refresh("unavailable");
                return Err(RefreshError::Unavailable(Unavailable(
                    "timed out waiting for another refresh of this session".into(),
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn refresh_holding_lease(
        &self,
        lease: &Lease<'_>,
        stale: &AuthSession,
        force: bool,
        ctx: &AuditContext,
    ) -> Result<AuthSession, RefreshError> {
        // Someone may have finished a refresh between our read and our lease.
        let current = match self.read(lease.login_id).await {
            Ok(c) => c,
            Err(e) => {
                self.release(lease, None).await;
                return Err(e);
            }
        };
        if reusable(&current, stale, force) {
            self.release(lease, None).await;
            metrics::refresh("waited");
            return Ok(current);
        }
        let Some(refresh_token) = current.tokens.refresh_token.clone() else {
            self.end_login(&current, "no refresh token", ctx).await;
            return Err(RefreshError::Ended("no refresh token".into()));
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        match self.grants.refresh(&refresh_token).await {
            Ok(tokens) => {
                let mut next = current;
                // The ID token of the sign-in stays the logout hint: the one a refresh brings is
                // not validated, so it is not kept.
                let id_token = next.tokens.id_token.take();
                next.tokens = tokens.into();
                next.tokens.id_token = id_token;
                self.release(lease, Some((&next, ctx))).await;
                metrics::refresh("done");
                log::info!("refreshed the access token of user {}", next.user_id);
                Ok(next)
            }
            Err(GrantError::Rejected { error, description }) => {
                let why = format!("{error}: {description}");
                metrics::refresh("refused");
                self.end_login(&current, &why, ctx).await;
                Err(RefreshError::Ended(format!("{error}: {description}")))
            }
            Err(GrantError::Unavailable(u)) => {
                self.release(lease, None).await;
                metrics::refresh("unavailable");
                Err(RefreshError::Unavailable(u))
            }
            Err(other) => {
                self.release(lease, None).await;
                Err(RefreshError::Unexpected(anyhow::Error::new(other)))
            }
        }
    }

    async fn read(&self, login_id: &str) -> Result<AuthSession, RefreshError> {
        let id = login_id.to_string();
        let raw = db::run(&self.pool, move |conn| {
            Ok(session_row::state_by_login(conn, &id, now())?)
        })
        .await?;
        raw.as_deref()
            .and_then(auth_from_state)
            .ok_or(RefreshError::Gone)
    }

    async fn take_lease(&self, login_id: &str, owner: &str) -> Result<bool, RefreshError> {
        let (id, owner) = (login_id.to_string(), owner.to_string());
        Ok(db::run(&self.pool, move |conn| {
            let t = now();
            Ok(session_row::take_lease(
                conn,
                &id,
                &owner,
                t,
                t + LEASE_SECS,
            )?)
        })
        .await?)
    }

    /// Releases the lease, storing a refreshed `auth` into the row (and its audit event, in the same
    /// transaction) when given. Failures are logged: the lease then simply runs out.
    async fn release(&self, lease: &Lease<'_>, refreshed: Option<(&AuthSession, &AuditContext)>) {
        let (id, owner) = (lease.login_id.to_string(), lease.owner.to_string());
        let refreshed = refreshed.map(|(a, c)| (a.clone(), c.clone()));
        let result = db::run(&self.pool, move |conn| {
            diesel::Connection::transaction(conn, |conn| {
                let Some((auth, ctx)) = &refreshed else {
                    return Ok(session_row::finish_lease(conn, &id, &owner, None)?);
                };
                // Write first, so SQLite takes its write lock before the read below.
                Audit::new(
                    AuditKind::TokenRefresh,
                    Some(auth.user_id),
                    "access token refreshed",
                )
                .record(conn, ctx)?;
                let raw = session_row::state_by_login(conn, &id, now())?;
                let new_state = raw.as_deref().and_then(|r| state_with_auth(r, auth));
                let written = session_row::finish_lease(conn, &id, &owner, new_state.as_deref())?;
                if written == 0 {
                    // The lease ran out and passed on: the audit row goes with the tokens.
                    return Err(DbError::Query(diesel::result::Error::RollbackTransaction));
                }
                Ok(written)
            })
        })
        .await;
        match result {
            Ok(_) => {}
            Err(DbError::Query(diesel::result::Error::RollbackTransaction)) => {
                log::warn!("a refresh outlasted its lease; its tokens were not written")
            }
            Err(e) => log::error!("could not release the refresh lease: {e}"),
        }
    }

    /// Deletes the session row of a login whose Keycloak session is over, revokes its tokens on
    /// every instance, and says why in the audit log.
    async fn end_login(&self, ended: &AuthSession, why: &str, ctx: &AuditContext) {
        let mut items = vec![Revoke::login(&ended.login_id)];
        items.extend(ended.kc_sid.as_deref().map(Revoke::sid));
        let (id, user_id) = (ended.login_id.clone(), ended.user_id);
        let detail = format!("refresh refused, session ended: {why}");
        let (ctx, list, rows) = (ctx.clone(), self.revocations.clone(), items.clone());
        let result = db::transaction(&self.pool, move |conn| {
            Audit::new(AuditKind::RefreshFailed, Some(user_id), detail).record(conn, &ctx)?;
            session_row::delete_by_login(conn, &id)?;
            list.record(conn, &rows)
        })
        .await;
        match result {
            Ok(at) => self.revocations.remember(&items, at),
            Err(e) => log::error!("could not delete an ended session: {e}"),
        }
    }
}
