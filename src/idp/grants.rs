//! The grant operations of keygate's confidential client: the authorization-code flow with
//! state, nonce and PKCE, the password grant, refresh, revocation and RP-initiated logout.

use crate::idp::http::SendObserved;
use std::sync::Arc;

use openidconnect::core::{CoreAuthenticationFlow, CoreTokenResponse};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RefreshToken, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
    TokenResponse,
};
use serde_json::Value;
use url::Url;

use super::discovery::Discovery;
use super::{id_token, userinfo, Unavailable};
use crate::util::{error_chain, now};

#[derive(Debug, thiserror::Error)]
pub(crate) enum GrantError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// Keycloak refused the grant (`invalid_grant` and friends).
    #[error("identity provider refused the request: {error}: {description}")]
    Rejected { error: String, description: String },
    /// The ID token or the token response failed validation.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The tokens of one grant, with the times keygate received and will stop using them.
#[derive(Clone, Debug)]
pub(crate) struct TokenSet {
    pub access_token: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// What a successful login grant yields.
pub(crate) struct GrantResult {
    pub sub: String,
    /// ID-token claims, overlaid with userinfo when Keycloak answered it.
    pub claims: Value,
    pub tokens: TokenSet,
    pub kc_sid: Option<String>,
}

/// An authorization request on its way to Keycloak, and the secrets its callback must match.
pub(crate) struct AuthRequest {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub(crate) struct Grants {
    discovery: Arc<Discovery>,
    /// Clock skew tolerated on the ID token's `iat`.
    leeway: i64,
}

impl Grants {
    pub(crate) fn new(discovery: Arc<Discovery>, leeway: std::time::Duration) -> Self {
        Grants {
            discovery,
            leeway: leeway.as_secs() as i64,
        }
    }

    /// Builds the authorization URL with a fresh state, nonce and PKCE S256 challenge.
    /// `login_hint` pre-fills Keycloak's username field (after registration).
    /// Fails while Keycloak does not answer (a short probe, kept for a moment), so that no
    /// browser is sent to a login page that is down.
    pub(crate) async fn authorize(
        &self,
        login_hint: Option<&str>,
    ) -> Result<AuthRequest, Unavailable> {
        self.discovery.reachable().await?;
        let provider = self.discovery.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        if let Some(hint) = login_hint {
            request =
                request.add_extra_param("login_hint", hint.chars().take(100).collect::<String>());
        }
        let (url, state, nonce) = request
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(AuthRequest {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// The issuer an authorization response must name (RFC 9207), exactly as discovery gave it,
    /// and whether the provider promised to name it in every response.
    pub(crate) async fn response_issuer(&self) -> Result<(String, bool), Unavailable> {
        let provider = self.discovery.provider().await?;
        let required = provider
            .metadata
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true);
        Ok((provider.metadata.issuer().as_str().to_string(), required))
    }

    /// Exchanges an authorization code and validates the ID token against the login's nonce.
    pub(crate) async fn exchange_code(
        &self,
        code: String,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<GrantResult, GrantError> {
        let provider = self.discovery.provider().await?;
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(no_token_endpoint)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(self.discovery.idp_http())
            .await
            .map_err(token_error)?;
        self.finish_grant(response, Some(Nonce::new(nonce.to_string())))
            .await
    }

    /// Keycloak's direct access grant (the password form). Off unless configured.
    pub(crate) async fn password_grant(
        &self,
        username: &str,
        password: &str,
    ) -> Result<GrantResult, GrantError> {
        let provider = self.discovery.provider().await?;
        let response = provider
            .client
            .exchange_password(
                &ResourceOwnerUsername::new(username.into()),
                &ResourceOwnerPassword::new(password.into()),
            )
            .map_err(no_token_endpoint)?
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .request_async(self.discovery.idp_http())
            .await
            .map_err(token_error)?;
        self.finish_grant(response, None).await
    }

    /// Fetches discovery now if it is not cached, so that a refresh under a lease waits on
    /// nothing but its token request.
    pub(crate) async fn ready(&self) -> Result<(), Unavailable> {
        self.discovery.provider().await.map(|_| ())
    }

    /// Uses a refresh token. The caller must make sure only one refresh of a session runs at a
    /// time: with refresh-token rotation the second one would fail.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, GrantError> {
        let provider = self.discovery.provider().await?;
        let response = provider
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.into()))
            .map_err(no_token_endpoint)?
            .request_async(self.discovery.idp_http())
            .await
            .map_err(token_error)?;
        require_bearer(&response)?;
        Ok(tokens_of(&response, Some(refresh_token)))
    }

