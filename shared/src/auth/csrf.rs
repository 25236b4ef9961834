//! CSRF for cookie-authenticated state changes (API.md, Conventions): the
//! request passes with an `X-CSRF-Token` header equal to the `csrfToken`
//! cookie (double submit), or with an `Origin` (else `Referer`) on the
//! allowed list. Bearer-authenticated requests need neither: a browser never
//! attaches a bearer token on its own.

use http::{HeaderMap, Method};
use rand::RngCore;

use super::cookies;
use crate::config::Config;
use crate::error::ApiError;

pub const HEADER: &str = "x-csrf-token";

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn origin_of(headers: &HeaderMap) -> Option<String> {
    if let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        return Some(origin.to_owned());
    }
    let referer = headers
        .get(http::header::REFERER)
        .and_then(|v| v.to_str().ok())?;
    let url = url::Url::parse(referer).ok()?;
    Some(url.origin().ascii_serialization())
}

pub fn check(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let header = headers.get(HEADER).and_then(|v| v.to_str().ok());
    let cookie = cookies::get(headers, cookies::CSRF);
    if let (Some(header), Some(cookie)) = (header, cookie.as_deref())
        && !header.is_empty()
        && constant_time_eq(header.as_bytes(), cookie.as_bytes())
    {
        return Ok(());
    }
    if origin_of(headers).is_some_and(|o| config.origin_allowed(&o)) {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "csrf_invalid",
        message: "missing or invalid CSRF token".into(),
    })
}

/// For the routes whose credential is the refresh cookie (refresh, logout):
/// SameSite=None lets a foreign page's form carry it, so a request naming a
/// foreign `Origin` is refused outright, whatever else it carries. Without
/// an `Origin` it needs what [`check`] needs (a matching token or an
/// allowed `Referer`). The frontend's refresh is a cross-origin XHR, so
/// its browser always sends its own, allowed, `Origin`.
pub fn check_refresh_cookie(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(http::header::ORIGIN) {
        Some(origin) => match origin.to_str() {
            Ok(o) if config.origin_allowed(o) => Ok(()),
            _ => Err(ApiError::Forbidden {
                code: "origin_not_allowed",
                message: format!(
                    "Origin {} is not an allowed origin for a request carrying the refresh cookie",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            }),
        },
        None => check(config, headers),
    }
}
