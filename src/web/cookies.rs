//! The TOKEN cookie, which carries the access token for the UI (seed 000).

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

/// Name of the session cookie (a random key; the state is in the database).
pub(crate) const SESSION_COOKIE: &str = "keygate_session";
/// Name of the cookie that carries the access token for the UI.
pub(crate) const TOKEN_COOKIE: &str = "TOKEN";
/// Browsers drop cookies over 4096 bytes (name, value and attributes); stay clear of it.
const MAX_TOKEN_COOKIE: usize = 3800;

/// The TOKEN cookie for `access_token`: HttpOnly, SameSite=Lax, Path=/, Secure on https, and no
/// Max-Age, so it ends with the browser session like the session cookie. A token too large for a
/// cookie (many roles or groups) yields a removal cookie instead; the user is then served from the
/// server-side session, and the log says why.
pub(crate) fn token_cookie(secure: bool, access_token: &str, user_id: i64) -> Cookie<'static> {
    if access_token.len() > MAX_TOKEN_COOKIE {
        log::warn!(
            "access token of user {user_id} is {} bytes, too large for the TOKEN cookie (limit \
             {MAX_TOKEN_COOKIE}): serving this user from the server-side session only; trim the \
             roles, groups or mappers in the token to restore the cookie",
            access_token.len(),
        );
        return removal_cookie(secure);
    }
    base(secure, access_token.to_string())
}

/// A cookie that deletes TOKEN.
pub(crate) fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut c = base(secure, String::new());
    c.make_removal();
    c
}

fn base(secure: bool, value: String) -> Cookie<'static> {
    Cookie::build(TOKEN_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish()
}

/// Cookies an extractor decided on (a refreshed TOKEN, or its removal), waiting for the response.
#[derive(Default)]
struct PendingCookies(Vec<Cookie<'static>>);

/// Sets `cookie` on this request's response, whichever handler answers it.
pub(crate) fn set_on_response(req: &HttpRequest, cookie: Cookie<'static>) {
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<PendingCookies>() {
        Some(pending) => pending.0.push(cookie),
        None => {
            extensions.insert(PendingCookies(vec![cookie]));
        }
    }
}

/// The middleware that adds what [`set_on_response`] left, unless the handler set a cookie of
/// the same name itself (its word is newer).
pub(crate) async fn carry_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let pending = res.request().extensions_mut().remove::<PendingCookies>();
    for cookie in pending.map(|p| p.0).unwrap_or_default() {
        if res.response().cookies().any(|c| c.name() == cookie.name()) {
            continue;
        }
        if let Err(e) = res.response_mut().add_cookie(&cookie) {
            log::error!("could not set the {} cookie: {e}", cookie.name());
        }
    }
    Ok(res)
}
