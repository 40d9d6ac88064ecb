//! What an administrator can do to a user, each change written with its audit row (naming the
//! acting admin) in one transaction. Signing a user out and deactivating them both end their
//! sessions and revoke their Keycloak subjects, so their tokens stop on every instance.

use std::sync::Arc;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::revocations::{Revocations, Revoke};
use crate::store::{self, sessions, DbConn, DbError, Pool, SocialAccount, User};

/// The actions an admin can take on a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Deactivate,
    Reactivate,
    Unlink,
    SignOut,
}

impl Action {
    pub(crate) fn parse(s: &str) -> Option<Action> {
        match s {
            "deactivate" => Some(Action::Deactivate),
            "reactivate" => Some(Action::Reactivate),
            "unlink" => Some(Action::Unlink),
            "signout" => Some(Action::SignOut),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Unlink => "unlink",
            Action::SignOut => "signout",
        }
    }
}

/// One action on user `id` by admin `actor`.
pub(crate) struct AdminAction {
    pub action: Action,
    pub user_id: i64,
    pub actor_id: i64,
    /// The linked account to remove, for [`Action::Unlink`].
    pub account_id: Option<i64>,
    /// The user's Keycloak subjects, revoked by a sign-out or a deactivation.
    pub subjects: Vec<String>,
}

/// The linked accounts of user `id`, or `None` when there is no such user.
pub(crate) async fn accounts_of(
    pool: &Pool,
    id: i64,
) -> Result<Option<Vec<SocialAccount>>, DbError> {
    store::run(pool, move |conn| {
        if User::find(conn, id)?.is_none() {
            return Ok(None);
        }
        Ok(Some(SocialAccount::for_user(conn, id)?))
    })
    .await
}

/// Runs the action and its audit row in one transaction. `Ok(false)` when there was nothing to
/// act on (no such user or account).
pub(crate) async fn apply(
    pool: &Pool,
    revocations: &Arc<Revocations>,
    ctx: &AuditContext,
    act: AdminAction,
) -> Result<bool, DbError> {
    let items: Vec<Revoke> = match act.action {
        Action::Deactivate | Action::SignOut => {
            act.subjects.iter().map(|s| Revoke::sub(s)).collect()
        }
        Action::Reactivate | Action::Unlink => vec![],
    };
    let (ctx, list, rows) = (ctx.clone(), revocations.clone(), items.clone());
    let done = store::transaction(pool, move |conn| {
        if !apply_in(conn, &ctx, &act)? {
            return Ok(None);
        }
        Ok(Some(list.record(conn, &rows)?))
    })
    .await?;
    if let Some(at) = done {
        revocations.remember(&items, at);
    }
    Ok(done.is_some())
}

fn apply_in(conn: &mut DbConn, ctx: &AuditContext, act: &AdminAction) -> Result<bool, DbError> {
    let id = act.user_id;
    let (kind, detail) = match act.action {
        Action::Deactivate => {
            if User::set_active(conn, id, false)? == 0 {
                return Ok(false);
            }
            // A later reactivation must not revive the sessions of before.
            let ended = sessions::delete_by_user(conn, id)?;
            (
                AuditKind::AdminDeactivate,
                format!("deactivated; {ended} keygate session(s) ended"),
            )
        }
        Action::Reactivate => {
            if User::set_active(conn, id, true)? == 0 {
                return Ok(false);
            }
            (AuditKind::AdminReactivate, "reactivated".to_string())
        }
        Action::Unlink => {
            let Some(account_id) = act.account_id else {
                return Ok(false);
            };
            if SocialAccount::delete(conn, account_id, id)? == 0 {
                return Ok(false);
            }
            (
                AuditKind::AdminUnlink,
                format!("unlinked account {account_id}"),
            )
        }
        Action::SignOut => {
            let ended = sessions::delete_by_user(conn, id)?;
            (
                AuditKind::AdminSignOut,
                format!("signed out of Keycloak; {ended} keygate session(s) ended"),
            )
        }
    };
    Audit::new(kind, Some(id), detail)
        .by(act.actor_id)
        .record(conn, ctx)?;
    Ok(true)
}
