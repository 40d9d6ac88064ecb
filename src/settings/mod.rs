//! Settings, read once from the environment into typed values.
//!
//! Every variable is named in the error that rejects it, so a bad deployment fails at start-up with
//! one line that says what to fix. Secrets are wrapped in [`Secret`] and never print.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use url::Url;

mod names;
mod parse;
mod rules;

pub use rules::{Access, Rule, Rules};

use names::warn_about_unknown;
use parse::{
    parse_base_url, parse_bool, parse_config_file, parse_forwarded, parse_num, parse_range,
};

/// A value that must never reach a log line or an error message.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A setting that is missing or malformed: names the variable and what it expects.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    /// The variable, e.g. `KEYGATE_ISSUER_URL`.
    pub name: &'static str,
    /// What is wrong with it and what it expects.
    pub problem: String,
}

fn bad(name: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError {
        name,
        problem: problem.into(),
    }
}

/// Who may attach a first Keycloak login to an existing local user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPolicy {
    /// A Keycloak subject maps only to its own `social_accounts` row (the safe default).
    SubjectOnly,
    /// A first login may attach to a local user with the same email, if Keycloak says the email
    /// is verified. Only safe when every user of the realm proves ownership of their email.
    VerifiedEmail,
}

/// How keygate finds the client address behind reverse proxies it trusts.
#[derive(Clone, Debug, PartialEq)]
pub struct Forwarded {
    /// Which header the proxy writes (`KEYGATE_FORWARDED_HEADER`: `x-forwarded-for`, the default,
    /// or `forwarded`, RFC 7239). The other one is ignored.
    pub header: ForwardedHeader,
    /// How many proxies append to it (`KEYGATE_FORWARDED_HOPS`, default 1): the address is that
    /// many entries from the right, the one the outermost trusted proxy saw. Entries further left
    /// are what the client wrote and are never used.
    pub hops: usize,
    /// When set (`KEYGATE_TRUSTED_PROXIES`, comma-separated addresses), the header counts only on
    /// connections from these addresses.
    pub proxies: Vec<std::net::IpAddr>,
}

/// The header a trusted reverse proxy writes the client address into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// `Forwarded` (RFC 7239), its `for=` parameter.
    Forwarded,
}

