//! Turning errors into responses, in one place.
//!
//! - Browser routes return a feature error (`LoginError`, …) whose `ResponseError` renders
//!   [`error_page`]: a status, a title and a sentence a person can act on.
//! - API routes (under `/api/`) return [`ApiError`], rendered as JSON; a 401 carries the login URL
//!   in the shape Data.Rentgen's frontend expects.
//! - Keycloak being unreachable ([`Unavailable`]) is one 503, as a page ([`unavailable_page`]) or
//!   as JSON ([`ApiError::Unavailable`]), whatever keygate was doing.
//! - Unexpected failures log their whole cause chain and show a fixed text: internal messages
//!   (SQL, token contents) never reach a response body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde_json::json;

use super::app_error::ErrorMessage;
use super::{is_api, NO_STORE};
use crate::idp::Unavailable;
use crate::session::CsrfMismatch;
use crate::store::DbError;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
    retry_href: &'a str,
    retry_label: &'a str,
    /// For the user to quote when reporting the error.
    request_id: Option<std::sync::Arc<str>>,
}

/// Renders the error page. Every browser-facing error goes through here.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    error_page_with_retry(status, title, message, "/login", "Sign in again")
}

pub(crate) fn error_page_with_retry(
    status: StatusCode,
    title: &str,
    message: &str,
    retry_href: &str,
    retry_label: &str,
) -> HttpResponse {
    let page = ErrorPage {
        status: status.as_u16(),
        title,
        message,
        retry_href,
        retry_label,
        request_id: crate::util::request_id::current(),
    };
    let body = page.render().unwrap_or_else(|e| {
        log::error!("error page failed to render: {e}");
        format!("{} {}", status.as_u16(), title)
    });
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(NO_STORE)
        .body(body)
}

/// The 404 page: an unknown address, or a path parameter that is not what the route expects.
pub(crate) fn not_found_page() -> HttpResponse {
    error_page_with_retry(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
        "/",
        "Home",
    )
}

/// The 503 page for "Keycloak cannot be reached": logs why, says nothing was changed.
pub(crate) fn unavailable_page(why: &Unavailable) -> HttpResponse {
    log::warn!("{why}");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Identity provider unreachable",
        "Keycloak cannot be reached right now, so keygate cannot finish this. Nothing was \
         changed; please try again in a moment.",
    )
}

/// Logs an unexpected error with its cause chain; returns the generic 500 page.
pub(crate) fn unexpected_page(e: &anyhow::Error) -> HttpResponse {
    log::error!("unexpected error: {e:#}");
    error_page_with_retry(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "keygate could not finish this request. Nothing was changed; please try again.",
        "/",
        "Home",
    )
}

/// The error of an API route, rendered as `{"error": {"code", "message", "details"}}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No valid credentials: `details` is the absolute URL that starts a login.
    #[error("authentication required")]
    AuthRedirect { login_url: String, reason: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("bad request: {message}")]
    BadRequest { code: &'static str, message: String },
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// The proxied application is down (502) or did not answer in time (504).
    #[error("upstream failed")]
    Upstream { timeout: bool },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::AuthRedirect { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream { timeout: true } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Upstream { timeout: false } => StatusCode::BAD_GATEWAY,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            ApiError::AuthRedirect { login_url, reason } => {
                log::info!(
                    "API request not authenticated: {}",
                    crate::util::for_log(reason, 300)
                );
                json!({"error": {
                    "code": "auth_redirect",
                    "message": "Please authorize using provided URL",
                    "details": login_url,
                }})
            }
            ApiError::Forbidden(why) => json!({"error": {
                "code": "forbidden", "message": why, "details": null}}),
            ApiError::BadRequest { code, message } => json!({"error": {
                "code": code, "message": message, "details": null}}),
            ApiError::Unavailable(why) => {
                log::warn!("{why}");
                json!({"error": {"code": "idp_unavailable",
                    "message": "The identity provider is unreachable; try again shortly.",
                    "details": null}})
            }
            ApiError::Upstream { timeout: true } => json!({"error": {
                "code": "upstream_timeout",
                "message": "the application did not answer in time", "details": null}}),
            ApiError::Upstream { timeout: false } => json!({"error": {
                "code": "upstream_unavailable",
                "message": "the application cannot be reached", "details": null}}),
            ApiError::Unexpected(e) => {
                log::error!("unexpected API error: {e:#}");
                json!({"error": {"code": "internal_error",
                    "message": "Internal error", "details": null}})
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header(NO_STORE);
        if let ApiError::AuthRedirect { .. } = self {
            // RFC 6750 3: a 401 names the scheme it wants.
            response.insert_header(("WWW-Authenticate", r#"Bearer realm="keygate""#));
        }
        response.json(body)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Unexpected(anyhow::Error::new(e))
    }
}

/// A form posted without this session's CSRF token: nothing changed, a page saying so.
impl ResponseError for CsrfMismatch {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        log::warn!("refused a form post without a valid CSRF token");
        error_page_with_retry(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this browser's current session (or it expired). \
             Nothing was changed. Go back, reload the page and try again.",
            "/",
            "Home",
        )
    }
}

/// The answer when the session store cannot be read: the 500 page, or JSON under `/api/`.
pub(crate) fn store_failure(req: &actix_web::HttpRequest) -> HttpResponse {
    if is_api(req) {
        return ApiError::Unexpected(anyhow::anyhow!("session store unavailable")).error_response();
    }
    unexpected_page(&anyhow::anyhow!("session store unavailable"))
}

/// Renders errors that actix or a middleware answered on its own (a session store that failed,
/// a wrong method, an unreadable body) as keygate's page, or JSON under `/api/`. Responses keygate
/// rendered itself already have an HTML or JSON content type and pass unchanged.
pub(crate) fn render_bare_errors<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let content_type = res
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let proxied = res
        .response()
        .extensions()
        .get::<crate::web::Proxied>()
        .is_some();
    if proxied
        || content_type.starts_with("text/html")
        || content_type.starts_with("application/json")
    {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let said = res.response().extensions().get::<ErrorMessage>().cloned();
    let (req, _) = res.into_parts();
    if status.is_server_error() && said.is_none() {
        log::error!("{} {} failed with {status}", req.method(), req.path());
    }
    let (code, message) = match said {
        Some(m) => (m.code, m.message),
        None if status == StatusCode::NOT_FOUND => {
            ("not_found", "There is nothing at this address.".into())
        }
        None if status.is_server_error() => ("internal_error", "Internal error".into()),
        None => (
            "bad_request",
            status.canonical_reason().unwrap_or("Error").to_string(),
        ),
    };
    let response = if is_api(&req) {
        HttpResponse::build(status)
            .insert_header(NO_STORE)
            .json(json!({"error": {"code": code, "message": message, "details": null}}))
    } else if status == StatusCode::NOT_FOUND {
        not_found_page()
    } else if status.is_server_error() {
        error_page_with_retry(
            status,
            "Something went wrong",
            "keygate could not finish this request. Nothing was changed; please try again.",
            "/",
            "Home",
        )
    } else {
        let title = status.canonical_reason().unwrap_or("Error");
        error_page_with_retry(status, title, &message, "/", "Home")
    };
    Ok(ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
