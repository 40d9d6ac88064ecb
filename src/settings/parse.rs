//! Turning the text of variables and config files into typed values, each error naming its
//! variable.

use std::collections::HashMap;

use url::Url;

use super::{bad, Forwarded, ForwardedHeader, SettingsError};

pub(super) fn parse_forwarded(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Forwarded>, SettingsError> {
    if !parse_bool(get, "KEYGATE_TRUST_FORWARDED", false)? {
        return Ok(None);
    }
    let header = match get("KEYGATE_FORWARDED_HEADER")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("x-forwarded-for") => ForwardedHeader::XForwardedFor,
        Some("forwarded") => ForwardedHeader::Forwarded,
        Some(other) => {
            return Err(bad(
                "KEYGATE_FORWARDED_HEADER",
                format!("expected `x-forwarded-for` or `forwarded`, got `{other}`"),
            ))
        }
    };
    let hops = parse_num(get, "KEYGATE_FORWARDED_HOPS", 1)?;
    if !(1..=10).contains(&hops) {
        return Err(bad("KEYGATE_FORWARDED_HOPS", "expected 1 to 10"));
    }
    let proxies = match get("KEYGATE_TRUSTED_PROXIES") {
        None => vec![],
        Some(list) => list
            .split(',')
            .map(|a| a.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                bad(
                    "KEYGATE_TRUSTED_PROXIES",
                    "expected comma-separated IP addresses",
                )
            })?,
    };
    Ok(Some(Forwarded {
        header,
        hops: hops as usize,
        proxies,
    }))
}

/// A config file: `KEY=value` lines, `#` comments, optional quotes around values. Only
/// `KEYGATE_*` keys, so a typo'd or foreign line is an error instead of silently ignored.
pub(super) fn parse_config_file(text: &str) -> Result<HashMap<String, String>, SettingsError> {
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(
                "KEYGATE_CONFIG",
                format!("line {}: expected KEY=value", n + 1),
            ));
        };
        let key = key.trim().trim_start_matches("export ").trim();
        if !key.starts_with("KEYGATE_") {
            return Err(bad(
                "KEYGATE_CONFIG",
                format!("line {}: {key} is not a KEYGATE_ setting", n + 1),
            ));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
}

pub(super) fn parse_base_url(name: &'static str, raw: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| bad(name, format!("expected an absolute http(s) URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(name, "expected an absolute http(s) URL"));
    }
    Ok(url)
}

pub(super) fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, SettingsError> {
    match get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(bad(name, format!("expected true or false, got `{other}`"))),
    }
}

pub(super) fn parse_num(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, SettingsError> {
    match get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| bad(name, format!("expected a whole number, got `{raw}`"))),
    }
}

/// A whole number within `range`; anything outside is refused rather than cut to fit.
pub(super) fn parse_range(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, SettingsError> {
    let n = parse_num(get, name, default)?;
    if !range.contains(&n) {
        return Err(bad(
            name,
            format!("expected {} to {}, got {n}", range.start(), range.end()),
        ));
    }
    Ok(n)
}
