//! Keycloak's back-channel logout endpoint.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::domain::audit::AuditContext;
use crate::domain::backchannel::{end_sessions, reconcile_later, BackchannelError};
use crate::web::response::NO_STORE;
use crate::web::AppState;

#[derive(Deserialize)]
pub(crate) struct BackchannelForm {
    logout_token: Option<String>,
}

/// The OAuth-style error body Keycloak reads from a refused logout call.
fn backchannel_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(NO_STORE)
        .json(json!({"error": error, "error_description": description}))
}

/// POST /logout/backchannel: Keycloak says a session (`sid`) or all of a user's sessions (`sub`)
/// ended. Deletes the matching rows of the shared session store, so every keygate instance stops
/// honouring them on the next request.
pub(crate) async fn backchannel_logout(
    ctx: AuditContext,
    state: web::Data<AppState>,
    form: web::Form<BackchannelForm>,
) -> HttpResponse {
    let bad =
        |description| backchannel_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    let Some(token) = form.logout_token.as_deref().filter(|t| !t.is_empty()) else {
        return bad("logout_token is required");
    };
    let claims = match state.logout_tokens.verify(token).await {
        Ok(c) => c,
        Err(e) => {
            let why = crate::util::for_log(&e.to_string(), 300);
            log::warn!("rejected a back-channel logout token: {why}");
            return bad("invalid logout_token");
        }
    };
    if let Some(sub) = &claims.sub {
        state.access_tokens.forget_subject(sub);
    }
    let by_sid = claims.sid.is_some();
    match end_sessions(&state.pool, &state.revocations, &ctx, claims).await {
        Ok(ended) => {
            log::info!("back-channel logout ended {} session(s)", ended.sessions);
            if let (true, Some((user_id, sub))) = (by_sid, ended.user) {
                reconcile_later(
                    state.pool.clone(),
                    state.admin.clone(),
                    state.revocations.clone(),
                    user_id,
                    sub,
                );
            }
            HttpResponse::Ok().insert_header(NO_STORE).finish()
        }
        Err(BackchannelError::Replayed) => {
            log::warn!("refused a replayed back-channel logout token");
            bad("logout_token was used before")
        }
        Err(BackchannelError::Db(e)) => {
            log::error!("back-channel logout could not delete sessions: {e}");
            backchannel_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "sessions could not be ended",
            )
        }
    }
}
