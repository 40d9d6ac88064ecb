//! Every route of keygate, registered in one place; the admin pages as one gated scope.

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::admin_gate::admin_gate;
use super::handlers::{
    account, admin, api, backchannel, forward_auth, home, login, logout, ops, password, register,
    site, token,
};
use super::response::{error_page, is_api};

/// The paths keygate's routes take: each one and everything below it (`/` only itself). An
/// application's mount point must not overlap any of them; keep this in step with the table
/// below (a test requests each one).
pub const RESERVED: &[&str] = &[
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/auth",
    "/login",
    "/logout",
    "/register",
    "/token",
    "/api/token",
    "/api/me",
    "/account",
    "/admin",
    "/static",
];

/// keygate's routes. With `proxy` (reverse-proxy mode), `/` and every unknown path go to the
/// upstream instead of keygate's home page and 404.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, proxy: bool) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _req| {
        let response = error_page(
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
                let response = if is_api(req) || req.path() == "/logout/backchannel" {
                    HttpResponse::BadRequest().json(json!({
                        "error": "invalid_request", "error_description": "unreadable form body"}))
                } else {
                    error_page(
                        actix_web::http::StatusCode::BAD_REQUEST,
                        "Bad request",
                        "The form could not be read. Go back and try again.",
                    )
                };
                actix_web::error::InternalError::from_response(err, response).into()
            }),
    )
    .app_data(web::PathConfig::default().error_handler(|err, req| {
        let response = site::not_found_for(req);
        actix_web::error::InternalError::from_response(err, response).into()
    }))
    .route("/healthz", web::get().to(site::health))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/metrics", web::get().to(ops::metrics))
    .route("/auth", web::get().to(forward_auth::check))
    .route("/login", web::get().to(login::login_page))
    .route(
        "/login/keycloak",
        web::get().to(login::start_keycloak_login),
    )
    .route("/login/callback", web::get().to(login::callback))
    .route("/login/password", web::post().to(password::password_login))
    .route("/logout", web::get().to(logout::logout_page))
    .route("/logout", web::post().to(logout::logout))
    .route(
        "/logout/backchannel",
        web::post().to(backchannel::backchannel_logout),
    )
    .route("/register", web::get().to(register::register_page))
    .route("/register", web::post().to(register::register_submit))
    .route("/token", web::get().to(token::token_page))
    .route("/api/token", web::post().to(token::issue_token))
    .route("/api/me", web::get().to(api::me))
    .route("/account/sessions", web::get().to(account::sessions_page))
    .route(
        "/account/sessions/end-all",
        web::post().to(account::end_all),
    )
    .route(
        "/account/sessions/{login}/end",
        web::post().to(account::end_one),
    )
    .service(
        web::scope("/admin")
            .wrap(from_fn(admin_gate))
            .route("", web::get().to(admin::dashboard))
            .route("/users", web::get().to(admin::users))
            .route("/users/{id}", web::get().to(admin::user_detail))
            .route(
                "/users/{id}/confirm/{action}",
                web::get().to(admin::confirm),
            )
            .route("/users/{id}/{action}", web::post().to(admin::act))
            .route("/audit", web::get().to(admin::audit_log)),
    )
    .route("/static/{name}", web::get().to(site::static_file));
    if proxy {
        cfg.default_service(web::to(super::proxy::forward));
    } else {
        cfg.route("/", web::get().to(home::home))
            .default_service(web::to(site::not_found));
    }
}
