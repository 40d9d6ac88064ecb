//! The site's plumbing: health, static assets, and the 404 for everything else.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::web::response::{is_api, not_found_page};

/// The static assets, compiled into the binary so it runs from any directory.
pub(crate) async fn static_file(name: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match name.as_str() {
        "style.css" => (
            include_str!("../../../static/style.css"),
            "text/css; charset=utf-8",
        ),
        "token.js" => (
            include_str!("../../../static/token.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

pub(crate) async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    not_found_for(&req)
}

/// The 404 for `req`: JSON on API paths, the page otherwise (unknown routes, and path parameters
/// that are not what the route expects).
pub(crate) fn not_found_for(req: &HttpRequest) -> HttpResponse {
    if is_api(req) {
        return HttpResponse::NotFound().json(json!({"error": {
            "code": "not_found", "message": "No such endpoint", "details": null}}));
    }
    not_found_page()
}
