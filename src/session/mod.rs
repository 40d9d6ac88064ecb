//! The browser session on actix-session: the typed session, the pending login, the store on
//! keygate's database and its purger, and the leased refresh. The only code that knows the stored
//! session format.
//!
//! Uses `domain`, `store`, `idp`, `settings` and `util`; never `web`. Handlers never touch string
//! keys: they call `TypedSession`, which keeps serialized values for the pending logins, the
//! signed-in state and the CSRF token.

use std::future::{ready, Ready};

use actix_session::{Session, SessionExt};
use actix_web::{dev::Payload, FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::domain::next_url::NextUrl;
use crate::idp::{AuthRequest, TokenSet};
use crate::util::now;

mod cache;
mod format;
pub(crate) mod refresh;
pub(crate) mod store;

pub use format::auth_from_state;
pub(crate) use format::{keep_newer_tokens, state_with_auth, SessionIndex};

pub(crate) use cache::RowCache;
pub(crate) use refresh::{RefreshError, Refresher};
pub(crate) use store::{spawn_purger, spawn_session_gauge, DbSessionStore};

use format::{AUTH_KEY, CSRF_KEY, PENDING_KEY};

/// How many login attempts may be in flight at once (one per open tab, roughly).
const MAX_PENDING: usize = 5;
/// How long a login may take between leaving for Keycloak and coming back.
pub(crate) const PENDING_TTL_SECS: i64 = 600;

/// A login that left for Keycloak and has not come back yet; the callback consumes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: NextUrl,
    pub created_at: i64,
}

impl PendingLogin {
    /// The pending login of an authorization request that will come back to `next`.
    pub(crate) fn of(request: &AuthRequest, next: NextUrl) -> Self {
        PendingLogin {
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            pkce_verifier: request.pkce_verifier.clone(),
            next,
            created_at: now(),
        }
    }

    /// True when the browser took longer than [`PENDING_TTL_SECS`] to come back.
    pub(crate) fn expired(&self) -> bool {
        now() - self.created_at > PENDING_TTL_SECS
    }
}

/// Keycloak's tokens for a signed-in browser. Kept server-side only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    /// When keygate received the access token (Unix seconds; 0 in sessions from before it was
    /// kept).
    #[serde(default)]
    pub access_issued_at: i64,
    pub access_expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

impl From<TokenSet> for Tokens {
    fn from(t: TokenSet) -> Self {
        Tokens {
            access_token: t.access_token,
            access_issued_at: t.issued_at,
            access_expires_at: t.expires_at,
            refresh_token: t.refresh_token,
            id_token: t.id_token,
        }
    }
}

/// A signed-in browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthSession {
    /// Random id of this login; names the session row for refresh leases across instances.
    pub login_id: String,
    pub user_id: i64,
    /// Keycloak's session id (`sid`), for back-channel logout.
    pub kc_sid: Option<String>,
    pub tokens: Tokens,
    /// When the browser signed in (Unix seconds): the absolute limit counts from here and is
    /// never extended. 0 in sessions from before it was kept, which therefore end.
    #[serde(default)]
    pub signed_in_at: i64,
    /// The last authenticated request, written at most every `SessionLimits::touch_every()`.
    #[serde(default)]
    pub last_seen_at: i64,
    /// Keycloak's subject, so that a logout of the subject reaches this session.
    #[serde(default)]
    pub sub: Option<String>,
    /// The client at sign-in, for the user's list of their sessions.
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// How long sessions live: idle from the last authenticated request, absolute from sign-in, and
/// ten minutes for a session that never signed in (pending logins, CSRF tokens of anonymous
/// forms). State writes never extend any of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionLimits {
    pub idle: i64,
    pub max: i64,
}

impl SessionLimits {
    /// How long a session without a sign-in lives.
    pub(crate) const ANONYMOUS_SECS: i64 = 600;

    /// When a session with this sign-in (or none) ends.
    pub(crate) fn expires_at(&self, auth: Option<&AuthSession>) -> i64 {
        match auth {
            Some(a) => a
                .signed_in_at
                .saturating_add(self.max)
                .min(a.last_seen_at.saturating_add(self.idle)),
            None => now() + Self::ANONYMOUS_SECS,
        }
    }

    /// The least time between two writes of `last_seen_at`: a minute, or a quarter of the idle
    /// limit when that is shorter, so the row is not written on every request.
    pub(crate) fn touch_every(&self) -> i64 {
        (self.idle / 4).clamp(1, 60)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("session state could not be written")]
pub(crate) struct SessionWriteError;

/// A form came without this session's CSRF token.
#[derive(Debug, thiserror::Error)]
#[error("missing or wrong CSRF token")]
pub(crate) struct CsrfMismatch;

pub(crate) struct TypedSession(Session);

impl TypedSession {
    fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Option<T> {
        // A value we cannot read (old format, tampering in the store) counts as absent.
        self.0.get::<T>(key).unwrap_or_else(|e| {
            log::warn!("ignoring unreadable session value {key}: {e}");
            None
        })
    }

