//! The login page and the OpenID Connect authorization-code flow.

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use serde::Deserialize;

use crate::auth::{AuthSource, Authenticated};
use crate::db::now;
use crate::errors::{error_page, unexpected_page};
use crate::models::audit::{self, Audit, AuditContext, AuditKind};
use crate::next_url::NextUrl;
use crate::oidc::OidcError;
use crate::session::{TypedSession, PENDING_TTL_SECS};
use crate::signin::{complete_sign_in, SignInError, SignedIn};
use crate::startup::AppState;

/// Why a login did not complete. Each variant is a page that tells the person what happened.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
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
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<OidcError> for LoginError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::Unavailable(why) => LoginError::Unavailable(why),
            OidcError::Rejected { error, description } => {
                LoginError::CodeRejected(format!("{error}: {description}"))
            }
            OidcError::InvalidIdToken(why) => LoginError::InvalidIdToken(why),
            OidcError::Unexpected(e) => LoginError::Unexpected(e),
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
    fn user_message(&self) -> &'static str {
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
                log::info!("login: Keycloak answered the callback with {error}: {description}");
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
            LoginError::Unavailable(_) => (
                "Identity provider unreachable",
                "Keycloak cannot be reached right now, so you cannot sign in. Please try again \
                 in a moment.",
            ),
            LoginError::Unexpected(e) => return unexpected_page(e),
        };
        log::warn!("login failed: {self}");
        error_page(status, title, message)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub keycloak_href: String,
    pub next: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub password_login: bool,
    pub registration: bool,
    pub csrf_token: String,
    pub username: &'a str,
}

impl LoginPage<'_> {
    pub fn respond(&self, status: StatusCode) -> HttpResponse {
        crate::errors::page(status, self)
    }
}

pub fn keycloak_href(next: &NextUrl) -> String {
    let mut url = url::Url::parse("http://x/login/keycloak").expect("static URL");
    url.query_pairs_mut().append_pair("next", next.as_str());
    format!("/login/keycloak?{}", url.query().unwrap_or_default())
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    login_hint: Option<String>,
}

/// GET /login. With a valid TOKEN cookie (or a session that can refresh one) the browser goes
/// straight to the UI page, which fetches its token (login-from-cookie); otherwise the login page.
pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let next = NextUrl::parse(query.next.as_deref());
    if let Ok(auth) = Authenticated::extract(&req).await {
        let can_serve_token = match auth.source {
            AuthSource::Cookie | AuthSource::Bearer => true,
            AuthSource::Session => session
                .auth()
                .is_some_and(|a| a.tokens.refresh_token.is_some()),
        };
        if can_serve_token {
            return redirect(&state.settings.ui_url);
        }
    }
    render_login(&state, &session, &next, None, "", StatusCode::OK)
}

