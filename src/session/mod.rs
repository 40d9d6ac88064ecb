//! The browser session on actix-session: the typed session, the pending login, the store on
//! keygate's database and its purger, and the leased refresh. The only code that knows the stored
//! session format.
//!
//! Uses `domain`, `store`, `idp`, `settings` and `util`; never `web`. Handlers never touch string
//! keys: they call [`TypedSession`], which keeps serialized values for the pending logins, the
//! signed-in state and the CSRF token.

use std::collections::HashMap;
use std::future::{ready, Ready};

use actix_session::{Session, SessionExt};
use actix_web::{dev::Payload, FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::domain::next_url::NextUrl;
use crate::idp::{AuthRequest, TokenSet};
use crate::util::now;

pub(crate) mod refresh;
pub(crate) mod store;

pub(crate) use refresh::{RefreshError, Refresher};
pub(crate) use store::{spawn_purger, DbSessionStore};

const PENDING_KEY: &str = "pending_login";
const AUTH_KEY: &str = "auth";
const CSRF_KEY: &str = "csrf";

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

    /// Starts a signed-in session under a fresh key (no session fixation).
    pub(crate) fn sign_in(&self, auth: &AuthSession) -> Result<(), SessionWriteError> {
        self.remove_if_present(PENDING_KEY);
        self.0.renew();
        self.set(AUTH_KEY, auth)
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

/// The indexed columns of a session row, read from its serialized state by the store.
pub(crate) struct SessionIndex {
    pub user_id: Option<i64>,
    pub kc_sid: Option<String>,
    pub login_id: Option<String>,
}

impl SessionIndex {
    pub(crate) fn of(state: &HashMap<String, String>) -> Self {
        let auth: Option<AuthSession> = state
            .get(AUTH_KEY)
            .and_then(|raw| serde_json::from_str(raw).ok());
        match auth {
            Some(a) => SessionIndex {
                user_id: Some(a.user_id),
                kc_sid: a.kc_sid,
                login_id: Some(a.login_id),
            },
            None => SessionIndex {
                user_id: None,
                kc_sid: None,
                login_id: None,
            },
        }
    }
}

/// Reads the auth value out of a raw stored state (used by the refresh lease, which works on the
/// row directly).
pub fn auth_from_state(raw_state: &str) -> Option<AuthSession> {
    let state: HashMap<String, String> = serde_json::from_str(raw_state).ok()?;
    serde_json::from_str(state.get(AUTH_KEY)?).ok()
}

/// When the stored row holds the same login with tokens that expire later than the ones about to
/// be written, keeps the stored tokens (they come from a refresh that ran meanwhile).
pub(crate) fn keep_newer_tokens(stored_raw: &str, incoming: &mut HashMap<String, String>) {
    let Some(stored) = auth_from_state(stored_raw) else {
        return;
    };
    let Some(mine) = incoming
        .get(AUTH_KEY)
        .and_then(|raw| serde_json::from_str::<AuthSession>(raw).ok())
    else {
        return;
    };
    if stored.login_id == mine.login_id
        && stored.tokens.access_expires_at > mine.tokens.access_expires_at
    {
        if let Ok(raw) = serde_json::to_string(&stored) {
            incoming.insert(AUTH_KEY.into(), raw);
        }
    }
}

/// Writes an auth value into a raw stored state, keeping the other entries.
pub(crate) fn state_with_auth(raw_state: &str, auth: &AuthSession) -> Option<String> {
    let mut state: HashMap<String, String> = serde_json::from_str(raw_state).ok()?;
    state.insert(AUTH_KEY.into(), serde_json::to_string(auth).ok()?);
    serde_json::to_string(&state).ok()
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(TypedSession(req.get_session())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(login_id: &str, expires: i64, token: &str) -> AuthSession {
        AuthSession {
            login_id: login_id.into(),
            user_id: 1,
            kc_sid: None,
            tokens: Tokens {
                access_token: token.into(),
                access_issued_at: 0,
                access_expires_at: expires,
                refresh_token: Some(format!("refresh-{token}")),
                id_token: None,
            },
        }
    }

    fn state_of(a: &AuthSession) -> HashMap<String, String> {
        HashMap::from([(AUTH_KEY.to_string(), serde_json::to_string(a).unwrap())])
    }

    #[test]
    fn a_stale_write_keeps_the_refreshed_tokens() {
        let stored = serde_json::to_string(&state_of(&auth("l1", 200, "new"))).unwrap();
        let mut incoming = state_of(&auth("l1", 100, "old"));
        keep_newer_tokens(&stored, &mut incoming);
        let kept: AuthSession = serde_json::from_str(&incoming[AUTH_KEY]).unwrap();
        assert_eq!(kept.tokens.access_token, "new");
    }

    #[test]
    fn a_new_login_or_newer_tokens_win() {
        let stored = serde_json::to_string(&state_of(&auth("l1", 200, "stored"))).unwrap();
        let mut other_login = state_of(&auth("l2", 100, "mine"));
        keep_newer_tokens(&stored, &mut other_login);
        assert!(other_login[AUTH_KEY].contains("mine"));
        let mut newer = state_of(&auth("l1", 300, "mine"));
        keep_newer_tokens(&stored, &mut newer);
        assert!(newer[AUTH_KEY].contains("mine"));
    }
}