/// keygate's configuration, parsed once from `KEYGATE_*` variables into typed values (see the
/// README's table for every variable and its default).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on (`KEYGATE_BIND`).
    pub bind: String,
    /// Public base URL (`KEYGATE_PUBLIC_URL`); `None` means "http:// + the bound address".
    pub public_url: Option<Url>,
    /// Diesel connection string: a SQLite path, or a `postgres://` URL.
    pub database_url: String,
    /// Key for the session cookie; `None` means "generate one" (only allowed on loopback).
    pub session_secret: Option<Secret<Vec<u8>>>,
    /// The realm's issuer URL (`KEYGATE_ISSUER_URL`), e.g. `http://127.0.0.1:8180/realms/keygate`.
    pub issuer_url: Url,
    /// keygate's confidential client in that realm (`KEYGATE_CLIENT_ID`).
    pub client_id: String,
    /// Its secret (`KEYGATE_CLIENT_SECRET`).
    pub client_secret: Secret<String>,
    /// The realm or client role that opens the admin pages (`KEYGATE_ADMIN_ROLE`).
    pub admin_role: String,
    /// Where login-from-cookie sends the browser (`KEYGATE_UI_URL`).
    pub ui_url: String,
    /// The audience bearer tokens must carry (`KEYGATE_AUDIENCE`, default the client id).
    pub audience: String,
    /// Accept a token whose `azp` is our client when `aud` lacks it (`KEYGATE_ACCEPT_AZP`).
    pub accept_azp: bool,
    /// Clock skew tolerated on `exp`/`nbf`/`iat` (`KEYGATE_LEEWAY_SECONDS`).
    pub leeway: Duration,
    /// How long a signed-in session lives without an authenticated request
    /// (`KEYGATE_SESSION_IDLE_SECONDS`, Keycloak's SSO Session Idle default).
    pub session_idle: Duration,
    /// How long a signed-in session lives at most, counted from sign-in
    /// (`KEYGATE_SESSION_MAX_SECONDS`, Keycloak's SSO Session Max default).
    pub session_max: Duration,
    /// Offer the password form, Keycloak's direct access grant (`KEYGATE_PASSWORD_LOGIN`).
    pub password_login: bool,
    /// Offer registration through the admin API (`KEYGATE_REGISTRATION`).
    pub registration: bool,
    /// Who may attach a first Keycloak login to an existing local user (`KEYGATE_LINK_BY_EMAIL`).
    pub link_policy: LinkPolicy,
    /// Days audit events are kept (`KEYGATE_AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: u32,
    /// Cache validated access tokens until they expire (`KEYGATE_TOKEN_CACHE`, default true).
    pub token_cache: bool,
    /// Take the client address from what a reverse proxy appended (`KEYGATE_TRUST_FORWARDED`);
    /// `None` means the peer address.
    pub forwarded: Option<Forwarded>,
    /// Route rules (`KEYGATE_RULES`, a TOML file); `None` when unset: then the proxied
    /// application and `/auth` need a signed-in user everywhere, and embedded applications
    /// check with their extractors only.
    pub rules: Option<Rules>,
    /// Path prefixes answered with the JSON error contract instead of pages
    /// (`KEYGATE_API_PREFIXES`, comma-separated, default `/api/`).
    pub api_prefixes: Vec<String>,
    /// Reverse-proxy mode (`KEYGATE_UPSTREAM`): every path that is not keygate's goes here.
    pub upstream: Option<Url>,
    /// Longest wait for the upstream's answer to start (`KEYGATE_UPSTREAM_TIMEOUT_SECONDS`,
    /// default 30), after which the client gets 504.
    pub upstream_timeout: Duration,
    /// Hosts an absolute `rd`/`next` URL may point at after sign-in
    /// (`KEYGATE_ALLOWED_REDIRECT_HOSTS`, comma-separated; `*.example.com` for subdomains).
    pub allowed_redirect_hosts: Vec<String>,
    /// The session cookie's `Domain` (`KEYGATE_COOKIE_DOMAIN`), for applications on sibling
    /// subdomains; unset (the default) keeps the cookie to keygate's own host.
    pub cookie_domain: Option<String>,
    /// Send the access token to the application as `X-Auth-Request-Access-Token`
    /// (`KEYGATE_PASS_ACCESS_TOKEN`, default false).
    pub pass_access_token: bool,
    /// After SIGTERM or SIGINT, how long `/readyz` answers 503 while the listener still serves
    /// (`KEYGATE_DRAIN_SECONDS`, default 5), so load balancers stop sending first.
    pub drain: Duration,
    /// A listener of its own for `/metrics` (`KEYGATE_METRICS_BIND`, e.g. `0.0.0.0:9100`);
    /// unset, the main listener serves them to loopback clients only.
    pub metrics_bind: Option<String>,
    /// Then how long requests in flight get to finish (`KEYGATE_SHUTDOWN_TIMEOUT_SECONDS`,
    /// default 30).
    pub shutdown_timeout: Duration,
}

impl Settings {
    /// The realm's issuer exactly as tokens carry it: the configured URL without a trailing `/`.
    pub fn issuer(&self) -> &str {
        self.issuer_url.as_str().trim_end_matches('/')
    }

