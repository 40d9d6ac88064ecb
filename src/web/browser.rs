//! The browser path of authentication: the server-side session, the TOKEN cookie set with it,
//! the refresh of an expired session token, and [`BrowserViews`], which remembers for a moment
//! who a signed-in browser is so that its next requests skip the work.
//!
//! A view is used for at most [`VIEW_TTL`], only while the session's access token is fresh, its
//! idle and absolute limits are not reached and no last-seen write is due, and never once the
//! revocation list names its login, Keycloak session or subject (so a session ended here is
//! refused at once, one ended elsewhere within the list's reload interval). A view is never the
//! input of a refresh: a stale token always goes the full way, to the leased refresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use serde_json::Value;

use super::auth::{finish, user_for_claims, validate, AuthSource, Authenticated, Failure};
use super::client::audit_context;
use super::cookies::{removal_cookie, set_on_response, token_cookie};
use super::AppState;
use crate::domain::revocations::Revocations;
use crate::domain::user_cache::UserSnapshot;
use crate::idp::{unverified, AccessClaims, Unavailable};
use crate::session::refresh::{fresh_enough, is_fresh};
use crate::session::{AuthSession, RefreshError, SessionLimits, TypedSession};
use crate::util::now;

/// Longest a view is used before the browser's session is read again.
const VIEW_TTL: Duration = Duration::from_secs(2);
/// Views kept before stale ones are swept.
const CAPACITY: usize = 20_000;

/// Who a signed-in browser was at its last full check.
struct View {
    snapshot: Arc<UserSnapshot>,
    claims: Arc<Value>,
    access_token: Arc<str>,
    auth: AuthSession,
    made: Instant,
}

/// Views by session cookie value (an encrypted random key: it names one session).
#[derive(Default)]
pub(crate) struct BrowserViews {
    map: Mutex<HashMap<String, View>>,
}

impl BrowserViews {
    fn get(
        &self,
        cookie: &str,
        revocations: &Revocations,
        limits: &SessionLimits,
    ) -> Option<(Arc<UserSnapshot>, Arc<Value>, Arc<str>)> {
        let map = self.map.lock().ok()?;
        let view = map.get(cookie)?;
        let a = &view.auth;
        let t = now();
        let usable = view.made.elapsed() < VIEW_TTL
            && is_fresh(a)
            && limits.expires_at(Some(a)) > t
            && t - a.last_seen_at < limits.touch_every()
            && !revocations.session_revoked(
                &a.login_id,
                a.kc_sid.as_deref(),
                a.sub.as_deref(),
                a.signed_in_at,
            );
        usable.then(|| {
            (
                view.snapshot.clone(),
                view.claims.clone(),
                view.access_token.clone(),
            )
        })
    }

    fn put(
        &self,
        cookie: &str,
        snapshot: Arc<UserSnapshot>,
        claims: Arc<Value>,
        auth: AuthSession,
    ) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            map.retain(|_, v| v.made.elapsed() < VIEW_TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        let access_token: Arc<str> = Arc::from(auth.tokens.access_token.as_str());
        map.insert(
            cookie.to_string(),
            View {
                snapshot,
                claims,
                access_token,
                auth,
                made: Instant::now(),
            },
        );
    }
}

/// The user of a browser's session (and TOKEN cookie), refreshed at Keycloak when the session's
/// token expired.
pub(super) async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Authenticated, Failure> {
    let session_cookie = req.cookie(state.cookies.session);
    if let Some(cookie) = &session_cookie {
        let hit = state
            .browsers
            .get(cookie.value(), &state.revocations, &state.session_limits);
        crate::util::metrics::cache("browsers", hit.is_some());
        if let Some((snapshot, claims, token)) = hit {
            // The TOKEN cookie counts when it is the session's own token.
            let source = match req.cookie(state.cookies.token) {
                Some(t) if t.value() == &*token => AuthSource::Cookie,
                _ => AuthSource::Session,
            };
            let mut found = finish(snapshot.user.clone(), source, Some(claims))?;
            found.accounts = Some(snapshot);
            return Ok(found);
        }
    }

    // The full way. The TOKEN cookie counts only while its session lives, so a logout (here, in
    // Keycloak through back-channel logout, or by an admin) ends cookie access at once.
    let session = TypedSession::from_request(req, &mut Payload::None)
        .await
        .map_err(|e| Failure::Internal(anyhow::anyhow!("session: {e}")))?;
    let Some(mut auth) = session.auth() else {
        if req.cookie(state.cookies.token).is_some() {
            log::debug!("TOKEN cookie without a live session (signed out?): ignored");
        }
        return Err(Failure::Missing);
    };
    if let Some(found) = from_token_cookie(state, req, &session, &mut auth, &session_cookie).await?
    {
        return Ok(found);
    }
    let snapshot = state
        .users
        .load_by_id(&state.pool, auth.user_id)
        .await
        .map_err(|e| Failure::Internal(e.into()))?
        .ok_or(Failure::Missing)?;
    let mut found = finish(snapshot.user.clone(), AuthSource::Session, None)?;
    found.accounts = Some(snapshot.clone());
    match session_token(state, req, &session, auth).await? {
        Ok((claims, used)) => {
            if let Some(claims) = &claims {
                remember(state, &session_cookie, &snapshot, claims, &used);
            }
            found.claims = claims;
        }
        Err(unavailable) => found.roles_unavailable = Some(unavailable),
    }
    Ok(found)
}

