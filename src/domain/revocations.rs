//! The revocation list: what a logout ended, so that its access tokens stop working as bearer
//! tokens and TOKEN cookies on every instance, not only on the one that ended it.
//!
//! A session end records the Keycloak session id (`sid`) and keygate's login id; a logout of a
//! whole subject records the `sub` with its time, which refuses every token of that subject
//! issued up to then. Rows live in the database for as long as a session can (a token issued
//! before the end cannot outlive that), and each instance keeps them in memory: the instance that
//! ends a session knows at once, the others within [`RELOAD_EVERY`]. No request waits on the
//! database for it.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use serde_json::Value;

use crate::store::revocations::{self, NewRevocation};
use crate::store::{self, DbConn, DbError, Pool};
use crate::util::now;

/// How often each instance reads the revocations other instances wrote.
pub(crate) const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How far back a reload looks past the previous one, so a row committed late is still seen.
const OVERLAP_SECS: i64 = 30;

/// What an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A Keycloak session id: tokens carrying it, and keygate sessions of it.
    Sid,
    /// A Keycloak subject: its tokens issued, and its sessions signed in, up to the time.
    Sub,
    /// A keygate login (one browser session).
    Login,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Sid => "sid",
            Kind::Sub => "sub",
            Kind::Login => "login",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Sid, Kind::Sub, Kind::Login]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One thing to revoke.
#[derive(Clone, Debug)]
pub(crate) struct Revoke {
    pub kind: Kind,
    pub value: String,
}

impl Revoke {
    pub(crate) fn sid(sid: &str) -> Self {
        Revoke {
            kind: Kind::Sid,
            value: sid.to_string(),
        }
    }

    pub(crate) fn sub(sub: &str) -> Self {
        Revoke {
            kind: Kind::Sub,
            value: sub.to_string(),
        }
    }

    pub(crate) fn login(login_id: &str) -> Self {
        Revoke {
            kind: Kind::Login,
            value: login_id.to_string(),
        }
    }
}

/// Value → (revoked at, expires at), one map per kind (looked up by `&str`, no allocation).
#[derive(Default)]
struct Entries {
    maps: [HashMap<String, (i64, i64)>; 3],
    loaded_until: i64,
}

impl Entries {
    fn slot(&mut self, kind: Kind, value: String, at: i64, expires: i64) {
        let slot = self.maps[kind as usize]
            .entry(value)
            .or_insert((at, expires));
        slot.0 = slot.0.max(at);
        slot.1 = slot.1.max(expires);
    }

    fn revoked_at(&self, kind: Kind, value: &str) -> Option<i64> {
        self.maps[kind as usize].get(value).map(|(at, _)| *at)
    }

    fn is_empty(&self) -> bool {
        self.maps.iter().all(HashMap::is_empty)
    }
}

/// The in-memory revocation list of this instance.
pub(crate) struct Revocations {
    /// How long entries are kept: as long as a session can live.
    keep_secs: i64,
    entries: RwLock<Entries>,
}

impl Revocations {
    pub(crate) fn new(keep: Duration) -> Self {
        Revocations {
            keep_secs: keep.as_secs() as i64,
            entries: RwLock::new(Entries::default()),
        }
    }

    /// Records `items` in the caller's transaction. Call [`Revocations::remember`] after it
    /// committed, so this instance refuses them at once.
    pub(crate) fn record(&self, conn: &mut DbConn, items: &[Revoke]) -> Result<i64, DbError> {
        write_rows(conn, items, self.keep_secs)
    }

    /// Records `items` on their own and remembers them; a failure is logged (the session rows
    /// are gone either way; other instances then learn it only from their own checks).
    pub(crate) async fn revoke(&self, pool: &Pool, items: Vec<Revoke>) {
        if items.is_empty() {
            return;
        }
        let (keep, rows) = (self.keep_secs, items.clone());
        let written = store::run(pool, move |conn| write_rows(conn, &rows, keep)).await;
        match written {
            Ok(at) => self.remember(&items, at),
            Err(e) => {
                log::error!("could not record {} revocation(s): {e}", items.len());
                self.remember(&items, now());
            }
        }
    }

    /// Adds entries this instance just wrote.
    pub(crate) fn remember(&self, items: &[Revoke], at: i64) {
        let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for item in items {
            e.slot(item.kind, item.value.clone(), at, at + self.keep_secs);
        }
    }

