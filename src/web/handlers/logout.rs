//! Logout: the confirm page and RP-initiated logout.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::domain::audit::{Audit, AuditContext, AuditKind};
use crate::domain::revocations::Revoke;
use crate::idp::{unverified, GrantError};
use crate::session::TypedSession;
use crate::web::cookies::removal_cookie;
use crate::web::csrf::{CsrfForm, CsrfOnly};
use crate::web::response::{page, see_other, with_cookie, with_csrf};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    csrf_token: &'a str,
}

/// GET /logout: a confirm page (a GET must not end a session: links and prefetchers follow GETs).
pub(crate) async fn logout_page(session: TypedSession) -> HttpResponse {
    if session.auth().is_none() {
        return see_other("/");
    }
    with_csrf(&session, |csrf_token| {
        page(StatusCode::OK, &LogoutPage { csrf_token })
    })
}

/// POST /logout: ends the local session, revokes the refresh token, and sends the browser to
/// Keycloak's end-session endpoint, which comes back to the home page.
pub(crate) async fn logout(
    ctx: AuditContext,
    state: web::Data<AppState>,
    session: TypedSession,
    _form: CsrfForm<CsrfOnly>,
) -> HttpResponse {
    let auth = session.auth();
    session.sign_out();
    let mut home = state.public_url.clone();
    home.set_path("/");
    home.set_query(Some("signed_out=1"));
    let Some(auth) = auth else {
        return see_other(home.as_str());
    };
    // The token came from Keycloak's token endpoint; its subject only says which cache entries
    // to drop.
    if let Some(sub) = unverified::claims(&auth.tokens.access_token)
        .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(String::from))
    {
        state.access_tokens.forget_subject(&sub);
    }
    let mut keycloak_reachable = true;
    if let Some(refresh) = &auth.tokens.refresh_token {
        if let Err(e) = state.grants.revoke_refresh_token(refresh).await {
            log::warn!("could not revoke the refresh token at logout: {e}");
            keycloak_reachable = !matches!(e, GrantError::Unavailable(_));
        }
    }
    log::info!("user {} signed out", auth.user_id);
    let mut ended = vec![Revoke::login(&auth.login_id)];
    ended.extend(auth.kc_sid.as_deref().map(Revoke::sid));
    state.revocations.revoke(&state.pool, ended).await;
    Audit::new(AuditKind::Logout, Some(auth.user_id), "signed out")
        .write(&state.pool, &ctx)
        .await;
    // With Keycloak down, sending the browser there would end on a browser error page; the local
    // session is over either way.
    let end_session = if keycloak_reachable {
        state
            .grants
            .end_session_url(auth.tokens.id_token.as_deref(), home.as_str())
            .await
    } else {
        None
    };
    let target = end_session.unwrap_or(home);
    with_cookie(see_other(target.as_str()), &removal_cookie(state.cookies))
}
