//! `keygate doctor`: the Keycloak side of the configuration, checked through the admin API with
//! keygate's own service account. One line per check; a failure says the exact fix (the admin
//! console's path and the JSON field of the client or realm representation).

use serde_json::Value;
use url::Url;

use crate::idp::{unverified, AdminError, KeycloakAdmin, Read};
use crate::settings::Settings;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok,
    /// Works, but not as keygate's settings expect.
    Warn,
    /// keygate will fail at something.
    Fail,
}

/// One check's line.
#[derive(Debug)]
pub(crate) struct Check {
    pub verdict: Verdict,
    pub text: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        write!(f, "{word}  {}", self.text)
    }
}

fn ok(text: impl Into<String>) -> Check {
    Check {
        verdict: Verdict::Ok,
        text: text.into(),
    }
}
fn warn(text: impl Into<String>) -> Check {
    Check {
        verdict: Verdict::Warn,
        text: text.into(),
    }
}
fn fail(text: impl Into<String>) -> Check {
    Check {
        verdict: Verdict::Fail,
        text: text.into(),
    }
}

/// Runs every check. `Err` only when Keycloak cannot be asked at all.
pub(crate) async fn run(
    settings: &Settings,
    public_url: &Url,
    admin: &KeycloakAdmin,
) -> Result<Vec<Check>, AdminError> {
    let client_id = &settings.client_id;
    let mut out = vec![];
    let token = match admin.service_token().await {
        Ok(t) => t,
        Err(AdminError::Unavailable(u)) => return Err(AdminError::Unavailable(u)),
        Err(e) => {
            out.push(fail(format!(
                "keygate's service account: {e}. Fix: Clients → {client_id} → Settings → \
                 Capability config → Client authentication ON and Service accounts roles ON \
                 (JSON: publicClient=false, serviceAccountsEnabled=true)"
            )));
            return Ok(out);
        }
    };
    out.push(ok(
        "client-credentials grant works (service account enabled)",
    ));
    let claims = unverified::claims(&token).unwrap_or(Value::Null);
    out.push(audience(settings, &claims));
    out.extend(service_roles(&claims, client_id));

    match admin
        .read(&format!("/clients?clientId={}", urlencode(client_id)))
        .await?
    {
        Read::Found(list) => match list.as_array().and_then(|l| l.first()) {
            Some(client) => out.extend(client_checks(settings, public_url, client)),
            None => out.push(fail(format!(
                "no client {client_id} in the realm. Fix: Clients → Create client (JSON: clientId)"
            ))),
        },
        Read::Forbidden | Read::Missing => out.push(fail(format!(
            "cannot read the client's settings: the service account lacks realm-management's \
             view-clients. Fix: Clients → {client_id} → Service accounts roles → Assign role → \
             filter by clients → realm-management view-clients"
        ))),
    }
    match admin.read("").await? {
        Read::Found(realm) => out.extend(realm_checks(settings, &realm)),
        Read::Forbidden | Read::Missing => out.push(warn(format!(
            "cannot read the realm's token and session lifespans: the service account lacks \
             realm-management's view-realm. Fix: Clients → {client_id} → Service accounts roles \
             → Assign role → realm-management view-realm"
        ))),
    }
    let openid = admin.openid_token().await?;
    out.push(match admin.userinfo_status(&openid).await {
        Ok(200) => ok("userinfo answers for an openid token"),
        Ok(status) => warn(format!(
            "userinfo answered {status} for the service account's token; keygate then signs \
             users in from the ID token alone. Fix: Client scopes → openid must be a default \
             scope of {client_id} (Clients → {client_id} → Client scopes; JSON: \
             defaultClientScopes contains \"openid\" or \"basic\")"
        )),
        Err(e) => warn(format!("userinfo could not be asked: {e}")),
    });
    Ok(out)
}

/// The client-credentials token must carry the client (or `KEYGATE_AUDIENCE`) in `aud`, or
/// bearer tokens of the realm fail keygate's audience check (KEYCLOAK-6638).
fn audience(settings: &Settings, claims: &Value) -> Check {
    let wanted = &settings.audience;
    let aud_has = match claims.get("aud") {
        Some(Value::String(a)) => a == wanted,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    };
    if aud_has {
        return ok(format!("access tokens carry {wanted} in aud"));
    }
    if settings.accept_azp {
        return ok(format!(
            "access tokens lack {wanted} in aud; KEYGATE_ACCEPT_AZP=true accepts azp"
        ));
    }
    fail(format!(
        "access tokens do not carry {wanted} in aud, so keygate refuses them. Fix: Clients → \
         {client} → Client scopes → {client}-dedicated → Add mapper → By configuration → \
         Audience, Included Client Audience = {wanted} (JSON: protocolMapper \
         oidc-audience-mapper, included.client.audience), or set KEYGATE_ACCEPT_AZP=true",
        client = settings.client_id
    ))
}

