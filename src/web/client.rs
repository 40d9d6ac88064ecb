//! Who sent a request, as the audit log and the rate limits see it.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use super::AppState;
use crate::domain::audit::AuditContext;

/// The client as the request shows it: the peer address, or, when keygate sits behind a reverse
/// proxy it trusts (`KEYGATE_TRUST_FORWARDED`), the address the proxy reports.
pub(crate) fn audit_context(req: &HttpRequest) -> AuditContext {
    let trust_forwarded = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.trust_forwarded);
    let ip = if trust_forwarded {
        req.connection_info()
            .realip_remote_addr()
            .map(|a| a.chars().take(64).collect())
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    };
    AuditContext {
        ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(300).collect()),
    }
}

impl FromRequest for AuditContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(audit_context(req)))
    }
}
