//! The signed-in user's own sessions: the list, and signing one or all of them out.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::admin::fmt_time;
use crate::domain::audit::AuditContext;
use crate::domain::own_sessions::{self, Which};
use crate::session::{sessions_of_user, TypedSession};
use crate::store::social_accounts::KEYCLOAK;
use crate::store::{self, SocialAccount};
use crate::web::auth::Authenticated;
use crate::web::cookies::removal_cookie;
use crate::web::csrf::{CsrfForm, CsrfOnly};
use crate::web::response::{
    error_page_with_retry, page, see_other, unexpected_page, with_cookie, with_csrf,
};
use crate::web::AppState;

/// `?done=one` after a session was signed out.
#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// One row of the list.
struct SessionRow {
    login_id: String,
    signed_in: String,
    last_seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account/sessions.html")]
struct SessionsPage<'a> {
    username: &'a str,
    sessions: Vec<SessionRow>,
    csrf_token: &'a str,
    notice: Option<&'static str>,
}

/// GET /account/sessions: every open session of the user, this one marked.
pub(crate) async fn sessions_page(
    auth: Authenticated,
    state: web::Data<AppState>,
    session: TypedSession,
    query: web::Query<DoneQuery>,
) -> HttpResponse {
    let list = match sessions_of_user(&state.pool, auth.user.id).await {
        Ok(l) => l,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    let current = session.auth().map(|a| a.login_id);
    let sessions = list
        .into_iter()
        .map(|s| SessionRow {
            current: current.as_deref() == Some(s.login_id.as_str()),
            signed_in: fmt_time(s.signed_in_at),
            last_seen: fmt_time(s.last_seen_at),
            ip: s.ip.unwrap_or_default(),
            user_agent: s.user_agent.unwrap_or_default(),
            login_id: s.login_id,
        })
        .collect();
    let notice = query
        .done
        .as_deref()
        .filter(|d| *d == "one")
        .map(|_| "The session was signed out.");
    with_csrf(&session, |csrf_token| {
        let list = SessionsPage {
            username: &auth.user.username,
            sessions,
            csrf_token,
            notice,
        };
        page(StatusCode::OK, &list)
    })
}

/// POST /account/sessions/{login}/end: signs one other session of the user out, here and (by
/// revoking its refresh token) at Keycloak.
pub(crate) async fn end_one(
    auth: Authenticated,
    ctx: AuditContext,
    state: web::Data<AppState>,
    path: web::Path<String>,
    _form: CsrfForm<CsrfOnly>,
) -> HttpResponse {
    let login_id = path.into_inner();
    let list = match sessions_of_user(&state.pool, auth.user.id).await {
        Ok(l) => l,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    let Some(target) = list.into_iter().find(|s| s.login_id == login_id) else {
        return no_such_session();
    };
    let which = Which::One {
        login_id,
        sid: target.kc_sid.clone(),
    };
    match own_sessions::end(&state.pool, &state.revocations, &ctx, auth.user.id, which).await {
        Ok(0) => return no_such_session(),
        Ok(_) => {}
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    }
    if let Some(refresh) = &target.tokens.refresh_token {
        if let Err(e) = state.grants.revoke_refresh_token(refresh).await {
            log::warn!("could not revoke an ended session's refresh token: {e}");
        }
    }
    see_other("/account/sessions?done=one")
}

/// POST /account/sessions/end-all: ends the user's Keycloak sessions (Keycloak back-channels
/// every other application of the realm) and every keygate session, this one included.
pub(crate) async fn end_all(
    auth: Authenticated,
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    _form: CsrfForm<CsrfOnly>,
) -> HttpResponse {
    let user_id = auth.user.id;
    let accounts = match store::run(&state.pool, move |c| {
        Ok(SocialAccount::for_user(c, user_id)?)
    })
    .await
    {
        Ok(a) => a,
        Err(e) => return unexpected_page(&anyhow::Error::new(e)),
    };
    let subjects: Vec<String> = accounts
        .into_iter()
        .filter(|a| a.provider == KEYCLOAK)
        .map(|a| a.uid)
        .collect();
    for sub in &subjects {
        // The local sessions end either way: a person who asks to be signed out is.
        if let Err(e) = state.admin.logout_user(sub).await {
            log::warn!("sign out everywhere: Keycloak did not end the sessions of {sub}: {e}");
        }
    }
    let which = Which::All { subjects };
    if let Err(e) = own_sessions::end(&state.pool, &state.revocations, &ctx, user_id, which).await {
        return unexpected_page(&anyhow::Error::new(e));
    }
    session.sign_out();
    with_cookie(see_other("/?signed_out=1"), &removal_cookie(state.cookies))
}

fn no_such_session() -> HttpResponse {
    error_page_with_retry(
        StatusCode::NOT_FOUND,
        "No such session",
        "That session is not one of yours, or it has ended already.",
        "/account/sessions",
        "Your sessions",
    )
}
