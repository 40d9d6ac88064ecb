//! The route rules at work, and the identity headers the protected application gets. Shared by
//! forward-auth (`/auth`, for the URL it is asked about), the reverse proxy and the routes of an
//! embedded application.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, ResponseError};
use serde_json::Value;

use super::auth::{authenticate, Authenticated};
use super::roles::{check_roles, Role, RoleRejection};
use super::user::maybe_authenticated;
use super::AppState;
use crate::settings::Access;

/// Identity headers keygate sets; a client's own headers of these prefixes never pass.
const IDENTITY_PREFIXES: [&str; 2] = ["x-auth-request-", "x-keygate-"];

/// What the rules say about a `method` request for `path` (the request's own, or the original
/// URL forward-auth is asked about).
pub(crate) fn access_for<'a>(state: &'a AppState, method: &str, path: &str) -> &'a Access {
    const AUTHENTICATED: &Access = &Access::Authenticated;
    match &state.settings.rules {
        Some(rules) => rules.access(method, path),
        None => AUTHENTICATED,
    }
}

/// Checks `access` against the request's credentials: the user (when there is one) or why not.
/// A public path lets everyone through and still names a signed-in visitor.
pub(crate) async fn admit(
    req: &HttpRequest,
    access: &Access,
) -> Result<Option<Authenticated>, RoleRejection> {
    match access {
        Access::Public => Ok(maybe_authenticated(req).await.ok().flatten()),
        Access::Authenticated => authenticate(req)
            .await
            .map(Some)
            .map_err(RoleRejection::auth),
        Access::RealmRole(role) => check_roles(req, &[Role::realm(role)]).await.map(Some),
        Access::ClientRole { client, role } => check_roles(req, &[Role::client(client, role)])
            .await
            .map(Some),
    }
}

/// The middleware around an embedded application's mounts when route rules are configured: a
/// request the rules refuse never reaches the application's handler.
pub(crate) async fn rules_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let access = match req.app_data::<web::Data<AppState>>() {
        Some(state) => access_for(state, req.method().as_str(), req.path()).clone(),
        None => Access::Authenticated,
    };
    match admit(req.request(), &access).await {
        Ok(_) => Ok(next.call(req).await?.map_into_left_body()),
        Err(rejection) => Ok(req
            .into_response(rejection.error_response())
            .map_into_right_body()),
    }
}

/// keygate's security headers, on every answer but the upstream's (whose application decides
/// its own CSP and framing).
pub(crate) async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let headers = req.app_data::<web::Data<SecurityHeaders>>().cloned();
    let mut res = next.call(req).await?;
    if res
        .response()
        .extensions()
        .get::<super::Proxied>()
        .is_some()
    {
        return Ok(res);
    }
    if let Some(wanted) = headers {
        let have = res.headers_mut();
        for (name, value) in &wanted.0 {
            if !have.contains_key(name) {
                have.insert(name.clone(), value.clone());
            }
        }
    }
    Ok(res)
}

/// Gives every request its id (a well-formed incoming `X-Request-Id`, or a new one): known to
/// its log lines and error page, and sent back in `X-Request-Id` (and on to an upstream).
pub(crate) async fn with_request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let incoming = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok());
    let id = crate::util::request_id::accept_or_make(incoming);
    let mut res = crate::util::request_id::scope(id.clone(), next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}

/// Counts and times every request by its route pattern (`/admin/users/{id}`; `proxy` for what
/// went to the upstream, `unmatched` for the 404s), never by its raw path; and writes the access
/// log line, inside the request's id. The path is logged without its query (callback codes and
/// states stay out of logs).
pub(crate) async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    // The client's address only when the line will be written: it is not free (forwarded
    // headers, the audit context) and this runs on every request.
    let logging = log::log_enabled!(target: "keygate::access", log::Level::Info);
    let client = match logging {
        true => super::client_ip(req.request()).map(|ip| ip.to_string()),
        false => None,
    }
    .unwrap_or_default();
    let res = next.call(req).await?;
    let proxied = res
        .response()
        .extensions()
        .get::<super::Proxied>()
        .is_some();
    let route = match res.request().match_pattern() {
        Some(pattern) => pattern,
        None if proxied => "proxy".into(),
        None => "unmatched".into(),
    };
    let took = started.elapsed();
    let status = res.status().as_u16();
    crate::util::metrics::http_request(&route, method, status, took);
    if logging {
        let path = crate::util::for_log(res.request().path(), 300);
        let ms = took.as_secs_f64() * 1000.0;
        log::info!(
            target: "keygate::access",
            client = client.as_str(), method = method, path = path.as_str(), status = status, ms = ms;
            "{client} \"{method} {path}\" {status} {ms:.3}ms"
        );
    }
    Ok(res)
}

