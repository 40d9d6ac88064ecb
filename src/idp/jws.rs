//! The signed-JWT check shared by access tokens and logout tokens: a compact JWS, no critical
//! header extensions, an asymmetric algorithm that a realm key allows, a valid signature, the
//! exact issuer and the time claims. Each kind of token then adds its own claim checks.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::jwks::{key_allows, Jwks};
use super::Unavailable;

/// Largest token keygate looks at; anything bigger is refused before parsing.
const MAX_TOKEN: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum TokenError {
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
    KeysUnavailable(#[from] Unavailable),
}

impl TokenError {
    /// The metrics label of the refusal.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::Algorithm(_) => "algorithm",
            TokenError::UnknownKey => "unknown_key",
            TokenError::Signature => "signature",
            TokenError::Expired => "expired",
            TokenError::Premature => "not_yet_valid",
            TokenError::Issuer => "issuer",
            TokenError::Audience { .. } => "audience",
            TokenError::NotAccessToken(_) => "not_access_token",
            TokenError::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}

/// Verifies `token`'s signature with a realm key and its `iss`, `exp` and `nbf` (with
/// `leeway`); `adjust` sets the rest of the validation for the kind of token. Returns the claims.
pub(super) async fn verify_signed(
    jwks: &Jwks,
    token: &str,
    issuer: &str,
    leeway: u64,
    adjust: impl FnOnce(&mut Validation),
) -> Result<Value, TokenError> {
    if token.len() > MAX_TOKEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed("not a compact JWS".into()));
    }
    let header = parse_header(token)?;
    // RFC 7515 4.1.11: extensions marked critical must be understood; keygate knows none.
    if header.crit.is_some() {
        return Err(TokenError::Malformed("critical header extensions".into()));
    }
    let alg = header.alg;
    if !is_asymmetric(alg) {
        return Err(TokenError::Algorithm(format!("{alg:?}")));
    }
    let entry = jwks.key_for(header.kid.as_deref(), alg).await?;
    if !key_allows(&entry, alg) {
        return Err(TokenError::Algorithm(format!("{alg:?} for this key")));
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.leeway = leeway;
    validation.validate_nbf = true;
    adjust(&mut validation);
    let data =
        jsonwebtoken::decode::<Value>(token, &entry.key, &validation).map_err(map_jwt_error)?;
    Ok(data.claims)
}

/// The JOSE header. Its decoder's messages quote what the token says (an unknown `alg` comes back
/// verbatim, newlines included), so they never reach a log line or an answer: a fixed text does.
fn parse_header(token: &str) -> Result<jsonwebtoken::Header, TokenError> {
    jsonwebtoken::decode_header(token).map_err(|_| {
        TokenError::Malformed("unreadable header (not base64url JSON, or an unknown alg)".into())
    })
}

fn is_asymmetric(alg: Algorithm) -> bool {
    use Algorithm::*;
    matches!(
        alg,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 | ES256 | ES384 | EdDSA
    )
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
        // The rest (base64, JSON, UTF-8 of the payload) may quote the token: a fixed text.
        _ => TokenError::Malformed("unreadable claims".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn a_hostile_header_never_reaches_the_error_text() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256\n[ERROR] forged log line","typ":"JWT"}"#),
            b64("{}")
        );
        let message = parse_header(&token).unwrap_err().to_string();
        assert!(
            !message.contains('\n') && !message.contains("forged"),
            "{message}"
        );
    }
}
