//! The UI's access token: the token page and `POST /api/token` (login-from-cookie).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::domain::next_url::NextUrl;
use crate::session::refresh::is_fresh;
use crate::session::{RefreshError, TypedSession};
use crate::store::User;
use crate::util::now;
use crate::web::auth::Authenticated;
use crate::web::client::audit_context;
use crate::web::cookies::token_cookie;
use crate::web::response::{page, ApiError, NO_STORE};
use crate::web::AppState;

/// Least time between two forced refreshes of one session.
const FORCED_REFRESH_EVERY_SECS: i64 = 5;

/// The processes `POST /api/token` knows.
const PROCESSES: &[&str] = &["login-from-cookie"];

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    username: String,
}

/// GET /token: a page whose script fetches the access token and shows who it is for.
pub(crate) async fn token_page(auth: Authenticated) -> HttpResponse {
    page(
        actix_web::http::StatusCode::OK,
        &TokenPage {
            username: auth.user.username.clone(),
        },
    )
}

#[derive(Deserialize)]
struct TokenRequest {
    process: Option<String>,
    /// Ask for a newly refreshed token even if the current one is still valid.
    #[serde(default)]
    fresh: Option<FreshFlag>,
}

/// `fresh` arrives as a JSON boolean or as a form string.
#[derive(Deserialize)]
#[serde(untagged)]
enum FreshFlag {
    Bool(bool),
    Text(String),
}

impl FreshFlag {
    fn is_set(&self) -> bool {
        match self {
            FreshFlag::Bool(b) => *b,
            FreshFlag::Text(t) => matches!(t.as_str(), "1" | "true" | "yes" | "on"),
        }
    }
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
}

/// POST /api/token with `process=login-from-cookie` (JSON or form): the access token of this
/// browser's session, refreshed at Keycloak when it has expired.
pub(crate) async fn issue_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: TypedSession,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    refuse_cross_site(&req, &state)?;
    let request = parse_request(&req, &body)?;
    match request.process.as_deref() {
        Some("login-from-cookie") => {}
        other => {
            return Err(ApiError::BadRequest {
                code: "invalid_process",
                message: format!(
                    "unknown process {:?}; accepted values: {}",
                    other.unwrap_or(""),
                    PROCESSES.join(", ")
                ),
            })
        }
    }
    let asked = request.fresh.as_ref().is_some_and(FreshFlag::is_set);
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok());
    let login_url = state.login_url(&NextUrl::from_referer(&state.public_url, referer));
    let unauthorized = |reason: &str| ApiError::AuthRedirect {
        login_url: login_url.clone(),
        reason: reason.to_string(),
    };

    // Only the session's own tokens are handed out, never what a TOKEN cookie says: a cookie can
    // be planted (from a sibling subdomain, or by an application proxied under this origin) to
    // make the victim's UI work as the attacker. A session ended by a logout (here or in
    // Keycloak) stops handing out tokens at once.
    let Some(auth) = session.auth() else {
        return Err(unauthorized("token request without a session"));
    };
    // A forced refresh costs Keycloak a token and the audit log a row: one per session every
    // few seconds, however often a UI asks.
    let force = asked && now() - auth.tokens.access_issued_at >= FORCED_REFRESH_EVERY_SECS;
    if asked && !force {
        log::debug!("forced refresh of user {} throttled", auth.user_id);
    }
    let user = active_user(&state, auth.user_id)
        .await?
        .ok_or_else(|| unauthorized("session user no longer exists"))?;

    if !force && is_fresh(&auth) {
        let cookie = token_cookie(state.cookies, &auth.tokens.access_token, user.id);
        return Ok(token_response(
            &auth.tokens.access_token,
            auth.tokens.access_expires_at,
            Some(cookie),
        ));
    }
    let ctx = audit_context(&req);
    let refreshed = match state.refresher.fresh_tokens(&auth, force, &ctx).await {
        Ok(a) => a,
        Err(e) => return Err(refresh_failed(e, &session, unauthorized)),
    };
    let cookie = token_cookie(state.cookies, &refreshed.tokens.access_token, user.id);
    Ok(token_response(
        &refreshed.tokens.access_token,
        refreshed.tokens.access_expires_at,
        Some(cookie),
    ))
}

fn refresh_failed(
    e: RefreshError,
    session: &TypedSession,
    unauthorized: impl Fn(&str) -> ApiError,
) -> ApiError {
    match e {
        RefreshError::Ended(why) => {
            log::info!("refresh failed, session ended: {why:?}");
            session.sign_out();
            unauthorized("the Keycloak session has ended")
        }
        RefreshError::Gone => {
            session.sign_out();
            unauthorized("the session was ended")
        }
        RefreshError::Unavailable(why) => ApiError::Unavailable(why),
        RefreshError::Db(e) => ApiError::from(e),
        RefreshError::Unexpected(e) => ApiError::Unexpected(e),
    }
}

/// The session's user, from the user cache as the other browser requests take it.
async fn active_user(state: &AppState, user_id: i64) -> Result<Option<Arc<User>>, ApiError> {
    match state.users.load_by_id(&state.pool, user_id).await? {
        Some(s) if !s.user.is_active => {
            Err(ApiError::Forbidden("This account is deactivated.".into()))
        }
        other => Ok(other.map(|s| s.user.clone())),
    }
}

fn token_response(
    access_token: &str,
    expires_at: i64,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    response.insert_header(NO_STORE);
    if let Some(c) = cookie {
        response.cookie(c);
    }
    response.json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: (expires_at - now()).max(0),
    })
}

/// The endpoint turns a cookie into a token, so it must not answer other sites. Browsers say
/// where a request comes from (`Origin` on every cross-origin POST, `Sec-Fetch-Site` in all
/// current ones); a request that says it is cross-site is refused. Clients that are not browsers
/// (curl, the tests) send neither and hold the cookie themselves.
fn refuse_cross_site(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            log::warn!("refused a {site:?} token request");
            return Err(ApiError::Forbidden(
                "cross-site token requests are refused".into(),
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ours = state.public_url.origin().ascii_serialization();
        if origin.to_str().ok() != Some(ours.as_str()) {
            log::warn!("refused a token request from origin {origin:?}");
            return Err(ApiError::Forbidden(
                "cross-site token requests are refused".into(),
            ));
        }
    }
    Ok(())
}

fn parse_request(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bad = |why: String| ApiError::BadRequest {
        code: "invalid_request",
        message: format!(
            "{why}; send JSON {{\"process\": \"login-from-cookie\"}} or the same as a form"
        ),
    };
    if content_type.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|e| bad(format!("unreadable JSON ({e})")))
    } else if content_type.starts_with("application/x-www-form-urlencoded") || body.is_empty() {
        serde_urlencoded::from_bytes(body).map_err(|e| bad(format!("unreadable form ({e})")))
    } else {
        Err(bad(format!("unsupported content type {content_type:?}")))
    }
}
