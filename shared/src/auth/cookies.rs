//! The auth cookies of API.md: `accessToken`, `refreshToken` (httpOnly) and
//! `csrfToken`. Secure with SameSite=None behind HTTPS (the frontend is on
//! another origin); Lax locally over plain HTTP.

use cookie::{Cookie, SameSite};
use http::HeaderMap;

pub const ACCESS: &str = "accessToken";
pub const REFRESH: &str = "refreshToken";
pub const CSRF: &str = "csrfToken";

/// Whether the request reached us over HTTPS (API Gateway sets `x-forwarded-proto`).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age_secs = 0` clears the cookie.
pub fn set(name: &str, value: &str, path: &str, max_age_secs: i64, https: bool) -> String {
    let mut cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .path(path.to_owned())
        .http_only(true)
        .max_age(cookie::time::Duration::seconds(max_age_secs));
    cookie = if https {
        cookie.secure(true).same_site(SameSite::None)
    } else {
        cookie.same_site(SameSite::Lax)
    };
    cookie.build().to_string()
}

/// The value of cookie `name` in the request, if any.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}
