//! The one way a browser becomes signed in, shared by the code flow and the password form: local
//! user upsert, the active check, a fresh session, and the TOKEN cookie.

use actix_web::cookie::{Cookie, SameSite};

use crate::accounts;
use crate::crypto::random_token;
use crate::db::{self, DbError};
use crate::models::audit::AuditContext;
use crate::models::user::User;
use crate::oidc::GrantResult;
use crate::session::{AuthSession, SessionWriteError, TypedSession};
use crate::startup::AppState;

/// Name of the cookie that carries the access token for the UI (seed 000).
pub const TOKEN_COOKIE: &str = "TOKEN";
/// Browsers drop cookies over 4096 bytes (name, value and attributes); stay clear of it.
const MAX_TOKEN_COOKIE: usize = 3800;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("user {0} is deactivated")]
    Deactivated(i64),
    #[error("cannot store the local user")]
    Db(#[from] DbError),
    #[error(transparent)]
    Session(#[from] SessionWriteError),
}

pub struct SignedIn {
    pub user: User,
    /// The TOKEN cookie to set, or its removal when the token is too large for a cookie.
    pub token_cookie: Cookie<'static>,
}

pub async fn complete_sign_in(
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
    let ctx = ctx.clone();
    let user = db::run(&state.pool, move |conn| {
        let audit = accounts::LoginAudit { ctx: &ctx, method };
        accounts::login(conn, &sub, &claims, policy, Some(&audit))
    })
    .await?;
    // The login may have changed the profile: cached copies must not outlive it.
    state.users.forget_user(user.id);
    if !user.is_active {
        return Err(SignInError::Deactivated(user.id));
    }
    let token_cookie = token_cookie(state, &tokens.access_token, &user);
    session.sign_in(&AuthSession {
        login_id: random_token(16),
        user_id: user.id,
        kc_sid,
        tokens,
    })?;
    Ok(SignedIn { user, token_cookie })
}

/// The TOKEN cookie for `access_token`: HttpOnly, SameSite=Lax, Path=/, Secure on https, and no
/// Max-Age, so it ends with the browser session like the session cookie. A token too large for a
/// cookie (many roles or groups) yields a removal cookie instead; the user is then served from the
/// server-side session, and the log says why.
pub fn token_cookie(state: &AppState, access_token: &str, user: &User) -> Cookie<'static> {
    if access_token.len() > MAX_TOKEN_COOKIE {
        log::warn!(
            "access token of user {} is {} bytes, too large for the TOKEN cookie (limit {}): \
             serving this user from the server-side session only; trim the roles, groups or \
             mappers in the token to restore the cookie",
            user.id,
            access_token.len(),
            MAX_TOKEN_COOKIE
        );
        return removal_cookie(state);
    }
    Cookie::build(TOKEN_COOKIE, access_token.to_string())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .finish()
}

/// A cookie that deletes TOKEN.
pub fn removal_cookie(state: &AppState) -> Cookie<'static> {
    let mut c = Cookie::build(TOKEN_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies)
        .finish();
    c.make_removal();
    c
}
