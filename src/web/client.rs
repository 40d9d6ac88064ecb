//! Who sent a request, as the audit log and the rate limits see it.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use std::net::{IpAddr, SocketAddr};

use super::AppState;
use crate::domain::audit::AuditContext;
use crate::settings::{Forwarded, ForwardedHeader};

/// The client as the request shows it: the peer address, or, when keygate sits behind reverse
/// proxies it trusts (`KEYGATE_TRUST_FORWARDED`), the address the outermost of them appended.
pub(crate) fn audit_context(req: &HttpRequest) -> AuditContext {
    let peer = req.peer_addr().map(|a| a.ip());
    let forwarded = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.settings.forwarded.as_ref())
        .and_then(|f| forwarded_client(req, f, peer));
    AuditContext {
        ip: forwarded.or(peer).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(300).collect()),
    }
}

/// The client's address as [`audit_context`] finds it.
pub(crate) fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    audit_context(req).ip.and_then(|ip| ip.parse().ok())
}

/// The address `hops` entries from the right of the configured header, if it parses as one, and
/// only from a trusted proxy when a list of them is configured. What the client wrote further left
/// is never read; a header that says nothing usable leaves the peer address.
fn forwarded_client(req: &HttpRequest, f: &Forwarded, peer: Option<IpAddr>) -> Option<IpAddr> {
    if !f.proxies.is_empty() && !peer.is_some_and(|p| f.proxies.contains(&p)) {
        return None;
    }
    let name = match f.header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // Several header lines form one list, in order.
    let mut entries: Vec<&str> = vec![];
    for value in req.headers().get_all(name) {
        let Ok(text) = value.to_str() else {
            return None;
        };
        entries.extend(text.split(','));
    }
    let entry = entries.iter().rev().nth(f.hops - 1)?;
    let raw = match f.header {
        ForwardedHeader::XForwardedFor => entry.trim(),
        ForwardedHeader::Forwarded => entry
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case("for"))?
            .1
            .trim_matches('"'),
    };
    parse_address(raw)
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:4711` or `192.0.2.1:4711`.
fn parse_address(raw: &str) -> Option<IpAddr> {
    raw.parse()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            raw.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
}

impl FromRequest for AuditContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(audit_context(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn xff(hops: usize) -> Forwarded {
        Forwarded {
            header: ForwardedHeader::XForwardedFor,
            hops,
            proxies: vec![],
        }
    }

    fn client(req: &HttpRequest, f: &Forwarded) -> Option<String> {
        forwarded_client(req, f, Some("127.0.0.1".parse().unwrap())).map(|i| i.to_string())
    }

    #[test]
    fn the_address_the_trusted_proxy_appended_counts_not_what_the_client_wrote() {
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7"))
            .insert_header(("forwarded", "for=9.9.9.9"))
            .to_http_request();
        assert_eq!(client(&req, &xff(1)).as_deref(), Some("203.0.113.7"));
        assert_eq!(client(&req, &xff(2)).as_deref(), Some("6.6.6.6"));
        assert_eq!(client(&req, &xff(3)), None, "fewer entries than hops");
        let rfc = Forwarded {
            header: ForwardedHeader::Forwarded,
            ..xff(1)
        };
        assert_eq!(client(&req, &rfc).as_deref(), Some("9.9.9.9"));
    }

    #[test]
    fn garbage_and_untrusted_peers_leave_the_peer_address() {
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "1.2.3.4, not-an-ip"))
            .to_http_request();
        assert_eq!(client(&req, &xff(1)), None);
        let v6 = TestRequest::default()
            .insert_header(("forwarded", "for=\"[2001:db8::1]:4711\";proto=https"))
            .to_http_request();
        let rfc = Forwarded {
            header: ForwardedHeader::Forwarded,
            ..xff(1)
        };
        assert_eq!(client(&v6, &rfc).as_deref(), Some("2001:db8::1"));
        let only_proxy = Forwarded {
            proxies: vec!["10.0.0.1".parse().unwrap()],
            ..xff(1)
        };
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "203.0.113.7"))
            .to_http_request();
        assert_eq!(
            client(&req, &only_proxy),
            None,
            "peer 127.0.0.1 is no trusted proxy"
        );
    }
}