/// The login page, with an optional error and the username to keep in the password form.
fn render_login(
    state: &AppState,
    session: &TypedSession,
    next: &NextUrl,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> HttpResponse {
    let csrf_token = if state.settings.password_login {
        match session.csrf_token() {
            Ok(t) => t,
            Err(e) => return unexpected_page(&anyhow::Error::new(e)),
        }
    } else {
        String::new()
    };
    LoginPage {
        keycloak_href: keycloak_href(next),
        next: next.as_str(),
        notice: None,
        error,
        password_login: state.settings.password_login,
        registration: state.settings.registration,
        csrf_token,
        username,
    }
    .respond(status)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// POST /login/password: Keycloak's direct access grant, then the same sign-in as the code flow.
/// Failures are limited per client IP and per username.
pub async fn password_login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, LoginError> {
    if !state.settings.password_login {
        return Ok(crate::errors::error_page(
            StatusCode::NOT_FOUND,
            "Password sign-in is off",
            "Sign in with Keycloak instead.",
        ));
    }
    if let Err(e) = session.check_csrf(&form.csrf_token) {
        return Ok(e.error_response());
    }
    let next = NextUrl::parse(form.next.as_deref());
    let username = form.username.trim().chars().take(255).collect::<String>();
    if username.is_empty() || form.password.is_empty() {
        let page = render_login(
            &state,
            &session,
            &next,
            Some("Enter your username and password."),
            &username,
            StatusCode::BAD_REQUEST,
        );
        return Ok(page);
    }
    let ctx = AuditContext::of(&req);
    let ip = ctx.ip.clone().unwrap_or_default();
    let keys = [
        format!("ip:{ip}"),
        format!("user:{}", username.to_lowercase()),
    ];
    if let Err(wait) = state.login_failures.check(&keys) {
        log::warn!("password login rate-limited for {ip} / {username}");
        audit_failure(
            &state,
            &ctx,
            format!("password login as {username:?}: rate-limited"),
        )
        .await;
        let message = format!("Too many failed sign-in attempts. Try again in {wait} seconds.");
        let mut page = render_login(
            &state,
            &session,
            &next,
            Some(&message),
            &username,
            StatusCode::TOO_MANY_REQUESTS,
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
        return Ok(page);
    }
    let grant = match state.oidc.password_grant(&username, &form.password).await {
        Ok(grant) => grant,
        Err(OidcError::Rejected { error, description }) => {
            let failure = classify_password_failure(&error, &description);
            if matches!(failure, LoginError::BadCredentials) {
                state.login_failures.record_failure(&keys);
            }
            let detail = format!("password login as {username:?}: {failure}");
            audit_failure(&state, &ctx, detail).await;
            log::info!("password login refused for {username}: {error}: {description}");
            return Ok(match failure {
                LoginError::Unexpected(e) => unexpected_page(&e),
                other => render_login(
                    &state,
                    &session,
                    &next,
                    Some(other.user_message()),
                    &username,
                    other.status_code(),
                ),
            });
        }
        Err(other) => return Err(other.into()),
    };
    let signed_in = complete_sign_in(&state, &session, grant, &ctx, "password").await?;
    log::info!("user {} signed in with a password", signed_in.user.id);
    Ok(to_next(&next, signed_in))
}

/// Keycloak answers every password-grant failure with `invalid_grant` and a description; only
/// these descriptions tell the cases apart. Anything unknown counts as wrong credentials, which
/// reveals nothing.
fn classify_password_failure(error: &str, description: &str) -> LoginError {
    let d = description.to_ascii_lowercase();
    if error == "unauthorized_client" {
        return LoginError::Unexpected(anyhow::anyhow!(
            "Keycloak refused the password grant for this client ({description}): enable \
             Direct Access Grants on the client, or set KEYGATE_PASSWORD_LOGIN=false"
        ));
    }
    if d.contains("disabled") {
        LoginError::AccountDisabled(description.to_string())
    } else if d.contains("not fully set up") {
        LoginError::AccountNotSetUp(description.to_string())
    } else {
        LoginError::BadCredentials
    }
}

/// GET /login/keycloak?next=/path: off to Keycloak with state, nonce and PKCE S256.
pub async fn start_keycloak_login(
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, LoginError> {
    let next = NextUrl::parse(query.next.as_deref());
    let hint = query.login_hint.as_deref().filter(|h| !h.is_empty());
    let (url, pending) = state.oidc.authorize(next, hint).await?;
    session
        .add_pending(pending)
        .map_err(|e| LoginError::Unexpected(e.into()))?;
    Ok(redirect(url.as_str()))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    /// RFC 9207: the issuer of this response, where the provider sends it (Keycloak does).
    iss: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /login/callback: check state, exchange the code, validate the ID token, sign in.
pub async fn callback(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, LoginError> {
    let query = query.into_inner();
    if let Some(error) = query.error {
        // Consume the pending login too, so the state cannot be used again.
        if let Some(s) = &query.state {
            session.take_pending(s);
        }
        return Err(LoginError::Provider {
            error: clip(&error),
            description: clip(&query.error_description.unwrap_or_default()),
        });
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err(LoginError::MissingParameters);
    };
    // Mix-up defence: a response naming another issuer was not meant for this login.
    if let Some(iss) = &query.iss {
        if iss.trim_end_matches('/') != state.settings.issuer_url.as_str().trim_end_matches('/') {
            return Err(LoginError::Provider {
                error: "issuer_mismatch".into(),
                description: clip(iss),
            });
        }
    }
    let pending = session
        .take_pending(&returned_state)
        .ok_or(LoginError::UnknownState)?;
    if now() - pending.created_at > PENDING_TTL_SECS {
        return Err(LoginError::Expired);
    }
    let grant = state.oidc.exchange_code(&pending, code).await?;
    let signed_in = complete_sign_in(&state, &session, grant, &ctx, "code flow").await?;
    log::info!("user {} signed in with Keycloak", signed_in.user.id);
    Ok(to_next(&pending.next, signed_in))
}

/// After a sign-in: on to `next`, with the TOKEN cookie.
fn to_next(next: &NextUrl, signed_in: SignedIn) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next.as_str()))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(signed_in.token_cookie)
        .finish()
}

/// Records a failed login that has no local user to attach to.
async fn audit_failure(state: &AppState, ctx: &AuditContext, detail: String) {
    let ctx = ctx.clone();
    let result = crate::db::run(&state.pool, move |conn| {
        let event = Audit {
            kind: AuditKind::LoginFailed,
            user_id: None,
            actor_id: None,
            detail: &detail,
        };
        Ok(audit::record(conn, &ctx, &event)?)
    })
    .await;
    if let Err(e) = result {
        log::error!("could not write the audit log: {e}");
    }
}

pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Provider-sent text is shown and logged only in bounded length.
fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