/// Registration creates users and admin sign-out ends sessions through the admin API.
fn service_roles(claims: &Value, client_id: &str) -> Vec<Check> {
    let have: Vec<&str> = claims
        .pointer("/resource_access/realm-management/roles")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = ["manage-users", "view-users", "query-users"]
        .into_iter()
        .filter(|r| !have.contains(r))
        .collect();
    if missing.is_empty() {
        return vec![ok(
            "the service account has manage-users, view-users and query-users",
        )];
    }
    vec![fail(format!(
        "the service account lacks realm-management's {}: registration, admin sign-out and \
         session lists fail. Fix: Clients → {client_id} → Service accounts roles → Assign role → \
         filter by clients → realm-management {}",
        missing.join(", "),
        missing.join(", ")
    ))]
}

fn client_checks(settings: &Settings, public_url: &Url, client: &Value) -> Vec<Check> {
    let id = &settings.client_id;
    let base = public_url.as_str().trim_end_matches('/');
    let mut out = vec![];
    let flag = |name: &str| client.get(name).and_then(Value::as_bool).unwrap_or(false);
    let attribute = |name: &str| {
        client
            .pointer(&format!("/attributes/{}", name.replace('/', "~1")))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    out.push(if flag("enabled") && !flag("publicClient") {
        ok(format!("client {id} is enabled and confidential"))
    } else {
        fail(format!(
            "client {id} must be enabled and confidential. Fix: Clients → {id} → Settings → \
             Enabled ON, Client authentication ON (JSON: enabled=true, publicClient=false)"
        ))
    });

    let redirects: Vec<String> = strings(client.get("redirectUris"));
    let root = client.get("rootUrl").and_then(Value::as_str).unwrap_or("");
    let callback = format!("{base}/login/callback");
    out.push(
        if redirects
            .iter()
            .any(|p| admits(&absolute(p, root), &callback))
        {
            ok(format!("redirect URIs admit {callback}"))
        } else {
            fail(format!(
            "no redirect URI admits {callback} (the list: {redirects:?}). Fix: Clients → {id} → \
             Settings → Valid redirect URIs: add {callback} (JSON: redirectUris)"
        ))
        },
    );

    let home = format!("{base}/?signed_out=1");
    let post_logout: Vec<String> = attribute("post.logout.redirect.uris")
        .split("##")
        .filter(|s| !s.is_empty())
        .flat_map(|p| {
            if p == "+" {
                redirects.clone()
            } else {
                vec![p.to_string()]
            }
        })
        .collect();
    out.push(
        if post_logout
            .iter()
            .any(|p| admits(&absolute(p, root), &home))
        {
            ok(format!("post-logout redirect URIs admit {base}/"))
        } else {
            fail(format!(
            "no post-logout redirect URI admits {home}: sign-out ends on Keycloak's error page. \
             Fix: Clients → {id} → Settings → Valid post logout redirect URIs: add {base}/* \
             (JSON: attributes.\"post.logout.redirect.uris\")"
        ))
        },
    );

    let backchannel = format!("{base}/logout/backchannel");
    let url = attribute("backchannel.logout.url");
    let session_required = attribute("backchannel.logout.session.required") == "true";
    out.push(if url == backchannel && session_required {
        ok(format!(
            "back-channel logout goes to {backchannel} with the session id"
        ))
    } else {
        fail(format!(
            "back-channel logout is {:?} with session required {session_required}: a sign-out \
             in Keycloak leaves keygate's session alive. Fix: Clients → {id} → Settings → \
             Logout settings → Backchannel logout URL = {backchannel}, Backchannel logout \
             session required ON (JSON: attributes.\"backchannel.logout.url\", \
             \"backchannel.logout.session.required\"=\"true\")",
            url
        ))
    });

    let direct = flag("directAccessGrantsEnabled");
    out.push(match (settings.password_login, direct) {
        (true, true) | (false, false) => ok(format!(
            "direct access grants {} as KEYGATE_PASSWORD_LOGIN={} needs",
            if direct { "on" } else { "off" },
            settings.password_login
        )),
        (true, false) => fail(format!(
            "KEYGATE_PASSWORD_LOGIN=true but direct access grants are off: the password form \
             fails. Fix: Clients → {id} → Settings → Capability config → Direct access grants ON \
             (JSON: directAccessGrantsEnabled=true), or KEYGATE_PASSWORD_LOGIN=false"
        )),
        (false, true) => warn(format!(
            "direct access grants are on but keygate's password form is off: turn them off \
             unless something else uses them. Fix: Clients → {id} → Settings → Capability \
             config → Direct access grants OFF (JSON: directAccessGrantsEnabled=false)"
        )),
    });
    out
}

fn realm_checks(settings: &Settings, realm: &Value) -> Vec<Check> {
    let num = |name: &str| realm.get(name).and_then(Value::as_i64).unwrap_or(0);
    if realm.get("accessTokenLifespan").is_none() {
        // Without view-realm, Keycloak answers a representation without the lifespans.
        return vec![warn(format!(
            "cannot read the realm's token and session lifespans: the service account lacks \
             realm-management's view-realm. Fix: Clients → {} → Service accounts roles → Assign \
             role → realm-management view-realm",
            settings.client_id
        ))];
    }
    let (lifespan, idle, max) = (
        num("accessTokenLifespan"),
        num("ssoSessionIdleTimeout"),
        num("ssoSessionMaxLifespan"),
    );
    let leeway = settings.leeway.as_secs() as i64;
    let mut out = vec![if lifespan > leeway {
        ok(format!(
            "access tokens live {lifespan} s, more than the {leeway} s leeway"
        ))
    } else {
        fail(format!(
            "access tokens live {lifespan} s, not more than KEYGATE_LEEWAY_SECONDS={leeway}: \
             expired tokens would pass. Fix: Realm settings → Tokens → Access Token Lifespan \
             (JSON: accessTokenLifespan), or a smaller KEYGATE_LEEWAY_SECONDS"
        ))
    }];
    let ours = |d: std::time::Duration| d.as_secs() as i64;
    for (what, theirs, keygate, name, field, path) in [
        (
            "idle",
            idle,
            ours(settings.session_idle),
            "KEYGATE_SESSION_IDLE_SECONDS",
            "ssoSessionIdleTimeout",
            "SSO Session Idle",
        ),
        (
            "max",
            max,
            ours(settings.session_max),
            "KEYGATE_SESSION_MAX_SECONDS",
            "ssoSessionMaxLifespan",
            "SSO Session Max",
        ),
    ] {
        out.push(if theirs == 0 || keygate <= theirs {
            ok(format!(
                "keygate's session {what} ({keygate} s) fits Keycloak's ({theirs} s)"
            ))
        } else {
            warn(format!(
                "{name}={keygate} is longer than Keycloak's {path} ({theirs} s): sessions end at \
                 the next refresh after Keycloak's. Fix: Realm settings → Sessions → {path} \
                 (JSON: {field}), or {name} ≤ {theirs}"
            ))
        });
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A relative redirect URI is relative to the client's root URL.
fn absolute(pattern: &str, root: &str) -> String {
    if pattern.starts_with('/') {
        format!("{}{pattern}", root.trim_end_matches('/'))
    } else {
        pattern.to_string()
    }
}

/// Keycloak's matching of redirect URIs (see scripts/keycloak.sh): equal, or a pattern ending in
/// `*` as a prefix; a pattern without a port on a loopback host matches any port.
pub(crate) fn admits(pattern: &str, uri: &str) -> bool {
    let matches = |pattern: &str, uri: &str| match pattern.strip_suffix('*') {
        Some(prefix) => uri.starts_with(prefix),
        None => pattern == uri,
    };
    if matches(pattern, uri) {
        return true;
    }
    let (Ok(p), Ok(mut u)) = (Url::parse(&pattern.replace('*', "")), Url::parse(uri)) else {
        return false;
    };
    let loopback = matches!(p.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    if !loopback || p.port().is_some() || pattern.contains(":*") {
        return false;
    }
    if u.set_port(None).is_err() {
        return false;
    }
    matches(pattern, u.as_str()) || matches(pattern, u.as_str().trim_end_matches('/'))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_as_keycloak_matches_them() {
        let cb = "http://127.0.0.1:45678/login/callback";
        assert!(
            admits("http://127.0.0.1/login/callback", cb),
            "loopback, any port"
        );
        assert!(
            !admits("http://127.0.0.1:8000/login/callback", cb),
            "another port"
        );
        assert!(admits("http://127.0.0.1:*", "http://127.0.0.1:45678/x"));
        assert!(admits(
            "https://app.example.com/*",
            "https://app.example.com/login/callback"
        ));
        assert!(!admits(
            "https://app.example.com/login",
            "https://app.example.com/login/callback"
        ));
        assert!(!admits(
            "https://example.com/*",
            "https://evil.example/login/callback"
        ));
        assert!(admits(
            "http://127.0.0.1/*",
            "http://127.0.0.1:8000/?signed_out=1"
        ));
        assert!(!admits(
            "http://10.0.0.1/login/callback",
            "http://10.0.0.1:8000/login/callback"
        ));
    }
}
