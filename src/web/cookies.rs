//! The TOKEN cookie, which carries the access token for the UI (seed 000).

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

/// The cookies keygate sets, named for the scheme it is served on. On https the names carry the
/// `__Host-` prefix: browsers then accept them only with `Secure`, `Path=/` and no `Domain`, so a
/// sibling subdomain or a plain-http page cannot plant or overwrite them. On http (loopback
/// development) they keep their plain names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cookies {
    /// The session cookie (a random key; the state is in the database).
    pub session: &'static str,
    /// The cookie that carries the access token for the UI (seed 000).
    pub token: &'static str,
    pub secure: bool,
}

impl Cookies {
    /// The names for a session cookie scoped to a parent domain (`KEYGATE_COOKIE_DOMAIN`):
    /// `__Host-` forbids a `Domain`, so on https the session cookie takes `__Secure-` (still
    /// Secure-only); the TOKEN cookie stays host-only.
    pub(crate) fn for_domain(secure: bool) -> Self {
        Cookies {
            session: if secure {
                "__Secure-keygate_session"
            } else {
                "keygate_session"
            },
            ..Self::for_https(secure)
        }
    }

    pub(crate) fn for_https(secure: bool) -> Self {
        if secure {
            Cookies {
                session: "__Host-keygate_session",
                token: "__Host-TOKEN",
                secure,
            }
        } else {
            Cookies {
                session: "keygate_session",
                token: "TOKEN",
                secure,
            }
        }
    }
}
/// Browsers drop cookies over 4096 bytes (name, value and attributes); stay clear of it.
const MAX_TOKEN_COOKIE: usize = 3800;

/// The TOKEN cookie for `access_token`: HttpOnly, SameSite=Lax, Path=/, Secure on https, and no
/// Max-Age, so it ends with the browser session like the session cookie. A token too large for a
/// cookie (many roles or groups) yields a removal cookie instead; the user is then served from the
/// server-side session, and the log says why.
pub(crate) fn token_cookie(names: Cookies, access_token: &str, user_id: i64) -> Cookie<'static> {
    if access_token.len() > MAX_TOKEN_COOKIE {
        log::warn!(
            "access token of user {user_id} is {} bytes, too large for the TOKEN cookie (limit \
             {MAX_TOKEN_COOKIE}): serving this user from the server-side session only; trim the \
             roles, groups or mappers in the token to restore the cookie",
            access_token.len(),
        );
        return removal_cookie(names);
    }
    base(names, access_token.to_string())
}

/// A cookie that deletes TOKEN.
pub(crate) fn removal_cookie(names: Cookies) -> Cookie<'static> {
    let mut c = base(names, String::new());
    c.make_removal();
    c
}

fn base(names: Cookies, value: String) -> Cookie<'static> {
    Cookie::build(names.token, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(names.secure)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_scoped_session_cookie_trades_host_for_secure_on_https() {
        assert_eq!(Cookies::for_https(true).session, "__Host-keygate_session");
        assert_eq!(
            Cookies::for_domain(true).session,
            "__Secure-keygate_session"
        );
        assert_eq!(
            Cookies::for_domain(true).token,
            "__Host-TOKEN",
            "TOKEN stays host-only"
        );
        assert_eq!(Cookies::for_domain(false).session, "keygate_session");
    }

    #[test]
    fn on_https_both_cookies_are_host_prefixed_and_secure() {
        let names = Cookies::for_https(true);
        assert_eq!(
            (names.session, names.token),
            ("__Host-keygate_session", "__Host-TOKEN")
        );
        let c = token_cookie(names, "t", 1);
        assert_eq!(c.name(), "__Host-TOKEN");
        assert_eq!(
            (c.secure(), c.path(), c.domain()),
            (Some(true), Some("/"), None)
        );
        let plain = token_cookie(Cookies::for_https(false), "t", 1);
        assert_eq!((plain.name(), plain.secure()), ("TOKEN", Some(false)));
    }
}
