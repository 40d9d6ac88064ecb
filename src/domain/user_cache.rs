//! A short-lived cache of local users by Keycloak subject, so a bearer-token request needs no
//! database round trip. Entries live [`TTL`] at most and are dropped at once when this instance
//! changes the user (login, deactivation, unlink); another instance's change shows within [`TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{SocialAccount, User};

const TTL: Duration = Duration::from_secs(10);
const CAPACITY: usize = 10_000;

/// A user and its linked accounts as loaded together.
#[derive(Debug)]
pub(crate) struct UserSnapshot {
    pub user: Arc<User>,
    pub accounts: Vec<SocialAccount>,
}

#[derive(Default)]
pub(crate) struct UserCache {
    map: Mutex<HashMap<String, (Arc<UserSnapshot>, Instant)>>,
}

impl UserCache {
    pub(crate) fn get(&self, sub: &str) -> Option<Arc<UserSnapshot>> {
        let map = self.map.lock().ok()?;
        let (snapshot, at) = map.get(sub)?;
        (at.elapsed() < TTL).then(|| snapshot.clone())
    }

    pub(crate) fn put(&self, sub: &str, snapshot: Arc<UserSnapshot>) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            map.retain(|_, (_, at)| at.elapsed() < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(sub.to_string(), (snapshot, Instant::now()));
    }

    /// Drops every entry of local user `user_id`.
    pub(crate) fn forget_user(&self, user_id: i64) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, (s, _)| s.user.id != user_id);
        }
    }
}
