//! The HTTP client keygate talks to Keycloak through, and how it reads Keycloak's answers.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{error_chain, metrics};

/// Largest JSON body keygate reads from the identity provider (JWKS, userinfo, error bodies).
const MAX_PROVIDER_BODY: usize = 1024 * 1024;

/// A reqwest client for the provider: no redirects (following them would open SSRF paths, and
/// none are expected) and bounded waits, so a hanging Keycloak cannot hold a request forever.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()?)
}

/// openidconnect's HTTP client: reqwest, plus one rule: a 5xx answer is the provider being
/// unavailable (503 for the user), not a malformed response.
pub(crate) struct IdpHttp(pub reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub(crate) enum IdpHttpError {
    #[error(transparent)]
    Transport(#[from] openidconnect::HttpClientError<reqwest::Error>),
    #[error("the identity provider answered {0}")]
    ServerError(u16),
}

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, IdpHttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let endpoint = metrics::keycloak_endpoint(request.uri().path());
            let started = Instant::now();
            let response = self.0.call(request).await;
            let outcome = match &response {
                Ok(r) if r.status().is_server_error() => "server_error",
                Ok(r) if r.status().is_client_error() => "client_error",
                Ok(_) => "ok",
                Err(_) => "unreachable",
            };
            metrics::keycloak(endpoint, outcome, started.elapsed());
            let response = response?;
            if response.status().is_server_error() {
                return Err(IdpHttpError::ServerError(response.status().as_u16()));
            }
            Ok(response)
        })
    }
}

/// `send()` for keygate's own requests to Keycloak (keys, admin API, probes), counted and timed
/// by endpoint like openidconnect's.
pub(crate) trait SendObserved {
    /// Sends the request, recording its endpoint, outcome and latency.
    fn send_observed(
        self,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, reqwest::Error>> + Send;
}

impl SendObserved for reqwest::RequestBuilder {
    async fn send_observed(self) -> Result<reqwest::Response, reqwest::Error> {
        let (client, request) = self.build_split();
        let request = request?;
        let endpoint = metrics::keycloak_endpoint(request.url().path());
        let started = Instant::now();
        let response = client.execute(request).await;
        let outcome = match &response {
            Ok(r) if r.status().is_server_error() => "server_error",
            Ok(r) if r.status().is_client_error() => "client_error",
            Ok(_) => "ok",
            Err(_) => "unreachable",
        };
        metrics::keycloak(endpoint, outcome, started.elapsed());
        response
    }
}

/// Reads a provider's JSON answer, refusing bodies over [`MAX_PROVIDER_BODY`] so a misbehaving
/// provider cannot make keygate buffer without bound.
pub(crate) async fn read_json(mut response: reqwest::Response) -> Result<Value, String> {
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
