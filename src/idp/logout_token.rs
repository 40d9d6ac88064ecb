//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, 2.4 and 2.6): signature,
//! `iss`, `aud` = our client, `iat`, `exp` and `jti` required, the logout event, `sid` or `sub`,
//! and no `nonce`. Remembering each `jti` to refuse replays is the caller's (`domain::backchannel`).

use std::sync::Arc;

use serde_json::Value;

use super::jwks::Jwks;
use super::jws::{verify_signed, TokenError};
use crate::settings::Settings;
use crate::util::now;

/// The event a back-channel logout token must carry.
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token says to end.
#[derive(Debug, Clone)]
pub(crate) struct LogoutClaims {
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// The token's id and expiry: it must not be accepted twice before then.
    pub jti: String,
    pub exp: i64,
}

pub(crate) struct LogoutTokens {
    jwks: Arc<Jwks>,
    issuer: String,
    client_id: String,
    leeway: u64,
}

impl LogoutTokens {
    pub(crate) fn new(settings: &Settings, jwks: Arc<Jwks>) -> Self {
        LogoutTokens {
            jwks,
            issuer: settings.issuer().to_string(),
            client_id: settings.client_id.clone(),
            leeway: settings.leeway.as_secs(),
        }
    }

    /// Validates a `logout_token` and returns what it ends.
    pub(crate) async fn verify(&self, token: &str) -> Result<LogoutClaims, TokenError> {
        let client_id = self.client_id.clone();
        let claims = verify_signed(&self.jwks, token, &self.issuer, self.leeway, move |v| {
            v.set_required_spec_claims(&["iss", "aud", "exp"]);
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
        let jti = text("jti")
            .filter(|j| j.len() <= 255)
            .ok_or_else(|| bad("no jti"))?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("exp is not an integer"))?;
        Ok(LogoutClaims { sid, sub, jti, exp })
    }
}
