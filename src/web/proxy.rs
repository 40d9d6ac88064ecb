//! Reverse-proxy mode (`KEYGATE_UPSTREAM`): every path that is not keygate's own goes to the
//! upstream, after the route rules, with the identity headers and never a client's forged ones.
//! Bodies stream both ways (nothing is buffered whole), connections to the upstream are pooled
//! per worker (awc), WebSocket upgrades are relayed frame by frame, and an upstream that is down
//! or slow is a 502 or 504 page (JSON under the API prefixes), logged.

use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use awc::error::SendRequestError;
use futures_util::{SinkExt, StreamExt};

use super::auth::Authenticated;
use super::gate::{access_for, admit, identity_headers, strip_identity};
use super::response::{error_page_with_retry, is_api, ApiError};
use super::user::access_token_of;
use super::AppState;

/// The upstream client of one worker (awc's client is per thread), with its connection pool.
pub(crate) struct Upstream {
    client: awc::Client,
}

impl Upstream {
    /// A client that waits `timeout` for an answer to start, and 5 s for a connection.
    pub(crate) fn new(timeout: Duration) -> Self {
        let connector = awc::Connector::new().timeout(Duration::from_secs(5));
        Upstream {
            client: awc::Client::builder()
                .connector(connector)
                .timeout(timeout)
                .disable_redirects()
                .no_default_headers()
                .finish(),
        }
    }
}

/// Marks a response that came from the upstream: keygate's own security headers and error pages
/// stay off it (the application decides its CSP, its framing, its 404 page).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proxied;

/// Headers of one hop only (RFC 9110 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn hop_by_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
        || headers
            .get_all(header::CONNECTION)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str()))
}

/// The default service in proxy mode.
pub(crate) async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let access = access_for(&state, req.method().as_str(), req.path());
    let auth = match admit(&req, access).await {
        Ok(auth) => auth,
        Err(rejection) => return rejection.error_response(),
    };
    let headers = upstream_headers(&req, &state, auth.as_ref()).await;
    let Some(base) = &state.settings.upstream else {
        return failure(&req, false);
    };
    let target = format!(
        "{}{}",
        base.as_str().trim_end_matches('/'),
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    if is_websocket(&req) {
        return websocket(&req, payload, &upstream, &target, headers).await;
    }
    let mut request = upstream.client.request(req.method().clone(), &target);
    for (name, value) in headers.iter() {
        request = request.append_header((name.clone(), value.clone()));
    }
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let sent = match (length, chunked) {
        // A declared length goes on as it is; so does no body at all.
        (Some(n), false) => request.send_body(SizedStream::new(n, payload)).await,
        (None, false) => request.send().await,
        _ => request.send_stream(payload).await,
    };
    match sent {
        Ok(answer) => relay_response(answer),
        Err(SendRequestError::Timeout) => {
            log::warn!(
                "upstream did not answer {} {} in time",
                req.method(),
                target_for_log(&req)
            );
            failure(&req, true)
        }
        Err(e) => {
            log::warn!(
                "upstream unreachable for {} {}: {e}",
                req.method(),
                target_for_log(&req)
            );
            failure(&req, false)
        }
    }
}

/// The path for a log line: no query (it may carry codes or tokens).
fn target_for_log(req: &HttpRequest) -> String {
    crate::util::for_log(req.path(), 200)
}

