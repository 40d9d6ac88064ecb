//! What an application's handlers take to know who is signed in: [`CurrentUser`],
//! [`MaybeUser`] and [`AccessToken`]. They run the same authentication as keygate's own routes
//! (bearer token, TOKEN cookie, session, with the refresh and revocation rules), once per request.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::auth::{authenticate, AuthError, AuthSource, Authenticated, Failure};
use super::client::audit_context;
use super::cookies::{set_on_response, token_cookie};
use super::roles::Role;
use super::AppState;
use crate::session::refresh::is_fresh;
use crate::session::{RefreshError, TypedSession};
use crate::store::User;

/// The signed-in, active local user. A handler that takes it is for signed-in users only:
/// anonymous page visitors are sent to the login and come back, `/api/` callers get the 401
/// `auth_redirect` JSON ([`AuthError`]).
///
/// ```no_run
/// use actix_web::HttpResponse;
/// use keygate::CurrentUser;
///
/// async fn hello(user: CurrentUser) -> HttpResponse {
///     HttpResponse::Ok().body(format!("Hello, {}", user.user().username))
/// }
/// ```
#[derive(Clone)]
pub struct CurrentUser(pub(crate) Authenticated);

impl CurrentUser {
    /// The local user (the `users` row), as of this request.
    pub fn user(&self) -> &User {
        &self.0.user
    }

    /// The local user's id: the key of `users`, for your own tables' foreign keys.
    pub fn id(&self) -> i64 {
        self.0.user.id
    }

    /// True when the user's access token carries `role`. False when no role can be known right
    /// now (the session's token expired and Keycloak is out of reach): gate with
    /// [`RequireRole`](crate::RequireRole) to answer that case with a 503 instead.
    pub fn has_role(&self, role: &Role) -> bool {
        self.0.has(role)
    }

    /// True when the request came with an `Authorization: Bearer` token (a UI or another
    /// service), false for a browser's session or TOKEN cookie.
    pub fn is_bearer(&self) -> bool {
        self.0.source == AuthSource::Bearer
    }
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser")
            .field("id", &self.0.user.id)
            .field("source", &self.0.source)
            .finish()
    }
}

impl FromRequest for CurrentUser {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(CurrentUser) })
    }
}

/// The signed-in user, or `None` for a visitor without (usable) credentials. Unlike
/// `Option<CurrentUser>`, which turns every failure into `None`, a database error or an
/// unreachable Keycloak still answers 500 or 503 rather than showing a signed-in user an
/// anonymous page.
#[derive(Clone, Debug)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequest for MaybeUser {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            maybe_authenticated(&req)
                .await
                .map(|a| MaybeUser(a.map(CurrentUser)))
        })
    }
}

/// The request's user, `None` when it has no credentials keygate accepts.
pub(crate) async fn maybe_authenticated(
    req: &HttpRequest,
) -> Result<Option<Authenticated>, AuthError> {
    match authenticate(req).await {
        Ok(a) => Ok(Some(a)),
        Err(e) if e.is_anonymous() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The signed-in user's access token, for calls to other APIs that accept Keycloak's tokens:
/// the bearer token the request came with, or the session's token, refreshed at Keycloak (under
/// the refresh lease) when it has expired or is about to. The refresh token never leaves keygate.
///
/// ```no_run
/// use keygate::AccessToken;
///
/// async fn call_reports(token: AccessToken) -> String {
///     format!("would send {}", token.authorization_header().len())
/// }
/// ```
#[derive(Clone)]
pub struct AccessToken {
    token: Arc<str>,
    expires_at: Option<i64>,
}

impl AccessToken {
    /// The token itself.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// `Bearer <token>`, the `Authorization` header's value.
    pub fn authorization_header(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// When it expires (Unix seconds), when keygate knows: always for a session's token.
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl FromRequest for AccessToken {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let auth = authenticate(&req).await?;
            access_token_of(&req, &auth).await
        })
    }
}

/// The access token of `auth`, the request's authentication: its bearer token, or the
/// session's (refreshed when stale).
pub(crate) async fn access_token_of(
    req: &HttpRequest,
    auth: &Authenticated,
) -> Result<AccessToken, AuthError> {
    if auth.source == AuthSource::Bearer {
        // The extractor accepted exactly this header's token.
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        return Ok(AccessToken {
            token: token.into(),
            expires_at: None,
        });
    }
    session_token(req).await
}

/// The session's access token, refreshed when stale; the new one also goes out as the TOKEN
/// cookie, as after any refresh.
async fn session_token(req: &HttpRequest) -> Result<AccessToken, AuthError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by the app factory");
    let fail = |f: Failure| AuthError::for_request(req, state, f);
    let session = TypedSession::from_request(req, &mut Payload::None)
        .await
        .map_err(|e| fail(Failure::Internal(anyhow::anyhow!("session: {e}"))))?;
    let auth = session.auth().ok_or_else(|| fail(Failure::Missing))?;
    let auth = if is_fresh(&auth) {
        auth
    } else {
        let fresh = state
            .refresher
            .fresh_tokens(&auth, false, &audit_context(req))
            .await
            .map_err(|e| match e {
                RefreshError::Ended(why) => {
                    session.sign_out();
                    fail(Failure::Ended(why))
                }
                RefreshError::Gone => {
                    session.sign_out();
                    fail(Failure::Ended("the session was ended".into()))
                }
                RefreshError::Unavailable(u) => fail(Failure::Unavailable(u)),
                RefreshError::Db(e) => fail(Failure::Internal(e.into())),
                RefreshError::Unexpected(e) => fail(Failure::Internal(e)),
            })?;
        let cookie = token_cookie(state.cookies, &fresh.tokens.access_token, fresh.user_id);
        set_on_response(req, cookie);
        fresh
    };
    Ok(AccessToken {
        token: auth.tokens.access_token.as_str().into(),
        expires_at: Some(auth.tokens.access_expires_at),
    })
}
