//! Site-relative and absolute URLs keygate sends browsers to, with their queries encoded.

use url::Url;

use crate::domain::next_url::NextUrl;

/// `path?k=v&…`, with the values form-encoded.
pub(crate) fn path_with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

/// The login page, coming back to `next` after sign-in.
pub(crate) fn login_path(next: &NextUrl) -> String {
    path_with_query("/login", &[("next", next.as_str())])
}

/// The start of a Keycloak login that comes back to `next`; `login_hint` pre-fills the username.
pub(crate) fn keycloak_login_path(next: &NextUrl, login_hint: Option<&str>) -> String {
    match login_hint {
        Some(hint) => path_with_query(
            "/login/keycloak",
            &[("next", next.as_str()), ("login_hint", hint)],
        ),
        None => path_with_query("/login/keycloak", &[("next", next.as_str())]),
    }
}

/// The absolute URL that starts a Keycloak login and comes back to `next`: the `details` of the
/// API's 401, which a UI on another origin follows.
pub(crate) fn login_url(public_url: &Url, next: &NextUrl) -> String {
    let mut url = public_url.clone();
    url.set_path("/login/keycloak");
    url.query_pairs_mut().append_pair("next", next.as_str());
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_once() {
        let next = NextUrl::parse(Some("/admin?q=a%20b&x=1"));
        assert_eq!(
            login_path(&next),
            "/login?next=%2Fadmin%3Fq%3Da%2520b%26x%3D1"
        );
        assert_eq!(
            keycloak_login_path(&NextUrl::home(), Some("dave")),
            "/login/keycloak?next=%2F&login_hint=dave"
        );
    }
}
