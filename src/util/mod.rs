//! Small helpers every layer may use: the clock, randomness and hashing, and text for logs.
//! Uses no other part of keygate.

mod crypto;
pub(crate) mod metrics;
pub mod request_id;

pub use crypto::random_token;
pub(crate) use crypto::sha256_hex;

/// Current time in Unix seconds, the unit of every time column and token claim.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// True for a path on this site that no browser reads as another origin: `/path?query#frag`; never
/// absolute, never `//host`, never a backslash (browsers read `/\host` as `//host`), no control
/// characters or spaces. The one rule for `next` URLs and for `KEYGATE_UI_URL`.
pub(crate) fn is_same_origin_path(raw: &str) -> bool {
    if !raw.starts_with('/') || raw.starts_with("//") || raw.len() > 2048 {
        return false;
    }
    if raw
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return false;
    }
    // Resolve against a dummy origin: if the origin changes, the browser would leave the site.
    let Ok(base) = url::Url::parse("http://keygate.invalid/") else {
        return false;
    };
    base.join(raw)
        .is_ok_and(|joined| joined.origin() == base.origin())
}

/// Text from outside (a provider, a form) cut to `max` characters before it is shown or logged.
pub(crate) fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Text from outside (a provider's error description, a form field, a header) as it may appear
/// in a log line: control characters escaped, so it cannot forge lines, and cut to `max`.
pub(crate) fn for_log(s: &str, max: usize) -> String {
    clip(s, max).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_forge_log_lines() {
        let logged = for_log(
            "denied\n[ERROR] keygate: all sessions deleted\u{1b}[2J",
            200,
        );
        assert!(
            !logged.contains('\n') && !logged.contains('\u{1b}'),
            "{logged}"
        );
        assert!(logged.starts_with("denied\\n"));
        assert_eq!(for_log(&"x".repeat(500), 10).len(), 10);
    }
}
