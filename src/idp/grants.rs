//! Talking to Keycloak as an OpenID Connect provider: discovery (cached, retried while Keycloak is
//! down), the authorization-code flow with state, nonce and PKCE, ID-token validation, userinfo,
//! refresh and the password grant.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreIdToken, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RefreshToken, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::db::now;
use crate::next_url::NextUrl;
use crate::session::{PendingLogin, Tokens};
use crate::settings::{Secret, Settings};

/// Keycloak's discovery fields that openidconnect's core metadata does not model.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct KeycloakMetadata {
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for KeycloakMetadata {}

pub type KeycloakProviderMetadata = ProviderMetadata<
    KeycloakMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

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

/// How long a discovery document (and the keys in it) is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Keycloak did not answer, or answered with a server error.
    #[error("identity provider unreachable: {0}")]
    Unavailable(String),
    /// Keycloak refused the grant (`invalid_grant` and friends).
    #[error("identity provider refused the request: {error}: {description}")]
    Rejected { error: String, description: String },
    /// The ID token failed validation.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// A discovered provider: the configured client and the metadata it came from.
pub struct Provider {
    client: Client,
    pub metadata: KeycloakProviderMetadata,
    fetched_at: Instant,
}

/// What a successful login or grant yields.
pub struct GrantResult {
    pub sub: String,
    /// ID-token claims, overlaid with userinfo when Keycloak answered it.
    pub claims: Value,
    pub tokens: Tokens,
    pub kc_sid: Option<String>,
}

/// The HTTP client openidconnect talks through: reqwest, plus one rule: a 5xx answer is the
/// provider being unavailable (503 for the user), not a malformed response.
pub struct IdpHttp(openidconnect::reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    #[error(transparent)]
    Transport(#[from] openidconnect::HttpClientError<openidconnect::reqwest::Error>),
    #[error("the identity provider answered {0}")]
    ServerError(u16),
}

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, IdpHttpError>>
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.call(request).await?;
            if response.status().is_server_error() {
                return Err(IdpHttpError::ServerError(response.status().as_u16()));
            }
            Ok(response)
        })
    }
}

pub struct Oidc {
    http: openidconnect::reqwest::Client,
    idp: IdpHttp,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Secret<String>,
    redirect_url: RedirectUrl,
    /// Clock skew tolerated on the ID token's `iat`.
    leeway: i64,
    cache: RwLock<Option<Arc<Provider>>>,
}

impl Oidc {
    pub fn new(settings: &Settings, public_url: &Url) -> anyhow::Result<Self> {
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects from the provider would open SSRF paths; none are expected.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()?;
        let issuer = IssuerUrl::new(settings.issuer_url.as_str().trim_end_matches('/').into())?;
        let redirect_url = RedirectUrl::new(format!(
            "{}/login/callback",
            public_url.as_str().trim_end_matches('/')
        ))?;
        Ok(Oidc {
            idp: IdpHttp(http.clone()),
            http,
            issuer,
            client_id: ClientId::new(settings.client_id.clone()),
            client_secret: settings.client_secret.clone(),
            redirect_url,
            leeway: settings.leeway.as_secs() as i64,
            cache: RwLock::new(None),
        })
    }

    pub fn http(&self) -> &openidconnect::reqwest::Client {
        &self.http
    }