/// The client's headers without hop-by-hop ones, forged identity headers or keygate's session
/// cookie; then `X-Forwarded-*` and keygate's identity headers.
async fn upstream_headers(
    req: &HttpRequest,
    state: &AppState,
    auth: Option<&Authenticated>,
) -> HeaderMap {
    let incoming = req.headers();
    let mut out = HeaderMap::new();
    for (name, value) in incoming.iter() {
        if hop_by_hop(name, incoming) || name == header::COOKIE {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    strip_identity(&mut out);
    if let Some(cookies) = without_session_cookie(req, state.cookies.session) {
        out.insert(header::COOKIE, cookies);
    }
    let info = req.connection_info().clone();
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let forwarded_for = match incoming
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(earlier) if state.settings.forwarded.is_some() => format!("{earlier}, {peer}"),
        _ => peer,
    };
    for (name, value) in [
        ("x-forwarded-for", forwarded_for.as_str()),
        ("x-forwarded-proto", info.scheme()),
        ("x-forwarded-host", info.host()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(HeaderName::from_static(name), v);
        }
    }
    if let Some(id) = crate::util::request_id::current() {
        if let Ok(v) = HeaderValue::from_str(&id) {
            out.insert(HeaderName::from_static(super::gate::REQUEST_ID), v);
        }
    }
    if let Some(auth) = auth {
        let token = match state.settings.pass_access_token {
            true => access_token_of(req, auth).await.ok(),
            false => None,
        };
        for (name, value) in identity_headers(state, auth, token.as_ref().map(|t| t.secret())) {
            out.insert(name, value);
        }
    }
    out
}

/// The `Cookie` header without keygate's session cookie (the application has no use for it, and
/// must not be able to replay it).
fn without_session_cookie(req: &HttpRequest, session: &str) -> Option<HeaderValue> {
    let kept: Vec<&str> = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.split('=').next() != Some(session))
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// The upstream's answer, streamed to the client as it arrives.
fn relay_response<S>(answer: awc::ClientResponse<S>) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<web::Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let mut response = HttpResponse::build(answer.status());
    let headers = answer.headers().clone();
    let mut length = None;
    for (name, value) in headers.iter() {
        if hop_by_hop(name, &headers) {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            length = value.to_str().ok().and_then(|v| v.parse::<u64>().ok());
            continue;
        }
        response.append_header((name.clone(), value.clone()));
    }
    let mut response = match length {
        Some(n) => response.body(SizedStream::new(n, answer)),
        None => response.streaming(answer),
    };
    response.extensions_mut().insert(Proxied);
    response
}

/// 502 or 504 as a page, or JSON under the API prefixes.
fn failure(req: &HttpRequest, timeout: bool) -> HttpResponse {
    let error = ApiError::Upstream { timeout };
    if is_api(req) {
        return error.error_response();
    }
    let why = match timeout {
        true => "The application did not answer in time",
        false => "The application cannot be reached",
    };
    error_page_with_retry(
        error.status_code(),
        "Application unavailable",
        &format!("{why}. Please try again in a moment."),
        req.path(),
        "Try again",
    )
}

fn is_websocket(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Opens the WebSocket at the upstream first (so a refusal there is the client's answer too),
/// then accepts the client's and relays frames both ways until either side closes.
async fn websocket(
    req: &HttpRequest,
    payload: web::Payload,
    upstream: &Upstream,
    target: &str,
    headers: HeaderMap,
) -> HttpResponse {
    let ws_target = target.replacen("http", "ws", 1);
    let mut connect = upstream.client.ws(ws_target);
    for (name, value) in headers.iter() {
        if name.as_str().starts_with("sec-websocket-") || name == header::HOST {
            continue;
        }
        connect = connect.set_header(name.clone(), value.clone());
    }
    if let Some(protocols) = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
    {
        let list: Vec<&str> = protocols.split(',').map(str::trim).collect();
        connect = connect.protocols(list);
    }
    let (_, upstream_socket) = match connect.connect().await {
        Ok(pair) => pair,
        Err(e) => {
            log::warn!(
                "upstream refused the WebSocket of {}: {e}",
                target_for_log(req)
            );
            return failure(req, false);
        }
    };
    let (mut response, mut session, mut from_client) = match actix_ws::handle(req, payload) {
        Ok(parts) => parts,
        Err(e) => return e.error_response(),
    };
    let (mut to_upstream, mut from_upstream) = upstream_socket.split();
    actix_web::rt::spawn(async move {
        use actix_ws::Message;
        use awc::ws::Frame;
        loop {
            tokio::select! {
                msg = from_client.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    let close = matches!(msg, Message::Close(_));
                    if to_upstream.send(msg).await.is_err() || close {
                        break;
                    }
                }
                frame = from_upstream.next() => {
                    let sent = match frame {
                        Some(Ok(Frame::Text(t))) => match std::str::from_utf8(&t) {
                            Ok(text) => session.text(text.to_string()).await,
                            Err(_) => break,
                        },
                        Some(Ok(Frame::Binary(b))) => session.binary(b).await,
                        Some(Ok(Frame::Ping(p))) => session.pong(&p).await,
                        Some(Ok(Frame::Pong(p))) => session.pong(&p).await,
                        Some(Ok(Frame::Close(reason))) => {
                            let _ = session.close(reason).await;
                            return;
                        }
                        Some(Ok(Frame::Continuation(_))) => Ok(()),
                        Some(Err(_)) | None => break,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = session.close(None).await;
    });
    response.extensions_mut().insert(Proxied);
    response
}
