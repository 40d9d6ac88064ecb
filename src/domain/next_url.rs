//! `next` URLs: where to send the browser after login. Only same-origin relative paths pass, so a
//! login link can never be turned into an open redirect.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::util::is_same_origin_path;

/// A path on this site, checked once at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NextUrl(String);

impl NextUrl {
    /// The path used whenever a `next` value is missing or refused.
    pub(crate) fn home() -> Self {
        NextUrl("/".into())
    }

    /// Admits `/path?query#frag`; refuses absolute URLs, scheme-relative `//host`, backslash tricks
    /// (browsers read `/\host` as `//host`), control characters and anything that parses to another
    /// origin. Anything refused becomes `/`.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        raw.and_then(Self::try_parse).unwrap_or_else(Self::home)
    }

    fn try_parse(raw: &str) -> Option<Self> {
        is_same_origin_path(raw).then(|| NextUrl(raw.to_string()))
    }

    /// As [`parse`](Self::parse), and also an absolute `http(s)` URL on one of `hosts` (an
    /// entry `*.example.com` admits every subdomain of example.com, not example.com itself):
    /// applications behind forward-auth on sibling hosts come back to their own URL. No user
    /// info, no other scheme.
    /// An absolute URL on keygate's own origin (`own`) becomes its path.
    pub(crate) fn parse_allowing(raw: Option<&str>, own: &Url, hosts: &[String]) -> Self {
        let Some(raw) = raw else {
            return Self::home();
        };
        if let Some(same) = Self::try_parse(raw) {
            return same;
        }
        let Ok(url) = Url::parse(raw) else {
            return Self::home();
        };
        if url.origin() == own.origin() && url.username().is_empty() && url.password().is_none() {
            return Self::parse(Some(
                &url[url::Position::BeforePath..url::Position::AfterQuery],
            ));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && !raw.chars().any(|c| c.is_control() || c == '\\')
            && hosts.iter().any(|h| match h.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => *h == host,
            });
        if allowed {
            NextUrl(url.to_string())
        } else {
            Self::home()
        }
    }

    /// Takes the path of a same-origin `Referer`, so an API 401 can send the user back to the page
    /// that made the call.
    pub(crate) fn from_referer(public_url: &Url, referer: Option<&str>) -> Self {
        let Some(referer) = referer.and_then(|r| Url::parse(r).ok()) else {
            return Self::home();
        };
        if referer.origin() != public_url.origin() {
            return Self::home();
        }
        let mut path = referer.path().to_string();
        if let Some(q) = referer.query() {
            path.push('?');
            path.push_str(q);
        }
        Self::parse(Some(&path))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_pass() {
        for ok in ["/", "/admin", "/token?x=1", "/a/b#c", "/%2F%2Fnot-a-host"] {
            assert_eq!(NextUrl::parse(Some(ok)).as_str(), ok);
        }
    }

    #[test]
    fn absolute_urls_pass_only_on_allowed_hosts() {
        let hosts = vec![
            "app.example.com".to_string(),
            "*.apps.example.com".to_string(),
        ];
        let own = Url::parse("http://127.0.0.1:8000/").unwrap();
        let ok = |raw: &str| NextUrl::parse_allowing(Some(raw), &own, &hosts);
        assert_eq!(ok("http://127.0.0.1:8000/back?x=1").as_str(), "/back?x=1");
        assert_eq!(ok("http://127.0.0.1:8001/back"), NextUrl::home());
        assert_eq!(
            ok("https://app.example.com/x?y=1").as_str(),
            "https://app.example.com/x?y=1"
        );
        assert_eq!(
            ok("http://a.apps.example.com/").as_str(),
            "http://a.apps.example.com/"
        );
        assert_eq!(ok("/local").as_str(), "/local");
        for bad in [
            "https://evil.example/",
            "https://app.example.com.evil.example/",
            "https://apps.example.com/",
            "https://xapps.example.com/",
            "https://user@app.example.com/",
            "javascript://app.example.com/%0aalert(1)",
            "ftp://app.example.com/",
            "https://app.example.com\\@evil.example/",
        ] {
            assert_eq!(ok(bad), NextUrl::home(), "{bad}");
        }
        assert_eq!(
            NextUrl::parse_allowing(Some("https://app.example.com/"), &own, &[]),
            NextUrl::home()
        );
    }

    #[test]
    fn anything_leaving_the_site_falls_back_to_home() {
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/\tevil",
            "/ /evil",
            "",
        ] {
            assert_eq!(NextUrl::parse(Some(bad)), NextUrl::home(), "{bad:?}");
        }
        assert_eq!(NextUrl::parse(None), NextUrl::home());
    }

    #[test]
    fn referer_counts_only_from_our_origin() {
        let public = Url::parse("http://127.0.0.1:8000").unwrap();
        assert_eq!(
            NextUrl::from_referer(&public, Some("http://127.0.0.1:8000/app?tab=2")).as_str(),
            "/app?tab=2"
        );
        assert_eq!(
            NextUrl::from_referer(&public, Some("http://evil.example/app")),
            NextUrl::home()
        );
        assert_eq!(NextUrl::from_referer(&public, None), NextUrl::home());
    }
}