    fn set<T: Serialize>(&self, key: &str, value: &T) -> Result<(), SessionWriteError> {
        self.0.insert(key, value).map_err(|_| SessionWriteError)
    }

    /// Removes `key` only when present: actix-session marks the session changed on any remove,
    /// which would create a session row for a visitor who never had one.
    fn remove_if_present(&self, key: &str) {
        if self.0.contains_key(key) {
            self.0.remove(key);
        }
    }

    pub(crate) fn auth(&self) -> Option<AuthSession> {
        self.get(AUTH_KEY)
    }

    /// Starts a signed-in session under a fresh key and a fresh CSRF token (no session
    /// fixation: nothing a planted anonymous session held carries over).
    pub(crate) fn sign_in(&self, auth: &AuthSession) -> Result<(), SessionWriteError> {
        self.remove_if_present(PENDING_KEY);
        self.0.renew();
        // Created now rather than on the first form, so every copy of the signed-in state has it
        // wherever the browser's next request lands.
        self.set(CSRF_KEY, &crate::util::random_token(32))?;
        self.set(AUTH_KEY, auth)
    }

    /// Records an authenticated request for the idle limit, at most every
    /// [`SessionLimits::touch_every`] seconds.
    pub(crate) fn touch(&self, auth: &mut AuthSession, limits: &SessionLimits) {
        let t = now();
        if t - auth.last_seen_at < limits.touch_every() {
            return;
        }
        auth.last_seen_at = t;
        if self.set(AUTH_KEY, &*auth).is_err() {
            log::warn!("could not record the last request of user {}", auth.user_id);
        }
    }

    /// Ends the session: its row is deleted and the cookie removed.
    pub(crate) fn sign_out(&self) {
        self.0.purge();
    }

    pub(crate) fn add_pending(&self, login: PendingLogin) -> Result<(), SessionWriteError> {
        let mut pending: Vec<PendingLogin> = self.get(PENDING_KEY).unwrap_or_default();
        pending.retain(|p| now() - p.created_at < PENDING_TTL_SECS);
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push(login);
        self.set(PENDING_KEY, &pending)
    }

    /// Removes and returns the pending login with this `state`, so a replayed callback finds
    /// nothing.
    pub(crate) fn take_pending(&self, state: &str) -> Option<PendingLogin> {
        let mut pending: Vec<PendingLogin> = self.get(PENDING_KEY)?;
        let pos = pending.iter().position(|p| {
            use subtle::ConstantTimeEq;
            p.state.as_bytes().ct_eq(state.as_bytes()).into()
        })?;
        let found = pending.remove(pos);
        if pending.is_empty() {
            self.0.remove(PENDING_KEY);
        } else if self.set(PENDING_KEY, &pending).is_err() {
            return None;
        }
        Some(found)
    }

    /// The session's CSRF token, created on first use.
    pub(crate) fn csrf_token(&self) -> Result<String, SessionWriteError> {
        if let Some(token) = self.get::<String>(CSRF_KEY) {
            return Ok(token);
        }
        let token = crate::util::random_token(32);
        self.set(CSRF_KEY, &token)?;
        Ok(token)
    }

    /// Ok when `submitted` is this session's CSRF token (compared in constant time).
    pub(crate) fn check_csrf(&self, submitted: &str) -> Result<(), CsrfMismatch> {
        use subtle::ConstantTimeEq;
        match self.get::<String>(CSRF_KEY) {
            Some(token) if bool::from(token.as_bytes().ct_eq(submitted.as_bytes())) => Ok(()),
            _ => Err(CsrfMismatch),
        }
    }
}

/// Every live signed-in session of a user, newest sign-in first.
pub(crate) async fn sessions_of_user(
    pool: &crate::store::Pool,
    user_id: i64,
) -> Result<Vec<AuthSession>, crate::store::DbError> {
    let states = crate::store::run(pool, move |conn| {
        Ok(crate::store::sessions::states_of_user(
            conn,
            user_id,
            now(),
        )?)
    })
    .await?;
    let mut list: Vec<AuthSession> = states.iter().filter_map(|s| auth_from_state(s)).collect();
    list.sort_by_key(|s| std::cmp::Reverse(s.signed_in_at));
    Ok(list)
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(TypedSession(req.get_session())))
    }
}
