//! Userinfo: profile claims Keycloak may add to a login. A convenience, never a reason to fail a
//! login, and never allowed to change what the ID token vouches for.

use crate::idp::http::SendObserved;
use serde_json::Value;

use super::discovery::Provider;
use super::http::read_json;
use crate::util::error_chain;

/// Claims that keep the ID token's value when userinfo is merged in.
const ID_TOKEN_ONLY: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "sid",
    "auth_time",
    "at_hash",
];

/// Merges userinfo into `claims` when Keycloak answers it; otherwise logs why and keeps the ID
/// token's claims.
pub(super) async fn overlay(
    http: &reqwest::Client,
    provider: &Provider,
    access_token: &str,
    sub: &str,
    mut claims: Value,
) -> Value {
    let Some(endpoint) = provider.metadata.userinfo_endpoint() else {
        return claims;
    };
    let response = match http
        .get(endpoint.url().clone())
        .bearer_auth(access_token)
        .send_observed()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            log::warn!(
                "userinfo unreachable, using ID token claims: {}",
                error_chain(&e)
            );
            return claims;
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::FORBIDDEN {
        log::warn!(
            "userinfo answered 403: Keycloak does this when the access token lacks the \
             `openid` scope; using ID token claims"
        );
        return claims;
    }
    if !status.is_success() {
        log::warn!("userinfo answered {status}; using ID token claims");
        return claims;
    }
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        log::warn!("userinfo is not plain JSON (signed or encrypted?); using ID token claims");
        return claims;
    }
    let Ok(Value::Object(info)) = read_json(response).await else {
        log::warn!("userinfo returned unreadable JSON; using ID token claims");
        return claims;
    };
    // The spec requires userinfo's sub to equal the ID token's; otherwise ignore it.
    if info.get("sub").and_then(Value::as_str) != Some(sub) {
        log::warn!("userinfo sub differs from the ID token's; ignoring userinfo");
        return claims;
    }
    if let Value::Object(map) = &mut claims {
        for (k, v) in info {
            if !ID_TOKEN_ONLY.contains(&k.as_str()) {
                map.insert(k, v);
            }
        }
    }
    claims
}
