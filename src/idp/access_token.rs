//! Local validation of Keycloak access tokens (bearer tokens and the TOKEN cookie).
//!
//! The signature and time checks are [`jws::verify_signed`](super::jws); then `typ` = Bearer (an
//! ID token is not an access token), the audience (or, opted in, `azp`), `sub` and `iat`. Tokens
//! that passed are cached until they expire, so the hot path skips the signature check.

use std::sync::Arc;

use serde_json::Value;

use super::jwks::Jwks;
use super::jws::{verify_signed, TokenError};
use super::token_cache::{digest, TokenCache};
use crate::settings::Settings;
use crate::util::now;

/// The claims of a validated access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessClaims {
    pub sub: String,
    pub exp: i64,
    pub claims: Arc<Value>,
}

pub(crate) struct AccessTokens {
    jwks: Arc<Jwks>,
    issuer: String,
    audience: String,
    client_id: String,
    accept_azp: bool,
    leeway: u64,
    use_cache: bool,
    cache: TokenCache,
}

impl AccessTokens {
    pub(crate) fn new(settings: &Settings, jwks: Arc<Jwks>) -> Self {
        AccessTokens {
            jwks,
            issuer: settings.issuer().to_string(),
            audience: settings.audience.clone(),
            client_id: settings.client_id.clone(),
            accept_azp: settings.accept_azp,
            leeway: settings.leeway.as_secs(),
            use_cache: settings.token_cache,
            cache: TokenCache::default(),
        }
    }

    /// Validates `token` as an access token of our realm for our audience.
    pub(crate) async fn validate(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        if !self.use_cache {
            return self.verify(token).await.map(Arc::new);
        }
        let hash = digest(token);
        if let Some(hit) = self.cache.get(&hash, self.leeway as i64) {
            return Ok(hit);
        }
        let claims = Arc::new(self.verify(token).await?);
        self.cache.put(hash, &claims);
        Ok(claims)
    }

    /// Full validation, no cache: signature, then claims.
    async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let claims = verify_signed(&self.jwks, token, &self.issuer, self.leeway, |v| {
            v.set_required_spec_claims(&["exp", "iss", "sub"]);
            // Checked in check_claims: `aud`, or `azp` when configured.
            v.validate_aud = false;
        })
        .await?;
        self.check_claims(claims)
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

    /// Drops every cached token of Keycloak subject `sub` (deactivation, logout).
    pub(crate) fn forget_subject(&self, sub: &str) {
        self.cache.forget_subject(sub);
    }
}
