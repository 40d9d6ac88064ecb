//! The registration form.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;

use crate::domain::audit::AuditContext;
use crate::domain::next_url::NextUrl;
use crate::domain::registration::{register, FieldErrors, RegisterError, RegistrationForm};
use crate::session::TypedSession;
use crate::web::response::{
    error_page_with_retry, keycloak_login_path, page, see_other, unavailable_page, unexpected_page,
    with_csrf,
};
use crate::web::AppState;

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
    with_csrf(session, |csrf_token| {
        let form_page = RegisterPage {
            form,
            errors,
            error,
            csrf_token,
        };
        page(status, &form_page)
    })
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
pub(crate) async fn register_page(
    state: web::Data<AppState>,
    session: TypedSession,
) -> HttpResponse {
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
pub(crate) async fn register_submit(
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
    // Every registration that reaches Keycloak creates a user there: ten an hour per address.
    let ip = ctx.ip.clone().unwrap_or_default();
    let attempt = match state.registrations.reserve(vec![format!("ip:{ip}")]) {
        Ok(attempt) => attempt,
        Err(wait) => {
            log::warn!("registration rate-limited for {ip:?}");
            let message = format!("Too many registrations from here. Try again in {wait} seconds.");
            let mut page = render(
                &session,
                &form,
                &vec![],
                Some(&message),
                StatusCode::TOO_MANY_REQUESTS,
            );
            page.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
            return page;
        }
    };
    let result = register(&state.admin, &state.pool, &valid, &ctx).await;
    attempt.keep();
    crate::util::metrics::login("registration", result.is_ok());
    match result {
        Ok(_) => see_other(&keycloak_login_path(
            &NextUrl::home(),
            Some(&valid.username),
        )),
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
        Err(RegisterError::Unavailable(u)) => unavailable_page(&u),
        Err(RegisterError::Unexpected(e)) => unexpected_page(&e),
    }
}
