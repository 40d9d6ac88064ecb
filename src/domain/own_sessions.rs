//! A user ending their own sessions: one of them, or all of them. Each end deletes the rows,
//! revokes their tokens on every instance and is audited, in one transaction.

use std::sync::Arc;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::revocations::{Revocations, Revoke};
use crate::store::{self, sessions, DbError, Pool};
use crate::util::now;

/// Which sessions to end.
pub(crate) enum Which {
    /// One session of the user, by its login id (`sid`: its Keycloak session, when known).
    One {
        login_id: String,
        sid: Option<String>,
    },
    /// Every session of the user, with the user's Keycloak subjects.
    All { subjects: Vec<String> },
}

/// Ends the user's sessions `which` names; returns how many rows ended (0: not the user's).
pub(crate) async fn end(
    pool: &Pool,
    revocations: &Arc<Revocations>,
    ctx: &AuditContext,
    user_id: i64,
    which: Which,
) -> Result<usize, DbError> {
    let items: Vec<Revoke> = match &which {
        Which::One { login_id, sid } => std::iter::once(Revoke::login(login_id))
            .chain(sid.as_deref().map(Revoke::sid))
            .collect(),
        Which::All { subjects } => subjects.iter().map(|s| Revoke::sub(s)).collect(),
    };
    let (ctx, list, rows) = (ctx.clone(), revocations.clone(), items.clone());
    let (ended, at) = store::transaction(pool, move |conn| {
        let (ended, detail) = match &which {
            Which::One { login_id, .. } => {
                let mine = sessions::logins_of_user(conn, user_id, now())?
                    .iter()
                    .any(|(l, _)| l.as_deref() == Some(login_id.as_str()));
                if !mine {
                    return Ok((0, 0));
                }
                let n = sessions::delete_by_login(conn, login_id)?;
                (n, "signed out one of their sessions".to_string())
            }
            Which::All { .. } => {
                let n = sessions::delete_by_user(conn, user_id)?;
                (
                    n,
                    format!("signed out everywhere; {n} keygate session(s) ended"),
                )
            }
        };
        Audit::new(AuditKind::Logout, Some(user_id), detail).record(conn, &ctx)?;
        Ok((ended, list.record(conn, &rows)?))
    })
    .await?;
    if ended > 0 {
        revocations.remember(&items, at);
    }
    Ok(ended)
}