/// The TOKEN cookie's way: a valid, live token of the session's own subject and user. `None`
/// leaves the request to the session's own token (the cookie expired, is someone else's, or
/// cannot be checked right now).
async fn from_token_cookie(
    state: &AppState,
    req: &HttpRequest,
    session: &TypedSession,
    auth: &mut AuthSession,
    session_cookie: &Option<actix_web::cookie::Cookie<'static>>,
) -> Result<Option<Authenticated>, Failure> {
    let Some(cookie) = req.cookie(state.cookies.token) else {
        return Ok(None);
    };
    let claims = match validate(state, cookie.value()).await {
        // keygate's own token counts as expired at its `exp` (no leeway), and one about to
        // expire is refreshed by the caller rather than used.
        Ok(claims) if !live(&claims) => {
            log::debug!("TOKEN cookie expires: refreshing");
            return Ok(None);
        }
        Ok(claims) if state.revocations.token_revoked(&claims.claims) => {
            log::debug!("TOKEN cookie of a session that was logged out: ignored");
            return Ok(None);
        }
        // Another subject's token (planted from a sibling subdomain?) is never looked up, let
        // alone provisioned: only the session's own subject counts.
        Ok(claims) if auth.sub.as_deref() != Some(claims.sub.as_str()) => {
            log::warn!("TOKEN cookie of another subject than the session's: ignored");
            return Ok(None);
        }
        Ok(claims) => claims,
        // Expired or unusable, or keys out of reach: the session still knows the user.
        Err(Failure::Invalid(e)) => {
            log::debug!("TOKEN cookie not usable: {e}");
            return Ok(None);
        }
        Err(Failure::Unavailable(why)) => {
            log::warn!("cannot check the TOKEN cookie ({why}); using the session");
            return Ok(None);
        }
        Err(other) => return Err(other),
    };
    let snapshot = user_for_claims(state, &claims.sub, claims.claims.clone()).await?;
    if snapshot.user.id != auth.user_id {
        log::warn!("TOKEN cookie and session name different users: using the session");
        return Ok(None);
    }
    session.touch(auth, &state.session_limits);
    if cookie.value() == auth.tokens.access_token {
        remember(state, session_cookie, &snapshot, &claims.claims, auth);
    }
    let mut found = finish(
        Arc::clone(&snapshot.user),
        AuthSource::Cookie,
        Some(Arc::clone(&claims.claims)),
    )?;
    found.accounts = Some(snapshot);
    Ok(Some(found))
}

/// Keeps a view of a browser whose session just passed the full check.
fn remember(
    state: &AppState,
    cookie: &Option<actix_web::cookie::Cookie<'static>>,
    snapshot: &Arc<UserSnapshot>,
    claims: &Arc<Value>,
    auth: &AuthSession,
) {
    if let Some(cookie) = cookie {
        state.browsers.put(
            cookie.value(),
            snapshot.clone(),
            claims.clone(),
            auth.clone(),
        );
    }
}

/// True while a validated TOKEN cookie may be used as it is: not expired and not inside the
/// freshness margin that [`session_token`] refreshes at.
fn live(claims: &AccessClaims) -> bool {
    let iat = claims
        .claims
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    fresh_enough(iat, claims.exp)
}

/// An access token's claims, when it has readable ones.
type Claims = Option<Arc<Value>>;

/// The claims of the session's access token, refreshed at Keycloak (under the lease) first when
/// it has expired or is about to: Keycloak's answer to the refresh is how keygate learns that a
/// user was disabled, lost a role or was signed out there. The token came straight from
/// Keycloak's token endpoint, so its claims are used without verifying it again.
///
/// Returns the claims and the session's state they came from; `Ok(Err(_))` when Keycloak cannot
/// be reached: the caller knows the user but no role.
async fn session_token(
    state: &AppState,
    req: &HttpRequest,
    session: &TypedSession,
    auth: AuthSession,
) -> Result<Result<(Claims, AuthSession), Unavailable>, Failure> {
    let mut auth = if is_fresh(&auth) {
        auth
    } else {
        match state
            .refresher
            .fresh_tokens(&auth, false, &audit_context(req))
            .await
        {
            Ok(fresh) => {
                let cookie = token_cookie(state.cookies, &fresh.tokens.access_token, fresh.user_id);
                set_on_response(req, cookie);
                fresh
            }
            Err(RefreshError::Ended(why)) => return Err(end(state, req, session, why)),
            Err(RefreshError::Gone) => {
                return Err(end(state, req, session, "the session was ended".into()))
            }
            Err(RefreshError::Unavailable(u)) => {
                log::warn!("cannot refresh the session of user {}: {u}", auth.user_id);
                let mut auth = auth;
                session.touch(&mut auth, &state.session_limits);
                return Ok(Err(u));
            }
            Err(RefreshError::Db(e)) => return Err(Failure::Internal(e.into())),
            Err(RefreshError::Unexpected(e)) => return Err(Failure::Internal(e)),
        }
    };
    session.touch(&mut auth, &state.session_limits);
    let claims = unverified::claims(&auth.tokens.access_token).map(Arc::new);
    Ok(Ok((claims, auth)))
}

/// The session is over at Keycloak: sign the browser out here too (the refresher already
/// deleted the row and wrote the audit event).
fn end(state: &AppState, req: &HttpRequest, session: &TypedSession, why: String) -> Failure {
    log::info!("session ended at refresh: {why:?}");
    session.sign_out();
    set_on_response(req, removal_cookie(state.cookies));
    Failure::Ended(why)
}