    /// Reads settings from the process environment, and from the `KEY=value` file named by
    /// `KEYGATE_CONFIG` if set; the environment wins over the file.
    pub fn from_env() -> Result<Self, SettingsError> {
        let file = match std::env::var("KEYGATE_CONFIG") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| bad("KEYGATE_CONFIG", format!("cannot read {path}: {e}")))?;
                parse_config_file(&text)?
            }
            Err(_) => HashMap::new(),
        };
        let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        warn_about_unknown(env.iter().chain(file.keys()).map(String::as_str));
        Self::from_lookup(|name| std::env::var(name).ok().or_else(|| file.get(name).cloned()))
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let bind = get("KEYGATE_BIND").unwrap_or_else(|| "127.0.0.1:8000".into());
        let public_url = match get("KEYGATE_PUBLIC_URL") {
            Some(raw) => Some(parse_base_url("KEYGATE_PUBLIC_URL", &raw)?),
            None => None,
        };
        let database_url = get("KEYGATE_DATABASE_URL").unwrap_or_else(|| "keygate.db".into());

        let session_secret = match get("KEYGATE_SESSION_SECRET") {
            Some(raw) if raw.len() < 64 => {
                return Err(bad(
                    "KEYGATE_SESSION_SECRET",
                    format!("expected at least 64 bytes, got {}", raw.len()),
                ))
            }
            Some(raw) => Some(Secret::new(raw.into_bytes())),
            None => None,
        };

        let issuer_raw = get("KEYGATE_ISSUER_URL").ok_or_else(|| {
            bad(
                "KEYGATE_ISSUER_URL",
                "required: the realm's issuer, e.g. http://127.0.0.1:8180/realms/keygate",
            )
        })?;
        let issuer_url = parse_base_url("KEYGATE_ISSUER_URL", &issuer_raw)?;
        let client_id = get("KEYGATE_CLIENT_ID")
            .ok_or_else(|| bad("KEYGATE_CLIENT_ID", "required: the Keycloak client id"))?;
        let client_secret = get("KEYGATE_CLIENT_SECRET")
            .map(Secret::new)
            .ok_or_else(|| {
                bad(
                    "KEYGATE_CLIENT_SECRET",
                    "required: the confidential client's secret",
                )
            })?;

        if get("KEYGATE_SESSION_TTL_SECONDS").is_some() {
            return Err(bad(
                "KEYGATE_SESSION_TTL_SECONDS",
                "no longer used: set KEYGATE_SESSION_IDLE_SECONDS (default 1800) and \
                 KEYGATE_SESSION_MAX_SECONDS (default 36000)",
            ));
        }

        let ui_url = get("KEYGATE_UI_URL").unwrap_or_else(|| "/token".into());
        if !crate::util::is_same_origin_path(&ui_url) {
            return Err(bad(
                "KEYGATE_UI_URL",
                "expected a path on this site starting with /, e.g. /token",
            ));
        }

        let link_policy = match get("KEYGATE_LINK_BY_EMAIL").as_deref() {
            None | Some("off") | Some("false") => LinkPolicy::SubjectOnly,
            Some("verified") => LinkPolicy::VerifiedEmail,
            Some(other) => {
                return Err(bad(
                    "KEYGATE_LINK_BY_EMAIL",
                    format!("expected `off` or `verified`, got `{other}`"),
                ))
            }
        };

        Ok(Settings {
            bind,
            public_url,
            database_url,
            session_secret,
            audience: get("KEYGATE_AUDIENCE").unwrap_or_else(|| client_id.clone()),
            issuer_url,
            client_id,
            client_secret,
            admin_role: get("KEYGATE_ADMIN_ROLE").unwrap_or_else(|| "keygate-admin".into()),
            ui_url,
            accept_azp: parse_bool(&get, "KEYGATE_ACCEPT_AZP", false)?,
            leeway: Duration::from_secs(parse_num(&get, "KEYGATE_LEEWAY_SECONDS", 30)?),
            session_idle: Duration::from_secs(parse_num(
                &get,
                "KEYGATE_SESSION_IDLE_SECONDS",
                1800,
            )?),
            session_max: Duration::from_secs(parse_num(
                &get,
                "KEYGATE_SESSION_MAX_SECONDS",
                36000,
            )?),
            password_login: parse_bool(&get, "KEYGATE_PASSWORD_LOGIN", false)?,
            registration: parse_bool(&get, "KEYGATE_REGISTRATION", true)?,
            link_policy,
            audit_retention_days: parse_range(&get, "KEYGATE_AUDIT_RETENTION_DAYS", 90, 1..=36_500)?
                as u32,
            token_cache: parse_bool(&get, "KEYGATE_TOKEN_CACHE", true)?,
            forwarded: parse_forwarded(&get)?,
            rules: parse_rules(&get)?,
            api_prefixes: parse_list(&get, "KEYGATE_API_PREFIXES")
                .map(|l| check_api_prefixes(&l).map(|_| l))
                .transpose()?
                .unwrap_or_else(|| vec!["/api/".into()]),
            upstream: match get("KEYGATE_UPSTREAM") {
                Some(raw) => Some(parse_base_url("KEYGATE_UPSTREAM", &raw)?),
                None => None,
            },
            upstream_timeout: Duration::from_secs(parse_range(
                &get,
                "KEYGATE_UPSTREAM_TIMEOUT_SECONDS",
                30,
                1..=3600,
            )?),
            allowed_redirect_hosts: parse_list(&get, "KEYGATE_ALLOWED_REDIRECT_HOSTS")
                .unwrap_or_default()
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            cookie_domain: get("KEYGATE_COOKIE_DOMAIN").map(|d| d.trim().to_ascii_lowercase()),
            pass_access_token: parse_bool(&get, "KEYGATE_PASS_ACCESS_TOKEN", false)?,
            metrics_bind: get("KEYGATE_METRICS_BIND"),
            drain: Duration::from_secs(parse_range(&get, "KEYGATE_DRAIN_SECONDS", 5, 0..=600)?),
            shutdown_timeout: Duration::from_secs(parse_range(
                &get,
                "KEYGATE_SHUTDOWN_TIMEOUT_SECONDS",
                30,
                1..=3600,
            )?),
        })
    }
}

