//! keygate's Prometheus metrics, one registry for the process. Every layer counts what it does
//! through the functions here; no label ever carries a user name, a token, an address or a raw
//! path (routes are actix's patterns, `/admin/users/{id}`).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

fn latency() -> Histogram {
    // 0.5 ms to about 8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<Outcome, Counter>,
    bearer: Family<ResultLabel, Counter>,
    jwks_fetches: Family<Outcome, Counter>,
    discovery_fetches: Family<Outcome, Counter>,
    keycloak: Family<EndpointLabels, Counter>,
    keycloak_duration: Family<Endpoint, Histogram, fn() -> Histogram>,
    cache: Family<CacheLabels, Counter>,
    sessions_open: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("keygate");
    let m = Metrics {
        http_requests: Family::default(),
        http_duration: Family::new_with_constructor(latency),
        logins: Family::default(),
        refreshes: Family::default(),
        bearer: Family::default(),
        jwks_fetches: Family::default(),
        discovery_fetches: Family::default(),
        keycloak: Family::default(),
        keycloak_duration: Family::new_with_constructor(latency),
        cache: Family::default(),
        sessions_open: Gauge::default(),
        registry: Registry::default(),
    };
    registry.register(
        "http_requests",
        "HTTP requests by route pattern, method and status",
        m.http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency by route pattern and method",
        m.http_duration.clone(),
    );
    registry.register(
        "logins",
        "Sign-ins by method (code, password, registration) and outcome",
        m.logins.clone(),
    );
    registry.register("refreshes", "Session token refreshes: done, refused by Keycloak, waited on another's lease, unavailable", m.refreshes.clone());
    registry.register(
        "bearer_validations",
        "Bearer token validations by result",
        m.bearer.clone(),
    );
    registry.register(
        "jwks_fetches",
        "Fetches of the realm's keys by outcome",
        m.jwks_fetches.clone(),
    );
    registry.register(
        "discovery_fetches",
        "Fetches of the discovery document by outcome",
        m.discovery_fetches.clone(),
    );
    registry.register(
        "keycloak_requests",
        "Requests to Keycloak by endpoint and outcome",
        m.keycloak.clone(),
    );
    registry.register(
        "keycloak_request_duration_seconds",
        "Latency of requests to Keycloak by endpoint",
        m.keycloak_duration.clone(),
    );
    registry.register(
        "cache_lookups",
        "Cache lookups by cache (tokens, users, browsers) and result",
        m.cache.clone(),
    );
    registry.register(
        "sessions_open",
        "Signed-in sessions that have not expired (refreshed every 30 s)",
        m.sessions_open.clone(),
    );
    Metrics { registry, ..m }
});

/// The metrics in Prometheus' text format.
pub(crate) fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &METRICS.registry).is_err() {
        log::error!("could not encode the metrics");
    }
    out
}

/// One HTTP request served: `route` is the matched pattern (or a fixed word), never the path.
pub(crate) fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let (route, method) = (route.to_string(), method.to_string());
    METRICS
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(took.as_secs_f64());
    METRICS
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status,
        })
        .inc();
}

/// A sign-in attempt: `method` is `code`, `password` or `registration`.
pub(crate) fn login(method: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .logins
        .get_or_create(&LoginLabels { method, outcome })
        .inc();
}

/// A refresh: `done`, `refused`, `waited` or `unavailable`.
pub(crate) fn refresh(outcome: &'static str) {
    METRICS.refreshes.get_or_create(&Outcome { outcome }).inc();
}

/// A bearer token checked: `ok`, `revoked`, or why it was refused (`expired`, `audience`, …).
pub(crate) fn bearer(result: &'static str) {
    METRICS.bearer.get_or_create(&ResultLabel { result }).inc();
}

/// A fetch of the realm's keys.
pub(crate) fn jwks_fetch(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .jwks_fetches
        .get_or_create(&Outcome { outcome })
        .inc();
}

/// A fetch of the discovery document.
pub(crate) fn discovery_fetch(ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .discovery_fetches
        .get_or_create(&Outcome { outcome })
        .inc();
}

/// A request to Keycloak's `endpoint` (token, userinfo, certs, …) and how it went.
pub(crate) fn keycloak(endpoint: &'static str, outcome: &'static str, took: Duration) {
    METRICS
        .keycloak
        .get_or_create(&EndpointLabels { endpoint, outcome })
        .inc();
    METRICS
        .keycloak_duration
        .get_or_create(&Endpoint { endpoint })
        .observe(took.as_secs_f64());
}

/// A lookup in one of keygate's caches.
pub(crate) fn cache(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    METRICS
        .cache
        .get_or_create(&CacheLabels { cache, result })
        .inc();
}

/// The number of open sessions, as last counted.
pub(crate) fn sessions_open(n: i64) {
    METRICS.sessions_open.set(n);
}

/// Which of Keycloak's endpoints a URL path is, for the `endpoint` label.
pub(crate) fn keycloak_endpoint(path: &str) -> &'static str {
    const KNOWN: [(&str, &str); 8] = [
        ("/.well-known/openid-configuration", "discovery"),
        ("/protocol/openid-connect/token/introspect", "introspect"),
        ("/protocol/openid-connect/token", "token"),
        ("/protocol/openid-connect/userinfo", "userinfo"),
        ("/protocol/openid-connect/certs", "certs"),
        ("/protocol/openid-connect/revoke", "revoke"),
        ("/protocol/openid-connect/logout", "logout"),
        ("/admin/realms/", "admin"),
    ];
    KNOWN
        .iter()
        .find(|(part, _)| path.contains(part))
        .map_or("other", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_every_family_and_no_raw_paths() {
        http_request("/admin/users/{id}", "GET", 200, Duration::from_millis(3));
        login("code", true);
        let text = render();
        for name in [
            "keygate_http_requests_total",
            "keygate_http_request_duration_seconds_bucket",
            "keygate_logins_total",
            "keygate_sessions_open",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
        assert!(text.contains(r#"route="/admin/users/{id}""#));
        assert_eq!(
            keycloak_endpoint("/realms/x/protocol/openid-connect/token"),
            "token"
        );
        assert_eq!(keycloak_endpoint("/admin/realms/x/users"), "admin");
    }
}
