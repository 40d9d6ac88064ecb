//! Access tokens that passed validation, by SHA-256, until they expire: the hot path of a bearer
//! request skips the signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::access_token::AccessClaims;
use crate::util::now;

/// Upper bound on cached validated tokens; beyond it expired entries go, then everything.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(super) struct TokenCache {
    map: Mutex<HashMap<[u8; 32], Arc<AccessClaims>>>,
}

pub(super) fn digest(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// The cached claims of a token, while it has not expired (with `leeway`).
    pub(super) fn get(&self, hash: &[u8; 32], leeway: i64) -> Option<Arc<AccessClaims>> {
        let found = self.lookup(hash, leeway);
        crate::util::metrics::cache("tokens", found.is_some());
        found
    }

    fn lookup(&self, hash: &[u8; 32], leeway: i64) -> Option<Arc<AccessClaims>> {
        let map = self.map.lock().ok()?;
        let hit = map.get(hash)?;
        // Expired entries are refused here and swept on insert.
        (hit.exp.saturating_add(leeway) > now()).then(|| hit.clone())
    }

    pub(super) fn put(&self, hash: [u8; 32], claims: &Arc<AccessClaims>) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            let t = now();
            map.retain(|_, c| c.exp > t);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(hash, claims.clone());
    }

    /// Drops every cached token of Keycloak subject `sub` (deactivation, logout).
    pub(super) fn forget_subject(&self, sub: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, c| c.sub != sub);
        }
    }
}
