//! A short-lived cache of local users by Keycloak subject (bearer tokens) and by id (browser
//! sessions), so a request needs no database round trip for its user. Entries live [`TTL`] at most and are dropped at once when this instance
//! changes the user (login, deactivation, unlink); another instance's change shows within [`TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{self, DbError, Pool, SocialAccount, User};

const TTL: Duration = Duration::from_secs(10);
const CAPACITY: usize = 10_000;

/// A user and its linked accounts as loaded together.
#[derive(Debug)]
pub(crate) struct UserSnapshot {
    pub user: Arc<User>,
    pub accounts: Vec<SocialAccount>,
}

/// What an entry is found by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Sub(String),
    Id(i64),
}

#[derive(Default)]
pub(crate) struct UserCache {
    map: Mutex<HashMap<Key, (Arc<UserSnapshot>, Instant)>>,
}

impl UserCache {
    /// The user of Keycloak subject `sub`.
    pub(crate) fn get(&self, sub: &str) -> Option<Arc<UserSnapshot>> {
        self.lookup(&Key::Sub(sub.to_string()))
    }

    /// Local user `id`.
    pub(crate) fn get_by_id(&self, id: i64) -> Option<Arc<UserSnapshot>> {
        self.lookup(&Key::Id(id))
    }

    pub(crate) fn put(&self, sub: &str, snapshot: Arc<UserSnapshot>) {
        self.insert(Key::Sub(sub.to_string()), snapshot);
    }

    pub(crate) fn put_by_id(&self, snapshot: Arc<UserSnapshot>) {
        self.insert(Key::Id(snapshot.user.id), snapshot);
    }

    /// Local user `id` and its linked accounts: from the cache when fresh, else from the
    /// database (and then cached). `None` when there is no such user.
    pub(crate) async fn load_by_id(
        &self,
        pool: &Pool,
        id: i64,
    ) -> Result<Option<Arc<UserSnapshot>>, DbError> {
        if let Some(hit) = self.get_by_id(id) {
            return Ok(Some(hit));
        }
        let found = store::run(pool, move |conn| {
            let Some(user) = User::find(conn, id)? else {
                return Ok(None);
            };
            let accounts = SocialAccount::for_user(conn, id)?;
            Ok(Some(UserSnapshot {
                user: Arc::new(user),
                accounts,
            }))
        })
        .await?;
        Ok(found.map(|snapshot| {
            let snapshot = Arc::new(snapshot);
            self.put_by_id(snapshot.clone());
            snapshot
        }))
    }

    fn lookup(&self, key: &Key) -> Option<Arc<UserSnapshot>> {
        let found = self.map.lock().ok().and_then(|map| {
            let (snapshot, at) = map.get(key)?;
            (at.elapsed() < TTL).then(|| snapshot.clone())
        });
        crate::util::metrics::cache("users", found.is_some());
        found
    }

    fn insert(&self, key: Key, snapshot: Arc<UserSnapshot>) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= CAPACITY {
            map.retain(|_, (_, at)| at.elapsed() < TTL);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (snapshot, Instant::now()));
    }

    /// Drops every entry of local user `user_id`.
    pub(crate) fn forget_user(&self, user_id: i64) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, (s, _)| s.user.id != user_id);
        }
    }
}