    /// The discovered provider, fetched on first use and again when stale. While Keycloak is down
    /// this fails with [`OidcError::Unavailable`] and the next call tries again, so keygate recovers
    /// without a restart.
    pub async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        if let Some(p) = self.cached() {
            if p.fetched_at.elapsed() < DISCOVERY_TTL {
                return Ok(p);
            }
        }
        self.discover().await
    }

    fn cached(&self) -> Option<Arc<Provider>> {
        self.cache.read().ok().and_then(|c| c.clone())
    }

    async fn discover(&self) -> Result<Arc<Provider>, OidcError> {
        let metadata = KeycloakProviderMetadata::discover_async(self.issuer.clone(), &self.idp)
            .await
            .map_err(|e| {
                OidcError::Unavailable(format!(
                    "discovery of {} failed: {}",
                    self.issuer.as_str(),
                    error_chain(&e)
                ))
            })?;
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            self.client_id.clone(),
            Some(ClientSecret::new(self.client_secret.expose().clone())),
        )
        .set_redirect_uri(self.redirect_url.clone());
        let provider = Arc::new(Provider {
            client,
            metadata,
            fetched_at: Instant::now(),
        });
        if let Ok(mut slot) = self.cache.write() {
            *slot = Some(provider.clone());
        }
        Ok(provider)
    }

    /// Builds the authorization URL and the pending login that its callback must present.
    /// `login_hint` pre-fills Keycloak's username field (after registration).
    pub async fn authorize(
        &self,
        next: NextUrl,
        login_hint: Option<&str>,
    ) -> Result<(Url, PendingLogin), OidcError> {
        let provider = self.provider().await?;
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
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
            created_at: now(),
        };
        Ok((url, pending))
    }

    /// Exchanges an authorization code and validates the ID token against the pending login.
    pub async fn exchange_code(
        &self,
        pending: &PendingLogin,
        code: String,
    ) -> Result<GrantResult, OidcError> {
        let provider = self.provider().await?;
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| anyhow::anyhow!("provider has no token endpoint: {e}"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.idp)
            .await
            .map_err(token_error)?;
        let nonce = Nonce::new(pending.nonce.clone());
        self.finish_grant(response, Some(nonce)).await
    }

    /// Keycloak's direct access grant (the password form). Off unless configured.
    pub async fn password_grant(
        &self,
        username: &str,
        password: &str,
    ) -> Result<GrantResult, OidcError> {
        let provider = self.provider().await?;
        let response = provider
            .client
            .exchange_password(
                &ResourceOwnerUsername::new(username.into()),
                &ResourceOwnerPassword::new(password.into()),
            )
            .map_err(|e| anyhow::anyhow!("provider has no token endpoint: {e}"))?
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .request_async(&self.idp)
            .await
            .map_err(token_error)?;
        self.finish_grant(response, None).await
    }

    /// Uses a refresh token. The caller must make sure only one refresh of a session runs at a
    /// time: with refresh-token rotation the second one would fail.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, OidcError> {
        let provider = self.provider().await?;
        let response = provider
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.into()))
            .map_err(|e| anyhow::anyhow!("provider has no token endpoint: {e}"))?
            .request_async(&self.idp)
            .await
            .map_err(token_error)?;
        require_bearer(&response)?;
        Ok(tokens_of(&response, Some(refresh_token)))
    }

    /// Revokes a refresh token at Keycloak (RFC 7009). Best effort: the caller logs failures.
    pub async fn revoke_refresh_token(&self, refresh_token: &str) -> Result<(), OidcError> {
        let provider = self.provider().await?;
        let Some(endpoint) = provider
            .metadata
            .additional_metadata()
            .revocation_endpoint
            .clone()
        else {
            return Err(OidcError::Unexpected(anyhow::anyhow!(
                "the provider advertises no revocation endpoint"
            )));
        };
        let response = self
            .http
            .post(endpoint)
            .form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose().as_str()),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(error_chain(&e)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(OidcError::Rejected {
                error: format!("revocation answered {}", response.status()),
                description: String::new(),
            })
        }
    }

    /// Keycloak's RP-initiated logout URL, or `None` when the provider has none (or is down).
    pub async fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect: &str,
    ) -> Option<Url> {
        let provider = self.provider().await.ok()?;
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
            q.append_pair("client_id", self.client_id.as_str());
            q.append_pair("post_logout_redirect_uri", post_logout_redirect);
        }
        Some(url)
    }

    async fn finish_grant(
        &self,
        response: CoreTokenResponse,
        nonce: Option<Nonce>,
    ) -> Result<GrantResult, OidcError> {
        require_bearer(&response)?;
        let id_token = response.id_token().ok_or_else(|| {
            OidcError::InvalidIdToken("the token response has no ID token".into())
        })?;
        let provider = self.provider().await?;
        let claims = match self.verify_id_token(&provider, id_token, &response, nonce.as_ref()) {
            Err(OidcError::InvalidIdToken(why)) if why.starts_with("signature") => {
                // The realm may have a key newer than our discovery: rotated, or created on first
                // use (Keycloak makes an ES256 key when it first signs with ES256). Fetch again,
                // at once: ID tokens come from our own authenticated request to the token
                // endpoint, so no client can use this to make keygate hammer Keycloak.
                let fresh = self.discover().await?;
                self.verify_id_token(&fresh, id_token, &response, nonce.as_ref())?
            }
            other => other?,
        };
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::InvalidIdToken("no sub claim".into()))?
            .to_string();
        let claims = self
            .overlay_userinfo(&provider, response.access_token().secret(), &sub, claims)
            .await;
        let kc_sid = claims.get("sid").and_then(Value::as_str).map(String::from);
        Ok(GrantResult {
            sub,
            claims,
            tokens: tokens_of(&response, None),
            kc_sid,
        })
    }

    /// Validates signature (JWKS), `iss`, `aud`, `azp`, `exp`, `iat`, the nonce and `at_hash`, and
    /// returns the token's claims as JSON (Keycloak's extra claims such as `sid` included).
    fn verify_id_token(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
    ) -> Result<Value, OidcError> {
        let leeway = self.leeway;
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
        .map_err(id_token_error)?;

        if let Some(expected) = verified.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| OidcError::InvalidIdToken(format!("signing algorithm: {e}")))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| OidcError::InvalidIdToken(format!("signature key: {e}")))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| OidcError::InvalidIdToken(format!("at_hash: {e}")))?;
            if actual != *expected {
                return Err(OidcError::InvalidIdToken(
                    "at_hash does not match the access token".into(),
                ));
            }
        }
        // openidconnect has verified this exact compact JWT; read all of its claims back out.
        let claims = jwt_payload(&id_token.to_string())
            .ok_or_else(|| OidcError::InvalidIdToken("unreadable claims".into()))?;
        self.check_authorized_party(&claims)?;
        Ok(claims)
    }

    /// OpenID Connect Core 3.1.3.7 steps 4 and 5: with several audiences `azp` is required, and
    /// when present it must be our client id.
    fn check_authorized_party(&self, claims: &Value) -> Result<(), OidcError> {
        let several = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp") {
            Some(Value::String(azp)) if azp == self.client_id.as_str() => Ok(()),
            Some(_) => Err(OidcError::InvalidIdToken("azp is not this client".into())),
            None if several => Err(OidcError::InvalidIdToken(
                "several audiences but no azp".into(),
            )),
            None => Ok(()),
        }
    }

    /// Merges userinfo into the claims when Keycloak answers it; otherwise logs why and keeps the
    /// ID token's claims. Userinfo is a convenience, never a reason to fail a login.
    async fn overlay_userinfo(
        &self,
        provider: &Provider,
        access_token: &str,
        sub: &str,
        mut claims: Value,
    ) -> Value {
        let Some(endpoint) = provider.metadata.userinfo_endpoint() else {
            return claims;
        };
        let result = self
            .http
            .get(endpoint.url().clone())
            .bearer_auth(access_token)
            .send()
            .await;
        let response = match result {
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
        match read_json(response).await {
            Ok(Value::Object(info)) => {
                // The spec requires userinfo's sub to equal the ID token's; otherwise ignore it.
                if info.get("sub").and_then(Value::as_str) != Some(sub) {
                    log::warn!("userinfo sub differs from the ID token's; ignoring userinfo");
                    return claims;
                }
                if let Value::Object(map) = &mut claims {
                    // Profile claims only: what the ID token vouches for (issuer, audience,
                    // session, times) is not userinfo's to change.
                    for (k, v) in info {
                        if !ID_TOKEN_ONLY.contains(&k.as_str()) {
                            map.insert(k, v);
                        }
                    }
                }
                claims
            }
            _ => {
                log::warn!("userinfo returned unreadable JSON; using ID token claims");
                claims
            }
        }
    }
}

