//! ID-token validation: what openidconnect checks (signature, `iss`, `aud`, `exp`, nonce), plus
//! what it leaves to us: asymmetric algorithms only, `iat` not in the future, `at_hash`, `azp`.

use openidconnect::core::{CoreIdToken, CoreJwsSigningAlgorithm, CoreTokenResponse};
use openidconnect::{AccessTokenHash, ClaimsVerificationError, Nonce, OAuth2TokenResponse};
use serde_json::Value;

use super::discovery::Provider;
use super::grants::GrantError;
use super::unverified;
use crate::util::now;

/// Signing algorithms keygate accepts on ID tokens: asymmetric only. Keycloak advertises HS256
/// too, but an HMAC ID token would be keyed with our own client secret, and `none` is never ok.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Validates signature (JWKS), `iss`, `aud`, `azp`, `exp`, `iat`, the nonce and `at_hash`, and
/// returns the token's claims as JSON (Keycloak's extra claims such as `sid` included).
pub(super) fn verify(
    provider: &Provider,
    id_token: &CoreIdToken,
    response: &CoreTokenResponse,
    nonce: Option<&Nonce>,
    client_id: &str,
    leeway: i64,
) -> Result<Value, GrantError> {
    let verifier = provider
        .client
        .id_token_verifier()
        .set_allowed_algs(ALLOWED_ALGS)
        // A realm may add audiences to ID tokens (an audience mapper with "add to ID token").
        // Such a token must then name us as its authorized party: checked below, since
        // openidconnect leaves `azp` alone.
        .set_other_audience_verifier_fn(|_| true)
        // openidconnect accepts any `iat`; a token from the future is forged or mis-clocked.
        .set_issue_time_verifier_fn(move |iat| {
            if iat.timestamp() > now() + leeway {
                Err("issued in the future".to_string())
            } else {
                Ok(())
            }
        });
    let verified = match nonce {
        Some(n) => id_token.claims(&verifier, n),
        // The password grant has no nonce to bind; the token came straight from the token
        // endpoint over our own request.
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(claims_error)?;

    if let Some(expected) = verified.access_token_hash() {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            GrantError::InvalidIdToken(format!("{what}: {e}"))
        };
        let alg = id_token
            .signing_alg()
            .map_err(|e| invalid("signing algorithm", &e))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| invalid("signature key", &e))?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|e| invalid("at_hash", &e))?;
        if actual != *expected {
            return Err(GrantError::InvalidIdToken(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    // openidconnect has verified this exact compact JWT; read all of its claims back out.
    let claims = unverified::claims(&id_token.to_string())
        .ok_or_else(|| GrantError::InvalidIdToken("unreadable claims".into()))?;
    check_authorized_party(&claims, client_id)?;
    Ok(claims)
}

/// OpenID Connect Core 3.1.3.7 steps 4 and 5: with several audiences `azp` is required, and
/// when present it must be our client id.
fn check_authorized_party(claims: &Value, client_id: &str) -> Result<(), GrantError> {
    let several = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        Some(_) => Err(GrantError::InvalidIdToken("azp is not this client".into())),
        None if several => Err(GrantError::InvalidIdToken(
            "several audiences but no azp".into(),
        )),
        None => Ok(()),
    }
}

fn claims_error(e: ClaimsVerificationError) -> GrantError {
    let why = match &e {
        ClaimsVerificationError::SignatureVerification(inner) => format!("signature: {inner}"),
        other => other.to_string(),
    };
    GrantError::InvalidIdToken(why)
}
