//! Small helpers every layer may use: the clock, randomness and hashing, and text for logs.
//! Uses no other part of keygate.

mod crypto;

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

/// Text from outside (a provider, a form) cut to `max` characters before it is shown or logged.
pub(crate) fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
