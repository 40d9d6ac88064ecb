//! The login page and the OpenID Connect authorization-code flow; [`LoginError`], the pages of a
//! sign-in that did not complete (shared with the password form).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;
use serde::Deserialize;

use crate::domain::audit::AuditContext;
use crate::domain::next_url::NextUrl;
use crate::idp::{GrantError, Unavailable};
use crate::session::{PendingLogin, TypedSession};
use crate::util::{clip, for_log};
use crate::web::auth::{AuthSource, Authenticated};
use crate::web::response::{
    error_page, keycloak_login_path, page, see_other, unavailable_page, unexpected_page,
    with_cookie,
};
use crate::web::signin::{complete_sign_in, SignInError, SignedIn};
use crate::web::AppState;

/// Why a login did not complete. Each variant is a page that tells the person what happened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("Keycloak returned an error: {error}")]
    Provider { error: String, description: String },
    #[error("callback without code or state")]
    MissingParameters,
    #[error("unknown, expired or replayed state")]
    UnknownState,
    #[error("login took too long")]
    Expired,
    #[error("Keycloak refused the code: {0}")]
    CodeRejected(String),
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    #[error("wrong username or password")]
    BadCredentials,
    #[error("account disabled: {0}")]
    AccountDisabled(String),
    #[error("account not fully set up: {0}")]
    AccountNotSetUp(String),
    #[error("user {0} is deactivated locally")]
    Deactivated(i64),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<GrantError> for LoginError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::Unavailable(u) => LoginError::Unavailable(u),
            GrantError::Rejected { error, description } => {
                LoginError::CodeRejected(format!("{error}: {description}"))
            }
            GrantError::InvalidIdToken(why) => LoginError::InvalidIdToken(why),
            GrantError::Unexpected(e) => LoginError::Unexpected(e),
        }
    }
}

impl From<SignInError> for LoginError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::Deactivated(id) => LoginError::Deactivated(id),
            other => LoginError::Unexpected(anyhow::Error::new(other)),
        }
    }
}

impl LoginError {
    /// The sentence shown on the login form for a failed password login.
    pub(super) fn user_message(&self) -> &'static str {
        match self {
            LoginError::AccountDisabled(_) => {
                "This account is disabled in Keycloak. Contact an administrator."
            }
            LoginError::AccountNotSetUp(_) => {
                "Keycloak requires you to finish setting up this account (for example, verify \
                 your email or update your password). Use \"Sign in with Keycloak\" to do so."
            }
            LoginError::Deactivated(_) => "Your account has been deactivated by an administrator.",
            _ => "Wrong username or password.",
        }
    }
}

