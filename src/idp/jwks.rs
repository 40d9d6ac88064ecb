//! The realm's signing keys from its JWKS: cached, and fetched again when a token names an
//! unknown `kid` (at most once per [`MIN_REFETCH`]). Only asymmetric keys for signing are kept.

use crate::idp::http::SendObserved;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::discovery::Discovery;
use super::http::read_json;
use super::Unavailable;
use crate::util::error_chain;

/// Least time between two JWKS fetches for unknown key ids: a client sending made-up `kid`s
/// makes keygate fetch at most once a second, while a key Keycloak has just created is found
/// within a second.
const MIN_REFETCH: Duration = Duration::from_secs(1);

pub(super) struct KeyEntry {
    alg: Option<Algorithm>,
    params: AlgorithmParameters,
    pub key: DecodingKey,
}

struct KeySet {
    keys: HashMap<String, Arc<KeyEntry>>,
    fetched_at: Option<Instant>,
}

pub(crate) struct Jwks {
    discovery: Arc<Discovery>,
    keys: RwLock<KeySet>,
    refetch: tokio::sync::Mutex<()>,
}

/// Why no key could be found.
pub(super) enum KeyError {
    Unknown,
    Unavailable(Unavailable),
}

impl From<KeyError> for super::TokenError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Unknown => super::TokenError::UnknownKey,
            KeyError::Unavailable(u) => super::TokenError::KeysUnavailable(u),
        }
    }
}

impl Jwks {
    /// How many signing keys are in memory.
    pub(crate) fn cached_keys(&self) -> usize {
        self.keys.read().map_or(0, |k| k.keys.len())
    }

    pub(crate) fn new(discovery: Arc<Discovery>) -> Self {
        Jwks {
            discovery,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            refetch: tokio::sync::Mutex::new(()),
        }
    }

    /// The key a token with this `kid` and `alg` names, fetching the JWKS again if unknown.
    pub(super) async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeyEntry>, KeyError> {
        if let Some(entry) = self.lookup(kid, alg) {
            return Ok(entry);
        }
        self.refresh_keys().await.map_err(KeyError::Unavailable)?;
        self.lookup(kid, alg).ok_or(KeyError::Unknown)
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<KeyEntry>> {
        let set = self.keys.read().ok()?;
        match kid {
            Some(kid) => set.keys.get(kid).cloned(),
            // Without a kid, only an unambiguous key may be used.
            None => {
                let mut fitting = set.keys.values().filter(|k| key_allows(k, alg));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Fetches the JWKS again unless that happened within [`MIN_REFETCH`]; concurrent callers
    /// wait for one fetch.
    async fn refresh_keys(&self) -> Result<(), Unavailable> {
        let _one_at_a_time = self.refetch.lock().await;
        let recent = self
            .keys
            .read()
            .ok()
            .and_then(|s| s.fetched_at)
            .is_some_and(|t| t.elapsed() < MIN_REFETCH);
        if recent {
            return Ok(());
        }
        let provider = self.discovery.provider().await?;
        let url = provider.metadata.jwks_uri().url().clone();
        let fetched = self.fetch_keys(url).await;
        crate::util::metrics::jwks_fetch(fetched.is_ok());
        let mut set = self
            .keys
            .write()
            .map_err(|_| Unavailable("key cache poisoned".into()))?;
        set.fetched_at = Some(Instant::now());
        let keys = fetched.map_err(Unavailable)?;
        log::info!("loaded {} signing key(s) from the realm's JWKS", keys.len());
        set.keys = keys;
        Ok(())
    }

    async fn fetch_keys(&self, url: url::Url) -> Result<HashMap<String, Arc<KeyEntry>>, String> {
        let response = self
            .discovery
            .http()
            .get(url)
            .send_observed()
            .await
            .map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let body = read_json(response).await?;
        let list = body
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no keys array")?;
        let mut keys = HashMap::new();
        for raw in list {
            // One key we cannot use (encryption keys, unknown types) must not hide the others.
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
                continue;
            };
            if let Some((kid, entry)) = usable_key(jwk) {
                keys.insert(kid, Arc::new(entry));
            }
        }
        Ok(keys)
    }
}

/// A signing key of the JWKS that we can use, with its kid.
fn usable_key(jwk: Jwk) -> Option<(String, KeyEntry)> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None; // symmetric keys never verify anything here
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(ka) => Some(signing_alg(ka)?),
    };
    let kid = jwk.common.key_id.clone()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((
        kid,
        KeyEntry {
            alg,
            params: jwk.algorithm,
            key,
        },
    ))
}

fn signing_alg(ka: KeyAlgorithm) -> Option<Algorithm> {
    use KeyAlgorithm as K;
    Some(match ka {
        K::RS256 => Algorithm::RS256,
        K::RS384 => Algorithm::RS384,
        K::RS512 => Algorithm::RS512,
        K::PS256 => Algorithm::PS256,
        K::PS384 => Algorithm::PS384,
        K::PS512 => Algorithm::PS512,
        K::ES256 => Algorithm::ES256,
        K::ES384 => Algorithm::ES384,
        K::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Whether `alg` fits the key: its type (and curve), and its declared `alg` if it has one. Both,
/// so a hostile JWKS cannot pair, say, `"alg": "ES256"` with an RSA key.
pub(super) fn key_allows(entry: &KeyEntry, alg: Algorithm) -> bool {
    if entry.alg.is_some_and(|declared| declared != alg) {
        return false;
    }
    use Algorithm::*;
    match (&entry.params, alg) {
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => true,
        (AlgorithmParameters::EllipticCurve(p), ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(_), EdDSA) => true,
        _ => false,
    }
}
