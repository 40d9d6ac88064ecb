//! Local validation of Keycloak access tokens (bearer tokens and the TOKEN cookie).
//!
//! Keys come from the realm's JWKS, cached and fetched again when a token names an unknown `kid`
//! (at most once per [`MIN_REFETCH`]). Only asymmetric algorithms that the key itself allows pass:
//! never `none`, never HMAC (an HS256 token "signed" with our public key is the classic attack).
//! Then exact `iss`, `exp`/`nbf` with leeway, `typ` = Bearer (an ID token is not an access token)
//! and the audience. Tokens that passed are cached by their SHA-256 until they expire, so the hot
//! path skips the signature check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::db::now;
use crate::oidc::{error_chain, Oidc, OidcError};
use crate::settings::Settings;

/// Least time between two JWKS fetches for unknown key ids: a client sending made-up `kid`s
/// makes keygate fetch at most once a second, while a key Keycloak has just created is found
/// within a second.
const MIN_REFETCH: Duration = Duration::from_secs(1);
/// Upper bound on cached validated tokens; beyond it expired entries go, then everything.
const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("signing algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("no realm key with this kid")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    Premature,
    #[error("wrong issuer")]
    Issuer,
    #[error("token audience does not include `{expected}`")]
    Audience { expected: String },
    #[error("not an access token (typ is {0:?})")]
    NotAccessToken(Option<String>),
    #[error("realm keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// The event a back-channel logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token says to end.
#[derive(Debug, Clone)]
pub struct LogoutClaims {
    pub sid: Option<String>,
    pub sub: Option<String>,
}

/// The claims of a validated access token.
#[derive(Debug, Clone)]
pub struct AccessClaims {
    pub sub: String,
    pub exp: i64,
    pub claims: Arc<Value>,
}

struct KeyEntry {
    alg: Option<Algorithm>,
    params: AlgorithmParameters,
    key: DecodingKey,
}

struct KeySet {
    keys: HashMap<String, Arc<KeyEntry>>,
    fetched_at: Option<Instant>,
}

struct Cached {
    claims: Arc<AccessClaims>,
}

pub struct TokenValidator {
    http: reqwest::Client,
    issuer: String,
    audience: String,
    client_id: String,
    accept_azp: bool,
    leeway: u64,
    use_cache: bool,
    keys: RwLock<KeySet>,
    refetch: tokio::sync::Mutex<()>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl TokenValidator {
    pub fn new(settings: &Settings, http: reqwest::Client) -> Self {
        TokenValidator {
            http,
            issuer: settings
                .issuer_url
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            audience: settings.audience.clone(),
            client_id: settings.client_id.clone(),
            accept_azp: settings.accept_azp,
            leeway: settings.leeway.as_secs(),
            use_cache: settings.token_cache,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            refetch: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Validates `token` as an access token of our realm for our audience.
    pub async fn validate(
        &self,
        oidc: &Oidc,
        token: &str,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        if !self.use_cache {
            return self.verify(oidc, token).await.map(Arc::new);
        }
        let hash = digest(token);
        if let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        let claims = Arc::new(self.verify(oidc, token).await?);
        self.remember(hash, &claims);
        Ok(claims)
    }

    /// Full validation, no cache: signature, then claims.
    pub async fn verify(&self, oidc: &Oidc, token: &str) -> Result<AccessClaims, TokenError> {
        let claims = self
            .verify_signed(oidc, token, |v| {
                v.set_required_spec_claims(&["exp", "iss", "sub"]);
                // Checked in check_claims: `aud`, or `azp` when configured.
                v.validate_aud = false;
            })
            .await?;
        self.check_claims(claims)
    }

    /// Validates a back-channel `logout_token` (OpenID Connect Back-Channel Logout 1.0, 2.6):
    /// signature, `iss`, `aud` = our client, `iat`, the logout event, `sid` or `sub`, no `nonce`.
    pub async fn verify_logout_token(
        &self,
        oidc: &Oidc,
        token: &str,
    ) -> Result<LogoutClaims, TokenError> {
        let client_id = self.client_id.clone();
        let claims = self
            .verify_signed(oidc, token, move |v| {
                v.set_required_spec_claims(&["iss", "aud", "iat"]);
                v.set_audience(&[&client_id]);
                v.validate_exp = true;
            })
            .await?;
        let bad = |why: &str| TokenError::Malformed(format!("logout token: {why}"));
        if claims.get("nonce").is_some() {
            return Err(bad("carries a nonce"));
        }
        let has_event = claims
            .get("events")
            .and_then(Value::as_object)
            .is_some_and(|e| e.contains_key(BACKCHANNEL_LOGOUT_EVENT));
        if !has_event {
            return Err(bad("no back-channel logout event"));
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("iat"))?;
        if iat > now() + self.leeway as i64 {
            return Err(bad("issued in the future"));
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let (sid, sub) = (text("sid"), text("sub"));
        if sid.is_none() && sub.is_none() {
            return Err(bad("neither sid nor sub"));
        }
        Ok(LogoutClaims { sid, sub })
    }

    /// Signature (a realm key that allows the token's asymmetric algorithm), exact issuer and
    /// time claims; `adjust` sets the rest of the validation for the kind of token.
    async fn verify_signed(
        &self,
        oidc: &Oidc,
        token: &str,
        adjust: impl FnOnce(&mut Validation),
    ) -> Result<Value, TokenError> {
        if token.len() > 64 * 1024 || token.split('.').count() != 3 {
            return Err(TokenError::Malformed("not a compact JWS".into()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
        // RFC 7515 4.1.11: extensions marked critical must be understood; keygate knows none.
        if header.crit.is_some() {
            return Err(TokenError::Malformed("critical header extensions".into()));
        }
        let alg = header.alg;
        if !is_asymmetric(alg) {
            return Err(TokenError::Algorithm(format!("{alg:?}")));
        }
        let entry = self.key_for(oidc, header.kid.as_deref(), alg).await?;
        if !key_allows(&entry, alg) {
            return Err(TokenError::Algorithm(format!("{alg:?} for this key")));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        adjust(&mut validation);
        let data =
            jsonwebtoken::decode::<Value>(token, &entry.key, &validation).map_err(map_jwt_error)?;
        Ok(data.claims)
    }

    fn check_claims(&self, claims: Value) -> Result<AccessClaims, TokenError> {
        let typ = claims.get("typ").and_then(Value::as_str);
        if !typ.is_some_and(|t| t.eq_ignore_ascii_case("Bearer")) {
            return Err(TokenError::NotAccessToken(typ.map(String::from)));
        }
        let in_aud = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&self.audience)),
            _ => false,
        };
        let azp_ok = self.accept_azp
            && claims.get("azp").and_then(Value::as_str) == Some(self.client_id.as_str());
        if !in_aud && !azp_ok {
            return Err(TokenError::Audience {
                expected: self.audience.clone(),
            });
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| TokenError::Malformed("sub missing or invalid".into()))?
            .to_string();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| TokenError::Malformed("exp is not an integer".into()))?;
        // jsonwebtoken leaves `iat` alone; a token issued in the future is forged or mis-clocked.
        if claims
            .get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat > now() + self.leeway as i64)
        {
            return Err(TokenError::Premature);
        }
        Ok(AccessClaims {
            sub,
            exp,
            claims: Arc::new(claims),
        })
    }

    async fn key_for(
        &self,
        oidc: &Oidc,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<KeyEntry>, TokenError> {
        if let Some(entry) = self.lookup(kid, alg) {
            return Ok(entry);
        }
        self.refresh_keys(oidc).await?;
        self.lookup(kid, alg).ok_or(TokenError::UnknownKey)
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

    /// Fetches the JWKS again unless that happened within [`MIN_REFETCH`]; concurrent callers wait
    /// for one fetch.
    async fn refresh_keys(&self, oidc: &Oidc) -> Result<(), TokenError> {
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
        let provider = oidc.provider().await.map_err(|e| match e {
            OidcError::Unavailable(why) => TokenError::KeysUnavailable(why),
            other => TokenError::KeysUnavailable(other.to_string()),
        })?;
        let url = provider.metadata.jwks_uri().url().clone();
        let fetched = self.fetch_keys(url).await;
        let mut set = self
            .keys
            .write()
            .map_err(|_| TokenError::KeysUnavailable("key cache poisoned".into()))?;
        set.fetched_at = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                log::info!("loaded {} signing key(s) from the realm's JWKS", keys.len());
                set.keys = keys;
                Ok(())
            }
            Err(why) => Err(TokenError::KeysUnavailable(why)),
        }
    }

    async fn fetch_keys(&self, url: url::Url) -> Result<HashMap<String, Arc<KeyEntry>>, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let body = crate::oidc::read_json(response).await?;
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

    fn cached(&self, hash: &[u8; 32]) -> Option<Arc<AccessClaims>> {
        let cache = self.cache.lock().ok()?;
        let hit = cache.get(hash)?;
        // Expired entries are refused here and swept on insert.
        (hit.claims.exp + self.leeway as i64 > now()).then(|| hit.claims.clone())
    }

    fn remember(&self, hash: [u8; 32], claims: &Arc<AccessClaims>) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_CAPACITY {
            let t = now();
            cache.retain(|_, c| c.claims.exp > t);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                claims: claims.clone(),
            },
        );
    }

    /// Drops every cached token of Keycloak subject `sub` (deactivation, logout).
    pub fn forget_subject(&self, sub: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, c| c.claims.sub != sub);
        }
    }

    /// Drops one cached token.
    pub fn forget_token(&self, token: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&digest(token));
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

fn is_asymmetric(alg: Algorithm) -> bool {
    use Algorithm::*;
    matches!(
        alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    )
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
fn key_allows(entry: &KeyEntry, alg: Algorithm) -> bool {
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

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::Signature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::Premature,
        K::InvalidIssuer => TokenError::Issuer,
        K::InvalidAudience => TokenError::Audience {
            expected: "this client".into(),
        },
        K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::Algorithm("mismatch".into()),
        K::MissingRequiredClaim(c) => TokenError::Malformed(format!("missing claim {c}")),
        other => TokenError::Malformed(format!("{other:?}")),
    }
}