/// The request id's header.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// The headers [`security_headers`] adds, built once at start.
pub(crate) struct SecurityHeaders(pub Vec<(HeaderName, HeaderValue)>);

/// Drops every identity header a client sent (`X-Auth-Request-*`, `X-Keygate-*`).
pub(crate) fn strip_identity(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            IDENTITY_PREFIXES
                .iter()
                .any(|p| name.as_str().starts_with(p))
        })
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
}

/// The identity headers for `auth` (oauth2-proxy's names, so existing configurations work, and
/// keygate's own): `X-Auth-Request-User` and `-Preferred-Username` (the username), `-Email`,
/// `-Groups` (realm roles and this client's roles, comma-separated), `-Access-Token` when
/// `access_token` is given; `X-Keygate-User-Id` (the local id), `X-Keygate-Subject` (Keycloak's
/// `sub`) and `X-Keygate-Name` (percent-encoded UTF-8).
pub(crate) fn identity_headers(
    state: &AppState,
    auth: &Authenticated,
    access_token: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let user = &auth.user;
    let mut out = vec![
        header("x-auth-request-user", &user.username),
        header("x-auth-request-preferred-username", &user.username),
        header("x-keygate-user-id", &user.id.to_string()),
    ];
    if let Some(email) = &user.email {
        out.push(header("x-auth-request-email", email));
    }
    let name = user.display_name();
    if !name.is_empty() {
        out.push(header("x-keygate-name", &name));
    }
    if let Some(claims) = &auth.claims {
        if let Some(sub) = claims.get("sub").and_then(Value::as_str) {
            out.push(header("x-keygate-subject", sub));
        }
        out.push(header(
            "x-auth-request-groups",
            &groups(claims, &state.settings.client_id).join(","),
        ));
    }
    if let Some(token) = access_token {
        out.push(header("x-auth-request-access-token", token));
    }
    out
}

/// Realm roles, then this client's roles, without repeats.
fn groups(claims: &Value, client_id: &str) -> Vec<String> {
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(|r| r.get("roles"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all: Vec<String> = list(claims.get("realm_access"));
    for role in list(claims.get("resource_access").and_then(|r| r.get(client_id))) {
        if !all.contains(&role) {
            all.push(role);
        }
    }
    all
}

/// A header whose value is percent-encoded wherever it is not visible ASCII (names with accents,
/// or anything that would end the header line).
fn header(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
    const UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    let encoded = percent_encoding::utf8_percent_encode(value, UNSAFE).to_string();
    let value = HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""));
    (HeaderName::from_static(name), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_are_realm_roles_then_this_clients_without_repeats() {
        let claims = json!({
            "realm_access": {"roles": ["a", "b"]},
            "resource_access": {"keygate": {"roles": ["b", "c"]}, "other": {"roles": ["x"]}},
        });
        assert_eq!(groups(&claims, "keygate"), ["a", "b", "c"]);
        assert!(groups(&json!({}), "keygate").is_empty());
    }

    #[test]
    fn header_values_cannot_end_the_line_and_keep_utf8_readable() {
        assert_eq!(header("x-keygate-name", "Zoë Ä").1, "Zo%C3%AB %C3%84");
        assert_eq!(
            header("x-keygate-name", "a\r\nX-Evil: 1").1,
            "a%0D%0AX-Evil: 1"
        );
        assert_eq!(header("x-keygate-name", "100%").1, "100%25");
    }

    #[test]
    fn only_identity_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("x-auth-request-user", "admin"),
            ("X-Keygate-User-Id", "1"),
            ("x-auth-request-groups", "admin"),
            ("accept", "text/html"),
        ] {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        strip_identity(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("accept"));
    }
}
