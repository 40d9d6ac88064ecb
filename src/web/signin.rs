//! The one way a browser becomes signed in, shared by the code flow and the password form: the
//! local user (provisioned), the active check, a fresh session, and the TOKEN cookie.

use actix_web::cookie::Cookie;

use super::cookies::token_cookie;
use super::AppState;
use crate::domain::audit::AuditContext;
use crate::domain::provisioning::{provision, SignInAudit};
use crate::idp::GrantResult;
use crate::session::{AuthSession, SessionWriteError, TypedSession};
use crate::store::{self, DbError, User};
use crate::util::{now, random_token};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SignInError {
    #[error("user {0} is deactivated")]
    Deactivated(i64),
    #[error("cannot store the local user")]
    Db(#[from] DbError),
    #[error(transparent)]
    Session(#[from] SessionWriteError),
}

pub(crate) struct SignedIn {
    pub user: User,
    /// The TOKEN cookie to set, or its removal when the token is too large for a cookie.
    pub token_cookie: Cookie<'static>,
}

pub(crate) async fn complete_sign_in(
    state: &AppState,
    session: &TypedSession,
    grant: GrantResult,
    ctx: &AuditContext,
    method: &'static str,
) -> Result<SignedIn, SignInError> {
    let GrantResult {
        sub,
        claims,
        tokens,
        kc_sid,
    } = grant;
    let policy = state.settings.link_policy;
    let owned_sub = sub.clone();
    let audit_ctx = ctx.clone();
    let user = store::run(&state.pool, move |conn| {
        let audit = SignInAudit {
            ctx: &audit_ctx,
            method,
        };
        provision(conn, &sub, &claims, policy, Some(&audit))
    })
    .await?;
    // The sign-in may have changed the profile: cached copies must not outlive it.
    state.users.forget_user(user.id);
    if !user.is_active {
        return Err(SignInError::Deactivated(user.id));
    }
    let token_cookie = token_cookie(state.cookies, &tokens.access_token, user.id);
    let t = now();
    session.sign_in(&AuthSession {
        login_id: random_token(16),
        user_id: user.id,
        kc_sid,
        tokens: tokens.into(),
        signed_in_at: t,
        last_seen_at: t,
        sub: Some(owned_sub),
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
    })?;
    Ok(SignedIn { user, token_cookie })
}
