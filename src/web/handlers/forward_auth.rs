//! `GET /auth`: forward-auth for nginx's `auth_request`, Traefik's `forwardAuth` and Caddy's
//! `forward_auth`. The proxy asks on every request, passing the browser's cookies or bearer token
//! and the original URL; keygate answers 200 with identity headers, 401 with the login URL (in
//! the JSON body and in `X-Keygate-Login`; with `?redirect=1` a 302 to it, for proxies that hand
//! keygate's answer to the browser), 403 for a signed-in user the route rules refuse, 503 while
//! Keycloak is needed and out of reach.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use url::Url;

use crate::web::gate::{access_for, admit, identity_headers};
use crate::web::response::{path_with_query, ApiError, NO_STORE};
use crate::web::user::access_token_of;
use crate::web::AppState;

#[derive(Deserialize)]
pub(crate) struct AuthQuery {
    redirect: Option<String>,
}

/// The request the proxy is asking about.
struct Original {
    method: String,
    /// Path and query.
    uri: String,
    /// Absolute, when the proxy said which host and scheme.
    url: Option<Url>,
}

impl Original {
    fn path(&self) -> &str {
        self.uri.split(['?', '#']).next().unwrap_or("/")
    }
}

/// From `X-Original-URL` (absolute, nginx configurations) or `X-Forwarded-Uri` with
/// `X-Forwarded-Host` and `-Proto` (Traefik, Caddy); the method from `X-Original-Method` or
/// `X-Forwarded-Method`. Without them, `/` with GET.
fn original(req: &HttpRequest) -> Original {
    let get = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let method = get("x-original-method")
        .or_else(|| get("x-forwarded-method"))
        .unwrap_or("GET")
        .to_ascii_uppercase();
    if let Some(url) = get("x-original-url").and_then(|u| Url::parse(u).ok()) {
        let uri = url[url::Position::BeforePath..url::Position::AfterQuery].to_string();
        return Original {
            method,
            uri,
            url: Some(url),
        };
    }
    let uri = get("x-forwarded-uri")
        .filter(|u| u.starts_with('/'))
        .unwrap_or("/")
        .to_string();
    let url = get("x-forwarded-host").and_then(|host| {
        let proto = get("x-forwarded-proto").unwrap_or("https");
        Url::parse(&format!("{proto}://{host}{uri}")).ok()
    });
    Original { method, uri, url }
}

/// GET /auth
pub(crate) async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AuthQuery>,
) -> HttpResponse {
    let original = original(&req);
    let access = access_for(&state, &original.method, original.path());
    let rejection = match admit(&req, access).await {
        Ok(auth) => {
            let mut ok = HttpResponse::Ok();
            ok.insert_header(NO_STORE);
            if let Some(auth) = auth {
                let token = match state.settings.pass_access_token {
                    true => access_token_of(&req, &auth).await.ok(),
                    false => None,
                };
                let token = token.as_ref().map(|t| t.secret());
                for pair in identity_headers(&state, &auth, token) {
                    ok.insert_header(pair);
                }
            }
            return ok.finish();
        }
        Err(rejection) => rejection,
    };
    let error = rejection.as_api();
    if !matches!(error, ApiError::AuthRedirect { .. }) {
        log::info!(
            "forward-auth refused {} {}: {rejection}",
            original.method,
            crate::util::for_log(original.path(), 200)
        );
        return error.error_response();
    }
    let back = original
        .url
        .as_ref()
        .map_or_else(|| original.uri.clone(), Url::to_string);
    let login = format!(
        "{}{}",
        state.public_url.origin().ascii_serialization(),
        path_with_query("/login", &[("rd", &back)])
    );
    if query
        .redirect
        .as_deref()
        .is_some_and(|v| matches!(v, "1" | "true"))
    {
        return HttpResponse::Found()
            .insert_header((header::LOCATION, login))
            .insert_header(NO_STORE)
            .finish();
    }
    // The login URL also as a header: nginx can read it into a variable (`auth_request_set`)
    // and redirect to it, with the original URL already encoded.
    let header = HeaderValue::from_str(&login).ok();
    let mut unauthorized = ApiError::AuthRedirect {
        login_url: login,
        reason: "forward-auth without credentials".into(),
    }
    .error_response();
    if let Some(value) = header {
        unauthorized
            .headers_mut()
            .insert(HeaderName::from_static("x-keygate-login"), value);
    }
    unauthorized
}