/// Reads and checks the rules file named by `KEYGATE_RULES`.
fn parse_rules(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Rules>, SettingsError> {
    let Some(path) = get("KEYGATE_RULES") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad("KEYGATE_RULES", format!("cannot read {path}: {e}")))?;
    Rules::parse(&text).map(Some)
}

/// A comma-separated list, blanks dropped; `None` when unset.
fn parse_list(get: &impl Fn(&str) -> Option<String>, name: &str) -> Option<Vec<String>> {
    get(name).map(|raw| {
        raw.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn check_api_prefixes(list: &[String]) -> Result<(), SettingsError> {
    if list.is_empty() || list.iter().any(|p| !p.starts_with('/')) {
        return Err(bad(
            "KEYGATE_API_PREFIXES",
            "expected comma-separated path prefixes starting with /, e.g. /api/,/v1/",
        ));
    }
    Ok(())
}

/// True when `url` points at this machine, where a generated session secret is acceptable.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::names::unknown_settings;
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("KEYGATE_ISSUER_URL", "http://127.0.0.1:8180/realms/keygate"),
        ("KEYGATE_CLIENT_ID", "keygate"),
        ("KEYGATE_CLIENT_SECRET", "s3cret"),
    ];

    #[test]
    fn defaults_fill_everything_but_the_client() {
        let s = from(&REQUIRED).expect("valid");
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert_eq!(s.database_url, "keygate.db");
        assert_eq!(s.admin_role, "keygate-admin");
        assert_eq!(s.ui_url, "/token");
        assert_eq!(s.audience, "keygate");
        assert_eq!(s.leeway, Duration::from_secs(30));
        assert_eq!(s.link_policy, LinkPolicy::SubjectOnly);
    }

    #[test]
    fn a_missing_issuer_names_the_variable() {
        let err = from(&REQUIRED[1..]).unwrap_err();
        assert_eq!(err.name, "KEYGATE_ISSUER_URL");
    }

    #[test]
    fn a_short_session_secret_is_refused() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("KEYGATE_SESSION_SECRET", "too-short"));
        assert_eq!(from(&pairs).unwrap_err().name, "KEYGATE_SESSION_SECRET");
    }

    #[test]
    fn malformed_values_are_refused_with_their_name() {
        for (name, value) in [
            ("KEYGATE_PUBLIC_URL", "not a url"),
            ("KEYGATE_PUBLIC_URL", "ftp://example.com"),
            ("KEYGATE_ACCEPT_AZP", "maybe"),
            ("KEYGATE_LEEWAY_SECONDS", "-1"),
            ("KEYGATE_UI_URL", "https://evil.example/"),
            ("KEYGATE_UI_URL", "/\\evil.example"),
            ("KEYGATE_AUDIT_RETENTION_DAYS", "4294967297"),
            ("KEYGATE_AUDIT_RETENTION_DAYS", "0"),
            ("KEYGATE_LINK_BY_EMAIL", "always"),
            ("KEYGATE_SESSION_TTL_SECONDS", "3600"),
        ] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push((name, value));
            assert_eq!(from(&pairs).unwrap_err().name, name, "{name}={value}");
        }
    }

    #[test]
    fn config_files_hold_keygate_settings_only() {
        let map = parse_config_file(
            "# keygate\nKEYGATE_CLIENT_ID=keygate\nexport KEYGATE_UI_URL=\"/app\"\n\n",
        )
        .unwrap();
        assert_eq!(map["KEYGATE_CLIENT_ID"], "keygate");
        assert_eq!(map["KEYGATE_UI_URL"], "/app");
        assert!(parse_config_file("PATH=/bin").is_err());
        assert!(parse_config_file("KEYGATE_BIND").is_err());
    }

    #[test]
    fn a_misspelled_setting_is_named_with_what_it_meant() {
        let unknown = unknown_settings([
            "KEYGATE_SESION_SECRET",
            "KEYGATE_BIND",
            "KEYGATE_CACHE",
            "KEYGATE_SOMETHING_ELSE_ENTIRELY",
            "PATH",
        ]);
        assert_eq!(
            unknown,
            [
                (
                    "KEYGATE_SESION_SECRET".to_string(),
                    Some("KEYGATE_SESSION_SECRET")
                ),
                ("KEYGATE_SOMETHING_ELSE_ENTIRELY".to_string(), None),
            ]
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = from(&REQUIRED).expect("valid");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