    /// Runs `check` on the entries under one read lock; false when there are none.
    fn any(&self, check: impl FnOnce(&Entries) -> bool) -> bool {
        // A poisoned lock still holds every entry: keep refusing what they name.
        let e = self.entries.read().unwrap_or_else(|p| p.into_inner());
        !e.is_empty() && check(&e)
    }

    /// Reads what other instances revoked since the last reload, and forgets expired entries.
    pub(crate) async fn reload(&self, pool: &Pool) -> Result<usize, DbError> {
        let since = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .loaded_until
            - OVERLAP_SECS;
        let t = now();
        let rows = store::run(pool, move |conn| Ok(revocations::since(conn, since, t)?)).await?;
        let n = rows.len();
        let mut e = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for map in e.maps.iter_mut() {
            map.retain(|_, (_, expires)| *expires > t);
        }
        for row in rows {
            if let Some(kind) = Kind::parse(&row.kind) {
                e.slot(kind, row.value, row.revoked_at, row.expires_at);
            }
        }
        e.loaded_until = t;
        Ok(n)
    }

    /// True when an access token with these claims was ended: its `sid` was revoked, or its
    /// `sub` was logged out at or after the token's `iat`.
    pub(crate) fn token_revoked(&self, claims: &Value) -> bool {
        self.any(|e| {
            let text = |name| claims.get(name).and_then(Value::as_str);
            let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
            text("sid").is_some_and(|sid| e.revoked_at(Kind::Sid, sid).is_some())
                || text("sub")
                    .is_some_and(|sub| e.revoked_at(Kind::Sub, sub).is_some_and(|at| iat <= at))
        })
    }

    /// True when a browser session was ended: by its login, its Keycloak session, or a logout
    /// of its subject at or after it signed in.
    pub(crate) fn session_revoked(
        &self,
        login_id: &str,
        sid: Option<&str>,
        sub: Option<&str>,
        signed_in_at: i64,
    ) -> bool {
        self.any(|e| {
            e.revoked_at(Kind::Login, login_id).is_some()
                || sid.is_some_and(|s| e.revoked_at(Kind::Sid, s).is_some())
                || sub.is_some_and(|s| {
                    e.revoked_at(Kind::Sub, s)
                        .is_some_and(|at| signed_in_at <= at)
                })
        })
    }
}

fn write_rows(conn: &mut DbConn, items: &[Revoke], keep_secs: i64) -> Result<i64, DbError> {
    let t = now();
    for item in items {
        revocations::insert(
            conn,
            &NewRevocation {
                kind: item.kind.as_str(),
                value: &item.value,
                revoked_at: t,
                expires_at: t + keep_secs,
            },
        )?;
    }
    Ok(t)
}

/// Every [`RELOAD_EVERY`], for as long as the server runs: reads what other instances revoked.
pub(crate) fn spawn_reloader(pool: Pool, list: std::sync::Arc<Revocations>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = list.reload(&pool).await {
                log::warn!("could not reload the revocation list: {e}");
            }
        }
    });
}

/// Deletes expired revocations (with the purge of expired sessions).
pub(crate) fn purge(conn: &mut DbConn, now: i64) -> Result<usize, DbError> {
    Ok(revocations::purge_expired(conn, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_revoked_sid_ends_its_tokens_and_a_revoked_sub_only_older_ones() {
        let list = Revocations::new(Duration::from_secs(3600));
        let t = now();
        list.remember(&[Revoke::sid("s1"), Revoke::sub("u1")], t);
        assert!(list.token_revoked(&json!({"sid": "s1", "sub": "u9", "iat": t + 100})));
        assert!(list.token_revoked(&json!({"sid": "s2", "sub": "u1", "iat": t - 5})));
        assert!(
            !list.token_revoked(&json!({"sid": "s2", "sub": "u1", "iat": t + 1})),
            "a token issued after the logout of its subject is a new sign-in"
        );
        assert!(!list.token_revoked(&json!({"sid": "s2", "sub": "u2", "iat": t})));
        assert!(list.session_revoked("l1", Some("s1"), None, t));
        assert!(list.session_revoked("l1", None, Some("u1"), t - 10));
        assert!(!list.session_revoked("l1", None, Some("u1"), t + 10));
        list.remember(&[Revoke::login("l1")], t);
        assert!(list.session_revoked("l1", None, None, t));
    }
}
