//! Logout: the confirm page, RP-initiated logout, and Keycloak's back-channel logout.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse, ResponseError};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use crate::db;
use crate::errors::unexpected_page;
use crate::models::audit::{self, Audit, AuditContext, AuditKind};
use crate::models::session_row;
use crate::models::social_account::{SocialAccount, KEYCLOAK};
use crate::oidc::jwt_payload;
use crate::session::TypedSession;
use crate::signin::removal_cookie;
use crate::startup::AppState;
use diesel::Connection;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    csrf_token: &'a str,
}

/// GET /logout: a confirm page (a GET must not end a session: links and prefetchers follow GETs).
pub async fn logout_page(session: TypedSession) -> HttpResponse {
    if session.auth().is_none() {
        return see_other("/");
    }
    let token = match session.csrf_token() {
        Ok(t) => t,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    crate::errors::page(StatusCode::OK, &LogoutPage { csrf_token: &token })
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

/// POST /logout: ends the local session, revokes the refresh token, and sends the browser to
/// Keycloak's end-session endpoint, which comes back to the home page.
pub async fn logout(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    if let Err(e) = session.check_csrf(&form.csrf_token) {
        return e.error_response();
    }
    let auth = session.auth();
    session.sign_out();
    let mut home = state.public_url.clone();
    home.set_path("/");
    home.set_query(Some("signed_out=1"));
    let Some(auth) = auth else {
        return see_other(home.as_str());
    };
    if let Some(sub) = jwt_payload(&auth.tokens.access_token)
        .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from))
    {
        state.tokens.forget_subject(&sub);
    }
    let mut keycloak_reachable = true;
    if let Some(refresh) = &auth.tokens.refresh_token {
        if let Err(e) = state.oidc.revoke_refresh_token(refresh).await {
            log::warn!("could not revoke the refresh token at logout: {e}");
            keycloak_reachable = !matches!(e, crate::oidc::OidcError::Unavailable(_));
        }
    }
    log::info!("user {} signed out", auth.user_id);
    let user_id = auth.user_id;
    let logged = db::run(&state.pool, move |conn| {
        let event = Audit {
            kind: AuditKind::Logout,
            user_id: Some(user_id),
            actor_id: None,
            detail: "signed out",
        };
        Ok(audit::record(conn, &ctx, &event)?)
    })
    .await;
    if let Err(e) = logged {
        log::error!("could not write the audit log: {e}");
    }
    // With Keycloak down, sending the browser there would end on a browser error page; the local
    // session is over either way.
    let end_session = if keycloak_reachable {
        state
            .oidc
            .end_session_url(auth.tokens.id_token.as_deref(), home.as_str())
            .await
    } else {
        None
    };
    let target = end_session
        .map(|u| u.to_string())
        .unwrap_or_else(|| home.to_string());
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(removal_cookie(&state))
        .finish()
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

#[derive(Deserialize)]
pub struct BackchannelForm {
    logout_token: Option<String>,
}

fn backchannel_error(description: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"error": "invalid_request", "error_description": description}))
}

/// POST /logout/backchannel: Keycloak says a session (`sid`) or all of a user's sessions (`sub`)
/// ended. Deletes the matching rows of the shared session store, so every keygate instance stops
/// honouring them on the next request.
pub async fn backchannel_logout(
    ctx: AuditContext,
    state: web::Data<AppState>,
    form: web::Form<BackchannelForm>,
) -> HttpResponse {
    let Some(token) = form.logout_token.as_deref().filter(|t| !t.is_empty()) else {
        return backchannel_error("logout_token is required");
    };
    let claims = match state.tokens.verify_logout_token(&state.oidc, token).await {
        Ok(c) => c,
        Err(e) => {
            log::warn!("rejected a back-channel logout token: {e}");
            return backchannel_error("invalid logout_token");
        }
    };
    if let Some(sub) = &claims.sub {
        state.tokens.forget_subject(sub);
    }
    let result = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let user_id = match &claims.sub {
                Some(sub) => SocialAccount::find(conn, KEYCLOAK, sub)?.map(|a| a.user_id),
                None => None,
            };
            let ended = match (&claims.sid, user_id) {
                (Some(sid), _) => session_row::delete_by_kc_sid(conn, sid)?,
                (None, Some(user_id)) => session_row::delete_by_user(conn, user_id)?,
                (None, None) => 0,
            };
            let detail = format!("Keycloak ended the session; {ended} keygate session(s) deleted");
            let event = Audit {
                kind: AuditKind::BackchannelLogout,
                user_id,
                actor_id: None,
                detail: &detail,
            };
            audit::record(conn, &ctx, &event)?;
            Ok(ended)
        })
    })
    .await;
    match result {
        Ok(n) => {
            log::info!("back-channel logout ended {n} session(s)");
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        Err(e) => {
            log::error!("back-channel logout could not delete sessions: {e}");
            HttpResponse::build(StatusCode::INTERNAL_SERVER_ERROR)
                .insert_header(("Cache-Control", "no-store"))
                .json(json!({"error": "server_error"}))
        }
    }
}
