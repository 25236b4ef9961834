//! CORS for the admin frontend: the configured origins exactly (never `*`),
//! with credentials, and preflight for the headers the frontend sends.

use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Response};

use crate::config::Config;

pub const ALLOWED_HEADERS: &str =
    "Content-Type, Authorization, X-CSRF-Token, X-Requested-With, Idempotency-Key";
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "600";

/// The request's `Origin`, if the configuration allows it.
pub fn allowed_origin<'h>(config: &Config, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
    headers
        .get(header::ORIGIN)
        .filter(|origin| origin.to_str().is_ok_and(|o| config.origin_allowed(o)))
}

/// Adds the CORS answer headers for an allowed origin; others get none, so
/// the browser withholds the response from the page.
pub fn decorate(origin: Option<&HeaderValue>, response: &mut Response<Body>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Whether this is a CORS preflight rather than a real OPTIONS call.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

pub fn preflight(origin: Option<&HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    if origin.is_some() {
        *response.status_mut() = StatusCode::NO_CONTENT;
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
    } else {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    decorate(origin, &mut response);
    response
}