impl ResponseError for LoginError {
    fn status_code(&self) -> StatusCode {
        match self {
            LoginError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            LoginError::Deactivated(_) | LoginError::AccountDisabled(_) => StatusCode::FORBIDDEN,
            LoginError::BadCredentials => StatusCode::UNAUTHORIZED,
            LoginError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (title, message) = match self {
            LoginError::Provider { error, description } => {
                log::info!(
                    "login: Keycloak answered the callback with {}: {}",
                    for_log(error, 200),
                    for_log(description, 200)
                );
                let message = if error == "access_denied" {
                    "The sign-in was cancelled or denied at Keycloak.".to_string()
                } else {
                    format!("Keycloak could not sign you in ({error}). Please try again.")
                };
                return error_page(status, "Sign-in failed", &message);
            }
            LoginError::MissingParameters => (
                "Sign-in failed",
                "The sign-in response is missing its code or state. Please start again.",
            ),
            LoginError::UnknownState => (
                "Sign-in link expired",
                "This sign-in response does not match a sign-in started in this browser, or it \
                 was already used. Please start again.",
            ),
            LoginError::Expired => (
                "Sign-in link expired",
                "The sign-in took too long. Please start again.",
            ),
            LoginError::CodeRejected(_) => (
                "Sign-in failed",
                "Keycloak did not accept the sign-in code (it may have expired or been used). \
                 Please start again.",
            ),
            LoginError::InvalidIdToken(_) => (
                "Sign-in failed",
                "The identity provider's answer failed validation, so keygate did not sign you in.",
            ),
            LoginError::BadCredentials => ("Sign-in failed", "Wrong username or password."),
            LoginError::AccountDisabled(_) => (
                "Account disabled",
                "This account is disabled in Keycloak. Contact an administrator.",
            ),
            LoginError::AccountNotSetUp(_) => (
                "Account not fully set up",
                "Keycloak requires you to finish setting up this account (for example, verify \
                 your email or update your password). Sign in with Keycloak to do so.",
            ),
            LoginError::Deactivated(_) => (
                "Account deactivated",
                "Your account has been deactivated by an administrator.",
            ),
            LoginError::Unavailable(u) => return unavailable_page(u),
            LoginError::Unexpected(e) => return unexpected_page(e),
        };
        log::warn!("login failed: {}", for_log(&self.to_string(), 500));
        error_page(status, title, message)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    keycloak_href: String,
    next: &'a str,
    error: Option<&'a str>,
    password_login: bool,
    registration: bool,
    csrf_token: &'a str,
    username: &'a str,
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
    /// oauth2-proxy's name for `next`, which forward-auth configurations use; may be absolute
    /// on a host of `KEYGATE_ALLOWED_REDIRECT_HOSTS`.
    rd: Option<String>,
    login_hint: Option<String>,
}

impl NextQuery {
    fn next(&self, state: &AppState) -> NextUrl {
        let raw = self.rd.as_deref().or(self.next.as_deref());
        NextUrl::parse_allowing(
            raw,
            &state.public_url,
            &state.settings.allowed_redirect_hosts,
        )
    }
}

/// GET /login. With a valid TOKEN cookie (or a session that can refresh one) the browser goes
/// straight to the UI page, which fetches its token (login-from-cookie); otherwise the login page.
pub(crate) async fn login_page(
    auth: Option<Authenticated>,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let next = query.next(&state);
    if let Some(auth) = auth {
        // Sent here to come back somewhere (forward-auth, a link): go there.
        if next != NextUrl::home() {
            return see_other(next.as_str());
        }
        let can_serve_token = match auth.source {
            AuthSource::Cookie | AuthSource::Bearer => true,
            AuthSource::Session => session
                .auth()
                .is_some_and(|a| a.tokens.refresh_token.is_some()),
        };
        if can_serve_token {
            return see_other(&state.settings.ui_url);
        }
    }
    render_login(&state, &session, &next, None, "", StatusCode::OK)
}

/// The login page, with an optional error and the username to keep in the password form.
pub(super) fn render_login(
    state: &AppState,
    session: &TypedSession,
    next: &NextUrl,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> HttpResponse {
    let render = |csrf_token: &str| {
        let login = LoginPage {
            keycloak_href: keycloak_login_path(next, None),
            next: next.as_str(),
            error,
            password_login: state.settings.password_login,
            registration: state.settings.registration,
            csrf_token,
            username,
        };
        page(status, &login)
    };
    if state.settings.password_login {
        crate::web::response::with_csrf(session, render)
    } else {
        render("")
    }
}

/// GET /login/keycloak?next=/path: off to Keycloak with state, nonce and PKCE S256.
pub(crate) async fn start_keycloak_login(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, LoginError> {
    let next = query.next(&state);
    let hint = query.login_hint.as_deref().filter(|h| !h.is_empty());
    let request = state.grants.authorize(hint).await?;
    session
        .add_pending(PendingLogin::of(&request, next))
        .map_err(|e| LoginError::Unexpected(e.into()))?;
    Ok(see_other(request.url.as_str()))
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    /// RFC 9207: the issuer of this response, where the provider sends it (Keycloak does).
    iss: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /login/callback: check state, exchange the code, validate the ID token, sign in.
pub(crate) async fn callback(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, LoginError> {
    let answer = finish_code_flow(ctx, state, session, query.into_inner()).await;
    if answer.is_err() {
        crate::util::metrics::login("code", false);
    }
    answer
}

async fn finish_code_flow(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    query: CallbackQuery,
) -> Result<HttpResponse, LoginError> {
    if let Some(error) = query.error {
        // Consume the pending login too, so the state cannot be used again.
        if let Some(s) = &query.state {
            session.take_pending(s);
        }
        return Err(LoginError::Provider {
            error: clip(&error, 200),
            description: clip(&query.error_description.unwrap_or_default(), 200),
        });
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(LoginError::MissingParameters);
    };
    // Mix-up defence (RFC 9207): a response naming another issuer was not meant for this login,
    // and one naming none is refused when the provider promised to name itself in every one.
    let (issuer, required) = state.grants.response_issuer().await?;
    match &query.iss {
        Some(iss) if *iss != issuer => {
            return Err(LoginError::Provider {
                error: "issuer_mismatch".into(),
                description: clip(iss, 200),
            })
        }
        None if required => {
            return Err(LoginError::Provider {
                error: "issuer_missing".into(),
                description: "the response does not name its issuer".into(),
            })
        }
        _ => {}
    }
    let pending = session
        .take_pending(&returned_state)
        .ok_or(LoginError::UnknownState)?;
    if pending.expired() {
        return Err(LoginError::Expired);
    }
    let grant = state
        .grants
        .exchange_code(code, &pending.pkce_verifier, &pending.nonce)
        .await?;
    let signed_in = complete_sign_in(&state, &session, grant, &ctx, "code flow").await?;
    log::info!("user {} signed in with Keycloak", signed_in.user.id);
    Ok(to_next(&pending.next, signed_in))
}

/// After a sign-in: on to `next`, with the TOKEN cookie.
pub(super) fn to_next(next: &NextUrl, signed_in: SignedIn) -> HttpResponse {
    with_cookie(see_other(next.as_str()), &signed_in.token_cookie)
}
