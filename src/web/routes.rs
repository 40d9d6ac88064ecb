//! Every route of keygate, registered in one place.

use actix_web::{web, HttpResponse};

mod admin;
mod api;
mod home;
mod login;
mod logout;
mod register;
mod token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _req| {
        let response = crate::errors::error_page(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Bad request",
            "The address has malformed parameters.",
        );
        actix_web::error::InternalError::from_response(err, response).into()
    }))
    .app_data(
        web::FormConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, req| {
                let response =
                    if req.path().starts_with("/api/") || req.path() == "/logout/backchannel" {
                        HttpResponse::BadRequest().json(serde_json::json!({
                "error": "invalid_request", "error_description": "unreadable form body"}))
                    } else {
                        crate::errors::error_page(
                            actix_web::http::StatusCode::BAD_REQUEST,
                            "Bad request",
                            "The form could not be read. Go back and try again.",
                        )
                    };
                actix_web::error::InternalError::from_response(err, response).into()
            }),
    )
    .app_data(web::PathConfig::default().error_handler(|err, _req| {
        actix_web::error::InternalError::from_response(err, crate::errors::not_found_page()).into()
    }))
    .route("/", web::get().to(home::home))
    .route("/healthz", web::get().to(health))
    .route("/login", web::get().to(login::login_page))
    .route(
        "/login/keycloak",
        web::get().to(login::start_keycloak_login),
    )
    .route("/login/callback", web::get().to(login::callback))
    .route("/login/password", web::post().to(login::password_login))
    .route("/logout", web::get().to(logout::logout_page))
    .route("/logout", web::post().to(logout::logout))
    .route(
        "/logout/backchannel",
        web::post().to(logout::backchannel_logout),
    )
    .route("/register", web::get().to(register::register_page))
    .route("/register", web::post().to(register::register_submit))
    .route("/token", web::get().to(token::token_page))
    .route("/api/token", web::post().to(token::issue_token))
    .route("/api/me", web::get().to(api::me))
    .route("/admin", web::get().to(admin::dashboard))
    .route("/admin/users", web::get().to(admin::users))
    .route("/admin/users/{id}", web::get().to(admin::user_detail))
    .route(
        "/admin/users/{id}/confirm/{action}",
        web::get().to(admin::confirm),
    )
    .route("/admin/users/{id}/{action}", web::post().to(admin::act))
    .route("/admin/audit", web::get().to(admin::audit_log))
    .route("/static/{name}", web::get().to(static_file))
    .default_service(web::to(not_found));
}

/// The static assets, compiled into the binary so it runs from any directory.
async fn static_file(name: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match name.as_str() {
        "style.css" => (
            include_str!("../../static/style.css"),
            "text/css; charset=utf-8",
        ),
        "token.js" => (
            include_str!("../../static/token.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") {
        return HttpResponse::NotFound().json(serde_json::json!({"error": {
            "code": "not_found", "message": "No such endpoint", "details": null}}));
    }
    crate::errors::not_found_page()
}
