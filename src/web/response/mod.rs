//! The one response toolkit: page rendering, redirects, the URL builders, error pages and the JSON
//! error shape, pagination. Handlers build every answer from these, so each idiom is written once.

mod app_error;
mod errors;
mod pagination;
mod urls;

use actix_web::cookie::Cookie;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;

pub use app_error::Error;
pub(crate) use errors::{
    error_page, error_page_with_retry, not_found_page, render_bare_errors, store_failure,
    unavailable_page, unexpected_page, ApiError,
};
pub(crate) use pagination::{Pager, PAGE_SIZE};
pub(crate) use urls::{keycloak_login_path, login_path, login_url, path_with_query};

use crate::session::TypedSession;

/// The header every answer that is per user (pages, tokens, redirects after sign-in) carries.
pub(crate) const NO_STORE: (&str, &str) = ("Cache-Control", "no-store");

/// True for the JSON API's paths, which answer JSON errors instead of pages: keygate's `/api/`
/// and the prefixes of `KEYGATE_API_PREFIXES`.
pub(crate) fn is_api(req: &actix_web::HttpRequest) -> bool {
    let path = req.path();
    path.starts_with("/api/")
        || req
            .app_data::<actix_web::web::Data<crate::web::AppState>>()
            .is_some_and(|s| {
                s.settings
                    .api_prefixes
                    .iter()
                    .any(|p| path.starts_with(p.as_str()))
            })
}

/// Renders a page template with `status`, never cached (pages show per-user data and CSRF
/// tokens); a template that fails to render becomes the generic 500 page.
pub(crate) fn page(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(NO_STORE)
            .body(body),
        Err(e) => unexpected_page(&anyhow::Error::new(e)),
    }
}

/// A 303 to `location`, never cached.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header(NO_STORE)
        .finish()
}

/// `response` with `cookie` set. A cookie that cannot be encoded as a header is logged and left
/// out: the answer itself still goes out.
pub(crate) fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> HttpResponse {
    if let Err(e) = response.add_cookie(cookie) {
        log::error!("could not set the {} cookie: {e}", cookie.name());
    }
    response
}

/// Renders what `render` makes of this session's CSRF token, or the 500 page when the session
/// cannot store one.
pub(crate) fn with_csrf(
    session: &TypedSession,
    render: impl FnOnce(&str) -> HttpResponse,
) -> HttpResponse {
    match session.csrf_token() {
        Ok(token) => render(&token),
        Err(e) => unexpected_page(&anyhow::Error::new(e)),
    }
}
