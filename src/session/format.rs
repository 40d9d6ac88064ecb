//! The stored session format: a JSON map of serialized values under fixed keys. The store and
//! the leased refresh read and write rows through these functions only.

use std::collections::HashMap;

use super::{AuthSession, SessionLimits};

pub(super) const PENDING_KEY: &str = "pending_login";
pub(super) const AUTH_KEY: &str = "auth";
pub(super) const CSRF_KEY: &str = "csrf";

/// The indexed columns of a session row, read from its serialized state by the store.
pub(crate) struct SessionIndex {
    pub user_id: Option<i64>,
    pub kc_sid: Option<String>,
    pub login_id: Option<String>,
    /// When the row ends, from the sign-in's times (never from when it was written).
    pub expires_at: i64,
    /// The Keycloak subject and the sign-in time, which a logout of the subject ends.
    pub sub: Option<String>,
    pub signed_in_at: i64,
}

impl SessionIndex {
    pub(crate) fn of(state: &HashMap<String, String>, limits: &SessionLimits) -> Self {
        let auth: Option<AuthSession> = state
            .get(AUTH_KEY)
            .and_then(|raw| serde_json::from_str(raw).ok());
        let expires_at = limits.expires_at(auth.as_ref());
        match auth {
            Some(a) => SessionIndex {
                user_id: Some(a.user_id),
                kc_sid: a.kc_sid,
                login_id: Some(a.login_id),
                expires_at,
                sub: a.sub,
                signed_in_at: a.signed_in_at,
            },
            None => SessionIndex {
                user_id: None,
                kc_sid: None,
                login_id: None,
                expires_at,
                sub: None,
                signed_in_at: 0,
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
/// be written, keeps the stored tokens (they come from a refresh that ran meanwhile) and the
/// later of the two last-seen times.
pub(crate) fn keep_newer_tokens(stored_raw: &str, incoming: &mut HashMap<String, String>) {
    let Some(stored) = auth_from_state(stored_raw) else {
        return;
    };
    let Some(mut mine) = incoming
        .get(AUTH_KEY)
        .and_then(|raw| serde_json::from_str::<AuthSession>(raw).ok())
    else {
        return;
    };
    if stored.login_id == mine.login_id
        && stored.tokens.access_expires_at > mine.tokens.access_expires_at
    {
        mine.tokens = stored.tokens;
        mine.last_seen_at = mine.last_seen_at.max(stored.last_seen_at);
        if let Ok(raw) = serde_json::to_string(&mine) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Tokens;

    fn auth(login_id: &str, expires: i64, token: &str) -> AuthSession {
        AuthSession {
            login_id: login_id.into(),
            user_id: 1,
            kc_sid: None,
            signed_in_at: 0,
            last_seen_at: 0,
            sub: None,
            ip: None,
            user_agent: None,
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
