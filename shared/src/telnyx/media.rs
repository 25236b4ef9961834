//! Fetching an inbound MMS's media from the links Telnyx gives in
//! `message.received` (they expire, so the media consumer copies them into
//! the bucket). The body is read a chunk at a time and abandoned past the
//! cap, so a huge or endless file never sits in memory.

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

/// The client media is fetched with: bounded time, a few redirects.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
}

/// GETs `url`, refusing anything over `cap` bytes.
pub async fn fetch(http: &reqwest::Client, url: &str, cap: u64) -> Result<Fetched, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::Refused(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(FetchError::Refused(format!(
            "scheme {} is not http(s)",
            parsed.scheme()
        )));
    }
    let mut response = http
        .get(parsed)
        .send()
        .await
        .map_err(FetchError::Transient)?;
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
