//! Signed-in session rows kept in memory for a moment, so a browser request does not wait on the
//! database for its session on every request.
//!
//! An entry is used for at most [`TTL`], and never after its session's expiry or once the
//! revocation list names its login, Keycloak session or subject: a session ended on this instance
//! is refused at once, one ended on another instance within the revocation list's reload
//! interval. The cache is never the input of a refresh (the leased refresh reads the row), and
//! sessions without a sign-in are not cached at all (their pending logins and CSRF tokens must be
//! read fresh wherever the browser's next request lands).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::SessionIndex;
use crate::domain::revocations::Revocations;
use crate::util::now;

/// Longest an entry is served without reading the row again.
pub(crate) const TTL: Duration = Duration::from_secs(2);
/// Entries kept before stale ones are swept.
const CAPACITY: usize = 20_000;

struct Entry {
    state: HashMap<String, String>,
    index: SessionIndex,
    loaded: Instant,
}

pub(crate) struct RowCache {
    revocations: Arc<Revocations>,
    map: Mutex<HashMap<String, Entry>>,
}

impl RowCache {
    pub(crate) fn new(revocations: Arc<Revocations>) -> Self {
        RowCache {
            revocations,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The state of a signed-in row, while it may be served from memory.
    pub(super) fn get(&self, key_hash: &str) -> Option<HashMap<String, String>> {
        let map = self.map.lock().ok()?;
        let entry = map.get(key_hash)?;
        let usable = entry.loaded.elapsed() < TTL
            && entry.index.expires_at > now()
            && !self.revoked(&entry.index);
        usable.then(|| entry.state.clone())
    }

    /// Remembers a row just read or written; rows without a sign-in are forgotten instead.
    pub(super) fn put(&self, key_hash: &str, state: &HashMap<String, String>, index: SessionIndex) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if index.login_id.is_none() {
            map.remove(key_hash);
            return;
        }
        if map.len() >= CAPACITY {
            map.retain(|_, e| e.loaded.elapsed() < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(
            key_hash.to_string(),
            Entry {
                state: state.clone(),
                index,
                loaded: Instant::now(),
            },
        );
    }

    pub(super) fn forget(&self, key_hash: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key_hash);
        }
    }

    fn revoked(&self, index: &SessionIndex) -> bool {
        let Some(login_id) = index.login_id.as_deref() else {
            return true;
        };
        self.revocations.session_revoked(
            login_id,
            index.kc_sid.as_deref(),
            index.sub.as_deref(),
            index.signed_in_at,
        )
    }
}
