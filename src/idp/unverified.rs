//! Reading a JWT's payload WITHOUT checking its signature or any claim.
//!
//! This must only be used on a token keygate has already verified (an ID token openidconnect
//! just checked), or one that came straight from Keycloak's token endpoint over keygate's own
//! authenticated request and is only read for non-security purposes (which subject to forget
//! from a cache at logout). Never use what it returns to decide who someone is or what they may
//! do: a forged token reads just as well.

use base64::Engine;
use serde_json::Value;

/// The decoded payload of a compact JWT, unverified: see the module's warning.
pub(crate) fn claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