    /// Revokes a refresh token at Keycloak (RFC 7009). Best effort: the caller logs failures.
    pub(crate) async fn revoke_refresh_token(&self, refresh_token: &str) -> Result<(), GrantError> {
        let provider = self.discovery.provider().await?;
        let Some(endpoint) = provider
            .metadata
            .additional_metadata()
            .revocation_endpoint
            .clone()
        else {
            return Err(anyhow::anyhow!("the provider advertises no revocation endpoint").into());
        };
        let response = self
            .discovery
            .http()
            .post(endpoint)
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", self.discovery.client_id()),
                ("client_secret", self.discovery.client_secret()),
            ])
            .send_observed()
            .await
            .map_err(|e| Unavailable(error_chain(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(GrantError::Rejected {
                error: format!("revocation answered {}", response.status()),
                description: String::new(),
            })
        }
    }

    /// Keycloak's RP-initiated logout URL, or `None` when the provider has none (or is down).
    pub(crate) async fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect: &str,
    ) -> Option<Url> {
        let provider = self.discovery.provider().await.ok()?;
        let endpoint = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = Url::parse(&endpoint).ok()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", self.discovery.client_id());
            q.append_pair("post_logout_redirect_uri", post_logout_redirect);
        }
        Some(url)
    }

    async fn finish_grant(
        &self,
        response: CoreTokenResponse,
        nonce: Option<Nonce>,
    ) -> Result<GrantResult, GrantError> {
        require_bearer(&response)?;
        let id_token = response.id_token().ok_or_else(|| {
            GrantError::InvalidIdToken("the token response has no ID token".into())
        })?;
        let provider = self.discovery.provider().await?;
        let check = |provider| {
            id_token::verify(
                provider,
                id_token,
                &response,
                nonce.as_ref(),
                self.discovery.client_id(),
                self.leeway,
            )
        };
        let claims = match check(&provider) {
            Err(GrantError::InvalidIdToken(why)) if why.starts_with("signature") => {
                // The realm may have a key newer than our discovery: rotated, or created on first
                // use (Keycloak makes an ES256 key when it first signs with ES256). Fetch again,
                // at once: ID tokens come from our own authenticated request to the token
                // endpoint, so no client can use this to make keygate hammer Keycloak.
                let fresh = self.discovery.rediscover().await?;
                check(&fresh)?
            }
            other => other?,
        };
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| GrantError::InvalidIdToken("no sub claim".into()))?
            .to_string();
        let claims = userinfo::overlay(
            self.discovery.http(),
            &provider,
            response.access_token().secret(),
            &sub,
            claims,
        )
        .await;
        let kc_sid = claims.get("sid").and_then(Value::as_str).map(String::from);
        Ok(GrantResult {
            sub,
            claims,
            tokens: tokens_of(&response, None),
            kc_sid,
        })
    }
}

fn no_token_endpoint(e: openidconnect::ConfigurationError) -> GrantError {
    anyhow::anyhow!("provider has no token endpoint: {e}").into()
}

/// RFC 6749 7.1: a client must not use a token whose type it does not understand; keygate hands
/// access tokens out as Bearer tokens.
fn require_bearer(response: &CoreTokenResponse) -> Result<(), GrantError> {
    match response.token_type() {
        openidconnect::core::CoreTokenType::Bearer => Ok(()),
        other => Err(GrantError::InvalidIdToken(format!(
            "token type {:?} is not Bearer",
            other.as_ref()
        ))),
    }
}

fn tokens_of(response: &CoreTokenResponse, old_refresh: Option<&str>) -> TokenSet {
    let expires_in = response
        .expires_in()
        .map(|d| d.as_secs() as i64)
        .unwrap_or(300);
    TokenSet {
        access_token: response.access_token().secret().clone(),
        issued_at: now(),
        expires_at: now().saturating_add(expires_in),
        // Without rotation Keycloak may send no new refresh token; keep the old one then.
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| old_refresh.map(String::from)),
        id_token: response.id_token().map(|t| t.to_string()),
    }
}

fn token_error<RE>(
    e: RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> GrantError
where
    RE: std::error::Error + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => GrantError::Rejected {
            error: r.error().to_string(),
            description: r.error_description().cloned().unwrap_or_default(),
        },
        RequestTokenError::Request(e) => Unavailable(error_chain(&e)).into(),
        // A token response we cannot read is the provider's fault, not ours: refuse the login.
        RequestTokenError::Parse(e, _) => {
            GrantError::InvalidIdToken(format!("unreadable token response: {e}"))
        }
        RequestTokenError::Other(e) => Unavailable(e).into(),
    }
}
