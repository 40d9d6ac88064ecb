//! The password form: Keycloak's direct access grant, then the same sign-in as the code flow.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use serde::Deserialize;

use super::login::{render_login, to_next, LoginError};
use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::next_url::NextUrl;
use crate::domain::rate_limit::account_key;
use crate::idp::GrantError;
use crate::session::TypedSession;
use crate::web::response::{error_page, unexpected_page};
use crate::web::signin::complete_sign_in;
use crate::web::AppState;

/// A failed sign-in that has no local user to attach to.
fn failed(detail: String) -> Audit {
    crate::util::metrics::login("password", false);
    Audit::new(AuditKind::LoginFailed, None, detail)
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
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
pub(crate) async fn password_login(
    state: web::Data<AppState>,
    ctx: AuditContext,
    session: TypedSession,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, LoginError> {
    if !state.settings.password_login {
        return Ok(error_page(
            StatusCode::NOT_FOUND,
            "Password sign-in is off",
            "Sign in with Keycloak instead.",
        ));
    }
    if let Err(e) = session.check_csrf(&form.csrf_token) {
        return Ok(e.error_response());
    }
    let next = NextUrl::parse_allowing(
        form.next.as_deref(),
        &state.public_url,
        &state.settings.allowed_redirect_hosts,
    );
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
    let ip = ctx.ip.clone().unwrap_or_default();
    // One budget per client address and one per account, whichever name the account was given.
    let account = account_key(&state.pool, &username).await;
    let keys = vec![format!("ip:{ip}"), format!("user:{account}")];
    let attempt = match state.login_failures.reserve(keys) {
        Ok(attempt) => attempt,
        Err(wait) => {
            log::warn!("password login rate-limited for {ip:?} / {username:?}");
            let detail = format!("password login as {username:?}: rate-limited");
            failed(detail).write(&state.pool, &ctx).await;
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
    };
    let grant = match state.grants.password_grant(&username, &form.password).await {
        Ok(grant) => grant,
        Err(GrantError::Rejected { error, description }) => {
            let failure = classify_password_failure(&error, &description);
            let detail = format!("password login as {username:?}: {failure}");
            failed(detail).write(&state.pool, &ctx).await;
            log::info!("password login refused for {username:?}: {error:?}: {description:?}");
            // Keycloak says "disabled" whatever the password: answered and counted like wrong
            // credentials, so the form tells nobody which accounts exist (the audit log does).
            let shown = match failure {
                LoginError::BadCredentials | LoginError::AccountDisabled(_) => {
                    attempt.keep();
                    LoginError::BadCredentials
                }
                other => other,
            };
            return Ok(match shown {
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
