//! The names keygate reads, and what it says about `KEYGATE_*` names it does not know.

/// Every setting keygate reads.
const KNOWN: &[&str] = &[
    "KEYGATE_ACCEPT_AZP",
    "KEYGATE_ADMIN_ROLE",
    "KEYGATE_ALLOWED_REDIRECT_HOSTS",
    "KEYGATE_API_PREFIXES",
    "KEYGATE_AUDIENCE",
    "KEYGATE_AUDIT_RETENTION_DAYS",
    "KEYGATE_BIND",
    "KEYGATE_CLIENT_ID",
    "KEYGATE_CLIENT_SECRET",
    "KEYGATE_CONFIG",
    "KEYGATE_COOKIE_DOMAIN",
    "KEYGATE_DATABASE_URL",
    "KEYGATE_DRAIN_SECONDS",
    "KEYGATE_FORWARDED_HEADER",
    "KEYGATE_FORWARDED_HOPS",
    "KEYGATE_ISSUER_URL",
    "KEYGATE_LEEWAY_SECONDS",
    "KEYGATE_LINK_BY_EMAIL",
    "KEYGATE_LOG_FORMAT",
    "KEYGATE_METRICS_BIND",
    "KEYGATE_PASSWORD_LOGIN",
    "KEYGATE_PASS_ACCESS_TOKEN",
    "KEYGATE_PUBLIC_URL",
    "KEYGATE_REGISTRATION",
    "KEYGATE_RULES",
    "KEYGATE_SESSION_IDLE_SECONDS",
    "KEYGATE_SESSION_MAX_SECONDS",
    "KEYGATE_SESSION_SECRET",
    "KEYGATE_SHUTDOWN_TIMEOUT_SECONDS",
    "KEYGATE_TOKEN_CACHE",
    "KEYGATE_TRUSTED_PROXIES",
    "KEYGATE_TRUST_FORWARDED",
    "KEYGATE_UI_URL",
    "KEYGATE_UPSTREAM",
    "KEYGATE_UPSTREAM_TIMEOUT_SECONDS",
];

/// Variables of keygate's scripts and tests (README), which keygate itself does not read.
const TOOLING: &[&str] = &[
    "KEYGATE_ARTIFACTS_DIR",
    "KEYGATE_BIN",
    "KEYGATE_BROWSER_ONLY",
    "KEYGATE_BROWSER_TIMEOUT",
    "KEYGATE_CACHE",
    "KEYGATE_CHROMIUM",
    "KEYGATE_KEEP_SERVICES",
    "KEYGATE_PG_DIR",
    "KEYGATE_TEST_POSTGRES_URL",
];

/// The `KEYGATE_*` names among `names` that keygate does not know, each with the known name it
/// is most likely a typo of: a misspelled setting must never be silently off.
pub(super) fn unknown_settings<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, Option<&'static str>)> {
    names
        .into_iter()
        .filter(|n| n.starts_with("KEYGATE_") && !KNOWN.contains(n) && !TOOLING.contains(n))
        .map(|n| {
            let closest = KNOWN
                .iter()
                .map(|k| (edit_distance(n, k), *k))
                .min()
                .filter(|(d, _)| *d <= 4)
                .map(|(_, k)| k);
            (n.to_string(), closest)
        })
        .collect()
}

/// Levenshtein distance, for suggesting the setting a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

pub(super) fn warn_about_unknown<'a>(names: impl IntoIterator<Item = &'a str>) {
    for (name, closest) in unknown_settings(names) {
        match closest {
            Some(known) => {
                log::warn!("{name} is not a keygate setting (ignored); did you mean {known}?")
            }
            None => log::warn!("{name} is not a keygate setting (ignored)"),
        }
    }
}
