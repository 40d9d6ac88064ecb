//! Discovery: the realm's metadata, fetched on first use, cached for an hour and fetched again
//! while Keycloak is down on every call, so keygate recovers without a restart. Every idp client
//! holds one shared [`Discovery`].

use crate::idp::http::SendObserved;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, ProviderMetadata, RedirectUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::http::IdpHttp;
use super::Unavailable;
use crate::settings::{Secret, Settings};
use crate::util::error_chain;

/// How long a discovery document (and the keys in it) is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Keycloak's discovery fields that openidconnect's core metadata does not model.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct KeycloakMetadata {
    pub end_session_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    /// RFC 9207: the provider names itself in every authorization response (Keycloak does).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for KeycloakMetadata {}

pub(crate) type KeycloakProviderMetadata = ProviderMetadata<
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

pub(crate) type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A discovered provider: keygate's client configured from the metadata it came from.
pub(crate) struct Provider {
    pub client: Client,
    pub metadata: KeycloakProviderMetadata,
    fetched_at: Instant,
}

impl Provider {
    pub(crate) fn token_endpoint(&self) -> Option<Url> {
        self.metadata.token_endpoint().map(|u| u.url().clone())
    }
}

/// How long the answer of a reachability probe stands.
const PROBE_TTL: Duration = Duration::from_secs(2);
/// How long a probe may take: a browser about to be sent to Keycloak should not wait long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// keygate's client at Keycloak, and the realm's metadata as last discovered.
pub(crate) struct Discovery {
    idp: IdpHttp,
    /// The last probe: when, and whether Keycloak answered.
    probe: RwLock<Option<(Instant, Result<(), Unavailable>)>>,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Secret<String>,
    redirect_url: RedirectUrl,
    cache: RwLock<Option<Arc<Provider>>>,
    /// The last time Keycloak answered discovery or a probe, and the last failure.
    contact: RwLock<Contact>,
}

/// What readiness reports of the identity provider.
#[derive(Clone, Debug, Default)]
pub(crate) struct Contact {
    /// Unix seconds of the last answer.
    pub last_success: Option<i64>,
    /// The last failure: when, and why.
    pub last_error: Option<(i64, String)>,
}

impl Discovery {
    /// The discovery document is in memory (whatever its age).
    pub(crate) fn cached(&self) -> bool {
        self.cache.read().is_ok_and(|c| c.is_some())
    }

    /// When Keycloak last answered, and the last failure.
    pub(crate) fn contact(&self) -> Contact {
        self.contact.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, answer: &Result<(), Unavailable>) {
        if let Ok(mut c) = self.contact.write() {
            match answer {
                Ok(()) => c.last_success = Some(crate::util::now()),
                Err(e) => c.last_error = Some((crate::util::now(), e.0.clone())),
            }
        }
    }

    pub(crate) fn new(
        settings: &Settings,
        public_url: &Url,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        let issuer = IssuerUrl::new(settings.issuer().into())?;
        let redirect_url = RedirectUrl::new(format!(
            "{}/login/callback",
            public_url.as_str().trim_end_matches('/')
        ))?;
        Ok(Discovery {
            idp: IdpHttp(http),
            issuer,
            client_id: ClientId::new(settings.client_id.clone()),
            client_secret: settings.client_secret.clone(),
            redirect_url,
            cache: RwLock::new(None),
            probe: RwLock::new(None),
            contact: RwLock::new(Contact::default()),
        })
    }

    /// The HTTP client every idp call goes through.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.idp.0
    }

    /// The same client, as openidconnect's request functions want it.
    pub(crate) fn idp_http(&self) -> &IdpHttp {
        &self.idp
    }

    pub(crate) fn client_id(&self) -> &str {
        self.client_id.as_str()
    }

    pub(crate) fn client_secret(&self) -> &str {
        self.client_secret.expose()
    }

    /// The discovered provider, fetched on first use and again when stale. While Keycloak is
    /// down this fails and the next call tries again.
    pub(crate) async fn provider(&self) -> Result<Arc<Provider>, Unavailable> {
        if let Some(p) = self.cache.read().ok().and_then(|c| c.clone()) {
            if p.fetched_at.elapsed() < DISCOVERY_TTL {
                return Ok(p);
            }
        }
        self.rediscover().await
    }

    /// Whether Keycloak answers right now: a short GET of the discovery document, its answer
    /// kept for [`PROBE_TTL`]. For sending a browser to Keycloak's login page, which the cached
    /// metadata alone would do while Keycloak is down.
    pub(crate) async fn reachable(&self) -> Result<(), Unavailable> {
        if let Some((at, answer)) = self.probe.read().ok().and_then(|p| p.clone()) {
            if at.elapsed() < PROBE_TTL {
                return answer;
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer.as_str());
        let answer = match self
            .idp
            .0
            .get(&url)
            .timeout(PROBE_TIMEOUT)
            .send_observed()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Unavailable(format!("{url} answered {}", r.status()))),
            Err(e) => Err(Unavailable(format!("{url}: {}", error_chain(&e)))),
        };
        if let Ok(mut slot) = self.probe.write() {
            *slot = Some((Instant::now(), answer.clone()));
        }
        self.record(&answer);
        answer
    }

    /// Fetches the metadata now, whatever the cache holds (a key newer than discovery).
    pub(crate) async fn rediscover(&self) -> Result<Arc<Provider>, Unavailable> {
        let metadata = KeycloakProviderMetadata::discover_async(self.issuer.clone(), &self.idp)
            .await
            .map_err(|e| {
                Unavailable(format!(
                    "discovery of {} failed: {}",
                    self.issuer.as_str(),
                    error_chain(&e)
                ))
            });
        self.record(&metadata.as_ref().map(|_| ()).map_err(Clone::clone));
        crate::util::metrics::discovery_fetch(metadata.is_ok());
        let metadata = metadata?;
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
}
