//! The registration form.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;

use crate::errors::{error_page, error_page_with_retry, unexpected_page};
use crate::models::audit::AuditContext;
use crate::registration::{register, FieldErrors, RegisterError, RegistrationForm};
use crate::session::TypedSession;
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    form: &'a RegistrationForm,
    errors: &'a FieldErrors,
    error: Option<&'a str>,
    csrf_token: &'a str,
}

impl RegisterPage<'_> {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }
}

fn render(
    session: &TypedSession,
    form: &RegistrationForm,
    errors: &FieldErrors,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let csrf_token = match session.csrf_token() {
        Ok(t) => t,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    let page = RegisterPage {
        form,
        errors,
        error,
        csrf_token: &csrf_token,
    };
    crate::errors::page(status, &page)
}

fn disabled() -> HttpResponse {
    error_page_with_retry(
        StatusCode::NOT_FOUND,
        "Registration is closed",
        "New accounts cannot be created here. Ask an administrator for an account.",
        "/login",
        "Sign in",
    )
}

/// GET /register
pub async fn register_page(state: web::Data<AppState>, session: TypedSession) -> HttpResponse {
    if !state.settings.registration {
        return disabled();
    }
    render(
        &session,
        &RegistrationForm::default(),
        &vec![],
        None,
        StatusCode::OK,
    )
}

/// POST /register: validate, create in Keycloak and locally, then sign in through Keycloak with
/// the username filled in.
pub async fn register_submit(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    form: web::Form<RegistrationForm>,
) -> HttpResponse {
    if !state.settings.registration {
        return disabled();
    }
    if let Err(e) = session.check_csrf(&form.csrf_token) {
        return e.error_response();
    }
    let valid = match form.validate() {
        Ok(v) => v,
        Err(errors) => {
            return render(
                &session,
                &form,
                &errors,
                Some("Please correct the fields below."),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    match register(&state, &valid, &ctx).await {
        Ok(_) => {
            let mut to = url::Url::parse("http://x/login/keycloak").expect("static URL");
            to.query_pairs_mut()
                .append_pair("next", "/")
                .append_pair("login_hint", &valid.username);
            HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!("/login/keycloak?{}", to.query().unwrap_or_default()),
                ))
                .finish()
        }
        Err(RegisterError::Taken) => render(
            &session,
            &form,
            &vec![],
            Some("That username or email is already taken."),
            StatusCode::CONFLICT,
        ),
        Err(RegisterError::Rejected(message)) => render(
            &session,
            &form,
            &vec![],
            Some(&format!("Keycloak did not accept this account: {message}")),
            StatusCode::BAD_REQUEST,
        ),
        Err(RegisterError::Unavailable(why)) => {
            log::warn!("registration: Keycloak unreachable: {why}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Identity provider unreachable",
                "Keycloak cannot be reached right now, so no account was created. Please try \
                 again in a moment.",
            )
        }
        Err(RegisterError::Unexpected(e)) => unexpected_page(&e),
    }
}
