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