/// RFC 6749 7.1: a client must not use a token whose type it does not understand; keygate hands
/// access tokens out as Bearer tokens.
fn require_bearer(response: &CoreTokenResponse) -> Result<(), OidcError> {
    match response.token_type() {
        openidconnect::core::CoreTokenType::Bearer => Ok(()),
        other => Err(OidcError::InvalidIdToken(format!(
            "token type {:?} is not Bearer",
            other.as_ref()
        ))),
    }
}

fn tokens_of(response: &CoreTokenResponse, old_refresh: Option<&str>) -> Tokens {
    let expires_in = response
        .expires_in()
        .map(|d| d.as_secs() as i64)
        .unwrap_or(300);
    Tokens {
        access_token: response.access_token().secret().clone(),
        access_issued_at: now(),
        access_expires_at: now() + expires_in,
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
) -> OidcError
where
    RE: std::error::Error + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => OidcError::Rejected {
            error: r.error().to_string(),
            description: r.error_description().cloned().unwrap_or_default(),
        },
        RequestTokenError::Request(e) => OidcError::Unavailable(error_chain(&e)),
        // A token response we cannot read is the provider's fault, not ours: refuse the login.
        RequestTokenError::Parse(e, _) => {
            OidcError::InvalidIdToken(format!("unreadable token response: {e}"))
        }
        RequestTokenError::Other(e) => OidcError::Unavailable(e),
    }
}

fn id_token_error(e: ClaimsVerificationError) -> OidcError {
    let why = match &e {
        ClaimsVerificationError::SignatureVerification(inner) => format!("signature: {inner}"),
        other => other.to_string(),
    };
    OidcError::InvalidIdToken(why)
}

/// The decoded payload of a compact JWT, without any verification: only for tokens already
/// verified, or for reading claims that are then checked separately.
pub fn jwt_payload(jwt: &str) -> Option<Value> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Largest JSON body keygate reads from the identity provider (JWKS, userinfo, error bodies).
const MAX_PROVIDER_BODY: usize = 1024 * 1024;

/// Reads a provider's JSON answer, refusing bodies over [`MAX_PROVIDER_BODY`] so a misbehaving
/// provider cannot make keygate buffer without bound.
pub async fn read_json(mut response: reqwest::Response) -> Result<Value, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_PROVIDER_BODY as u64)
    {
        return Err("response body too large".into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_PROVIDER_BODY {
            return Err("response body too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("unreadable JSON: {e}"))
}

/// An error and its sources on one line, for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
