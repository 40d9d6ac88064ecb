//! `GET /readyz`: whether this instance should get traffic, for load balancers and orchestrators.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::store;
use crate::web::response::NO_STORE;
use crate::web::AppState;

/// `GET /metrics` on the main listener: Prometheus' text format, for clients on this machine
/// only (after the trusted-proxy rules, so a proxy on loopback does not open it to everyone);
/// 404 when `KEYGATE_METRICS_BIND` serves them on a listener of their own.
pub(crate) async fn metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    if state.settings.metrics_bind.is_some() {
        return crate::web::response::not_found_page();
    }
    let client = crate::web::client_ip(&req);
    if !client.is_some_and(|ip| ip.is_loopback()) {
        log::warn!("refused /metrics to a client that is not on this machine");
        return HttpResponse::Forbidden()
            .content_type("text/plain")
            .body("metrics are served to loopback clients only; set KEYGATE_METRICS_BIND\n");
    }
    metrics_text()
}

/// The metrics as Prometheus scrapes them.
pub(crate) fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header(NO_STORE)
        .body(crate::util::metrics::render())
}

/// 200 `ready`; 200 `degraded` while Keycloak is out of reach (sessions and bearer tokens keep
/// working from cached keys); 503 `unready` when the database does not answer through a fresh
/// connection or a migration is pending; 503 `draining` from SIGTERM on.
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let draining = state.draining.load(Ordering::Relaxed);
    let url = state.settings.database_url.clone();
    let migrations = state.migrations.clone();
    let database = tokio::task::spawn_blocking(move || store::check_ready(&url, &migrations))
        .await
        .unwrap_or_else(|_| Err("the check was cancelled".into()));
    let mut reachable = state.discovery.reachable().await;
    if reachable.is_ok() && !state.discovery.cached() {
        // A fresh instance discovers on first use; readiness is such a use.
        reachable = state.discovery.provider().await.map(|_| ());
    }
    let contact = state.discovery.contact();
    let (status, code) = match (&database, &reachable) {
        _ if draining => ("draining", 503),
        (Ok(true), Ok(())) => ("ready", 200),
        (Ok(true), Err(_)) => ("degraded", 200),
        _ => ("unready", 503),
    };
    if code == 503 && !draining {
        log::warn!("not ready: database {database:?}");
    }
    let body = json!({
        "status": status,
        "database": match &database {
            Ok(current) => json!({"ok": true, "migrations": if *current { "current" } else { "pending" }}),
            Err(e) => json!({"ok": false, "error": e}),
        },
        "identity_provider": {
            "reachable": reachable.is_ok(),
            "discovery_cached": state.discovery.cached(),
            "keys_cached": state.jwks.cached_keys(),
            "last_success": contact.last_success,
            "last_error": contact.last_error.as_ref().map(|(at, why)| json!({"at": at, "error": why})),
        },
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap_or_default())
        .insert_header(NO_STORE)
        .json(body)
}
