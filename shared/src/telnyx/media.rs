//! Fetching an inbound MMS's media from the links Telnyx gives in
//! `message.received` (they expire, so the media consumer copies them into
//! the bucket). The body is read a chunk at a time and abandoned past the
//! cap, so a huge or endless file never sits in memory.
//!
//! A link comes from a webhook body, so it is not trusted to point
//! anywhere: the fetch reaches public addresses only, on the first request
//! and every redirect, checked where the address is known — a link's IP
//! literal before connecting, and every name as it resolves — so neither a
//! redirect nor a name that resolves to 169.254.169.254 (the instance
//! metadata) or 127.0.0.1 gets through. The one exception is the carrier's
//! own API address (the simulator on loopback, on the local stack).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// How long one file may take to arrive.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The link expired or never existed (403, 404, 410): trying again will not help.
    #[error("the media link is gone (HTTP {0})")]
    Gone(u16),
    /// Larger than the cap, by its `Content-Length` or by what arrived.
    #[error("the media is larger than {0} bytes")]
    TooLarge(u64),
    /// Not an `http`/`https` link, or another 4xx.
    #[error("the media link was refused: {0}")]
    Refused(String),
    /// A 5xx, a timeout or a broken connection: worth another try.
    #[error("fetching the media failed; worth another try")]
    Transient(#[source] reqwest::Error),
    #[error("the media host answered HTTP {0}; worth another try")]
    Unavailable(u16),
}

/// A fetched file.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// The `Content-Type` the host answered, if any.
    pub content_type: Option<String>,
}

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 3;

/// The client media is fetched with: bounded time, a few redirects, public
/// addresses only but for `carrier_api` (Telnyx's base URL), and no proxy
/// (one would resolve names where this check cannot see).
pub fn client(carrier_api: Option<&str>) -> Result<MediaClient, reqwest::Error> {
    let trusted = carrier_api
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| Some((u.host_str()?.to_owned(), u.port_or_known_default()?)));
    let policy_trusted = trusted.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(NotPublic("too many redirects".into()))
        } else if let Err(refused) = check_link(attempt.url(), policy_trusted.as_ref()) {
            attempt.error(refused)
        } else {
            attempt.follow()
        }
    });
    let http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(redirects)
        .dns_resolver(Arc::new(PublicResolver))
        .no_proxy()
        .build()?;
    Ok(MediaClient { http, trusted })
}

/// The media client and the one address it trusts besides public ones.
#[derive(Clone, Debug)]
pub struct MediaClient {
    http: reqwest::Client,
    trusted: Option<(String, u16)>,
}

/// A link, or a hop of it, leads somewhere private.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotPublic(String);

/// Whether a link may be requested: http(s), and an IP literal only if public
/// (names are checked as they resolve, by [`PublicResolver`]).
fn check_link(url: &reqwest::Url, trusted: Option<&(String, u16)>) -> Result<(), NotPublic> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotPublic(format!("scheme {} is not http(s)", url.scheme())));
    }
    let host = url.host_str().unwrap_or_default();
    if trusted.is_some_and(|(h, p)| h == host && Some(*p) == url.port_or_known_default()) {
        return Ok(());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(NotPublic("the link names no host".into())),
    };
    match literal {
        Some(ip) if !is_public(ip) => Err(NotPublic(format!("{ip} is not a public address"))),
        _ => Ok(()),
    }
}

/// Resolves names to their public addresses only; a name with none fails.
struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(NotPublic(format!("{host} resolves to no public address")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Reachable on the public internet: not loopback, private, link-local
/// (the instance metadata), carrier-grade NAT, documentation, benchmarking,
/// multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 and 6to4 carry an IPv4 address that could be private.
        || first == 0x0064
        || first == 0x2002)
}

/// Whether a failed request was stopped by the address check (somewhere
/// private: never worth another try).
fn stopped_as_not_public(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(not_public) = err.downcast_ref::<NotPublic>() {
            return Some(not_public.0.clone());
        }
        source = err.source();
    }
    None
}

/// GETs `url`, refusing anything over `cap` bytes, and any link that leads
/// somewhere private.
pub async fn fetch(media: &MediaClient, url: &str, cap: u64) -> Result<Fetched, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::Refused(e.to_string()))?;
    check_link(&parsed, media.trusted.as_ref()).map_err(|e| FetchError::Refused(e.0))?;
    let mut response =
        media
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| match stopped_as_not_public(&e) {
                Some(why) => FetchError::Refused(why),
                None => FetchError::Transient(e),
            })?;
    let status = response.status();
    match status.as_u16() {
        200..=299 => {}
        code @ (403 | 404 | 410) => return Err(FetchError::Gone(code)),
        code @ (408 | 429) => return Err(FetchError::Unavailable(code)),
        code @ 400..=499 => return Err(FetchError::Refused(format!("HTTP {code}"))),
        code => return Err(FetchError::Unavailable(code)),
    }
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(FetchError::TooLarge(cap));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transient)? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(FetchError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        bytes: body.freeze(),
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn links_to_private_literals_are_refused_but_the_carriers_own_address() {
        let trusted = ("127.0.0.1".to_owned(), 4010);
        let check = |u: &str| check_link(&reqwest::Url::parse(u).unwrap(), Some(&trusted));
        assert!(check("http://169.254.169.254/latest/meta-data/").is_err());
        assert!(check("http://[::1]:4010/media/x").is_err());
        assert!(
            check("http://127.0.0.1:4011/media/x").is_err(),
            "another port"
        );
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("http://127.0.0.1:4010/media/x").is_ok());
        assert!(
            check("https://media.example.org/x.jpg").is_ok(),
            "names are checked as they resolve"
        );
    }
}
