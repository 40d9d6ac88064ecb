//! Where the tests find Keycloak (environment variables, defaulting to `./scripts/keycloak.sh`'s
//! addresses), the demo realm's users, and the check that Keycloak answers at all.

use std::sync::Once;

pub const ALICE: (&str, &str) = ("alice", "alice-password");
pub const BOB: (&str, &str) = ("bob", "bob-password");

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn issuer() -> String {
    env_or("KEYGATE_ISSUER_URL", "http://127.0.0.1:8180/realms/keygate")
}

pub fn keycloak_base() -> String {
    env_or("KEYCLOAK_ADMIN_URL", "http://127.0.0.1:8180")
}

static LOGGER: Once = Once::new();

/// Fails loudly, with how to fix it, when Keycloak is not there.
pub async fn require_keycloak() {
    LOGGER.call_once(|| {
        let _ = env_logger::builder()
            .is_test(true)
            .parse_filters(&env_or("RUST_LOG", "warn"))
            .try_init();
    });
    let url = format!("{}/.well-known/openid-configuration", issuer());
    let ok = reqwest::get(&url)
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false);
    assert!(
        ok,
        "Keycloak is not answering at {url}.\nThese tests run against a real Keycloak: start it \
         with `./scripts/keycloak.sh start` (or run everything with `./scripts/test.sh`)."
    );
}
