//! actix-session's [`SessionStore`] on keygate's own database. The browser's cookie carries only a
//! random key; the row is stored under the key's SHA-256, so a copy of the table cannot be replayed
//! as cookies.

use std::collections::HashMap;
use std::sync::Arc;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

use super::format::AUTH_KEY;
use super::{keep_newer_tokens, RowCache, SessionIndex, SessionLimits};
use crate::store::sessions::{self as session_row, SessionRow};
use crate::store::{self as db, DbError, Pool};
use crate::util::{now, random_token, sha256_hex};

/// The marker a failed load leaves in the session state; never saved (the request ends first).
const LOAD_FAILED: &str = "__keygate_store_unavailable";

/// True when this request's session could not be loaded from the database.
pub(crate) fn load_failed(req: &actix_web::dev::ServiceRequest) -> bool {
    use actix_session::SessionExt;
    req.get_session().contains_key(LOAD_FAILED)
}

#[derive(Clone)]
pub(crate) struct DbSessionStore {
    pool: Pool,
    limits: SessionLimits,
    cache: Arc<RowCache>,
}

impl DbSessionStore {
    pub(crate) fn new(pool: Pool, limits: SessionLimits, cache: Arc<RowCache>) -> Self {
        DbSessionStore {
            pool,
            limits,
            cache,
        }
    }

    /// Writes a row. Its expiry comes from the sign-in's times in the state (or ten minutes for
    /// an anonymous session), never from actix-session's TTL: a write must not extend a session.
    async fn write(
        &self,
        key_hash: String,
        mut state: HashMap<String, String>,
        insert: bool,
    ) -> Result<bool, DbError> {
        let index = SessionIndex::of(&state, &self.limits);
        let expires_at = index.expires_at;
        let hash = key_hash.clone();
        let (matched, state) = db::run(&self.pool, move |conn| {
            if !insert {
                // A refresh (refresh.rs) may have stored newer tokens in the row while this
                // request ran with the old ones; writing those back would undo the rotation.
                if let Some(stored) = session_row::load_state(conn, &key_hash, 0)? {
                    keep_newer_tokens(&stored, &mut state);
                }
            }
            // A map of strings always serializes.
            let body = serde_json::to_string(&state).unwrap_or_default();
            let row = SessionRow {
                key_hash: &key_hash,
                state: &body,
                expires_at,
                user_id: index.user_id,
                kc_sid: index.kc_sid.as_deref(),
                login_id: index.login_id.as_deref(),
            };
            let matched = if insert {
                session_row::insert(conn, &row)?;
                true
            } else {
                session_row::update(conn, &row)? > 0
            };
            Ok((matched, state))
        })
        .await?;
        if matched {
            // The written state may hold tokens merged from the row: index that.
            let index = SessionIndex::of(&state, &self.limits);
            self.cache.put(&hash, &state, index);
        } else {
            self.cache.forget(&hash);
        }
        Ok(matched)
    }
}

fn new_key() -> (SessionKey, String) {
    // 256 bits of randomness; the key itself never reaches the database.
    let key = random_token(32);
    let hash = sha256_hex(&key);
    let key = SessionKey::try_from(key).expect("a 43-character key is within the cookie limit");
    (key, hash)
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let key_hash = sha256_hex(session_key.as_ref());
        if let Some(state) = self.cache.get(&key_hash) {
            return Ok(Some(state));
        }
        let hash = key_hash.clone();
        let raw = match db::run(&self.pool, move |conn| {
            Ok(session_row::load_row(conn, &hash, now())?)
        })
        .await
        {
            Ok(raw) => raw,
            Err(e) => {
                // actix-session would answer an empty 500; mark the session instead, and the
                // app's guard answers with a proper error page.
                log::error!("session store unavailable: {e:#}");
                return Ok(Some(HashMap::from([(
                    LOAD_FAILED.to_string(),
                    "true".to_string(),
                )])));
            }
        };
        match raw {
            None => Ok(None),
            Some((raw, expires_at)) => match serde_json::from_str(&raw) {
                Ok(state) => {
                    let mut index = SessionIndex::of(&state, &self.limits);
                    // The row's own expiry: another instance may have moved it since.
                    index.expires_at = expires_at;
                    self.cache.put(&key_hash, &state, index);
                    Ok(Some(state))
                }
                Err(e) => {
                    // An unreadable row is a lost session, not an error page for the user.
                    log::warn!("dropping unreadable session state: {e}");
                    Ok(None)
                }
            },
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        _ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let (key, hash) = new_key();
        match self.write(hash, session_state, true).await {
            Ok(_) => Ok(key),
            Err(e) => Err(SaveError::Other(e.into())),
        }
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = sha256_hex(session_key.as_ref());
        match self.write(hash, session_state.clone(), false).await {
            Ok(true) => Ok(session_key),
            // The row is gone (expired, or ended by a back-channel logout while this request
            // ran): do not resurrect a signed-in state; start over with a fresh key.
            Ok(false) => {
                let mut state = session_state;
                state.retain(|k, _| k != AUTH_KEY);
                self.save(state, ttl).await.map_err(|e| match e {
                    SaveError::Serialization(e) => UpdateError::Serialization(e),
                    SaveError::Other(e) => UpdateError::Other(e),
                })
            }
            Err(e) => Err(UpdateError::Other(e.into())),
        }
    }

    /// Never extends a session: its expiry follows from the sign-in's times (see `write`).
    async fn update_ttl(&self, _session_key: &SessionKey, _ttl: &Duration) -> anyhow::Result<()> {
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let hash = sha256_hex(session_key.as_ref());
        self.cache.forget(&hash);
        db::run(&self.pool, move |conn| {
            Ok(session_row::delete(conn, &hash)?)
        })
        .await?;
        Ok(())
    }
}

/// Every `every`, for as long as the server runs: deletes expired sessions and audit events
/// older than `audit_retention_days`.
/// Counts the open sessions for the `keygate_sessions_open` gauge every `every`: one query per
/// interval, not one per scrape.
pub(crate) fn spawn_session_gauge(pool: Pool, every: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            match db::run(&pool, |conn| Ok(session_row::count_open(conn, now())?)).await {
                Ok(n) => crate::util::metrics::sessions_open(n),
                Err(e) => log::warn!("could not count the open sessions: {e}"),
            }
        }
    });
}

pub(crate) fn spawn_purger(pool: Pool, every: std::time::Duration, audit_retention_days: u32) {
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(every);
        loop {
            tick.tick().await;
            let cutoff = now() - i64::from(audit_retention_days) * 86400;
            let result = db::run(&pool, move |conn| {
                let sessions = session_row::purge_expired(conn, now())?;
                let events = crate::store::audit_events::prune(conn, cutoff)?;
                crate::domain::revocations::purge(conn, now())?;
                crate::store::logout_tokens::purge_expired(conn, now())?;
                Ok((sessions, events))
            })
            .await;
            match result {
                Ok((0, 0)) => {}
                Ok((s, e)) => log::info!("purged {s} expired session(s), {e} old audit event(s)"),
                Err(e) => log::warn!("purge failed: {e}"),
            }
        }
    });
}
