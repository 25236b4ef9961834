//! The `Carrier` port on Telnyx's HTTP API, with its outcomes mapped to what
//! the caller does next: retry later, stop (opted out), or fail for good.

use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;

use super::api::{CreateMessage, ErrorResponse, MessageResponse, PhoneNumberList};
use crate::config::Secret;
use crate::domain::PhoneNumber;
use crate::ports::carrier::{AccountNumber, Carrier, CarrierError, OutboundMessage, SentMessage};

/// Telnyx answers within a second or two; past this the send is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct TelnyxCarrier {
    http: reqwest::Client,
    base_url: String,
    api_key: Secret,
}

impl TelnyxCarrier {
    /// `base_url` without a trailing slash, e.g. `https://api.telnyx.com`.
    pub fn new(base_url: &str, api_key: Secret) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        })
    }
}

/// Error codes worth another try (TELNYX.md): rate limits, Telnyx faults,
/// a recipient temporarily unavailable, upstream throttling, temporary spam flags.
const RETRYABLE_CODES: [&str; 5] = ["10011", "10007", "40002", "40006", "40011"];

/// What a Telnyx answer to a send means for the sender.
pub fn outcome(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<SentMessage, CarrierError> {
    if !status.is_success() {
        return Err(failure(status, headers, body));
    }
    let response: MessageResponse = serde_json::from_slice(body).map_err(unreadable)?;
    Ok(SentMessage {
        carrier_id: response.data.id.unwrap_or_default(),
        parts: response.data.parts.unwrap_or(1),
    })
}

/// What a Telnyx error answer means: retry later, opted out, or never.
fn failure(status: StatusCode, headers: &http::HeaderMap, body: &[u8]) -> CarrierError {
    let first = serde_json::from_slice::<ErrorResponse>(body)
        .ok()
        .and_then(|e| e.errors.into_iter().next());
    let code = first
        .as_ref()
        .map(|e| e.code.clone())
        .unwrap_or_else(|| status.as_u16().to_string());
    let title = first
        .map(|e| e.title)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    if status == StatusCode::TOO_MANY_REQUESTS {
        let reset = headers
            .get("x-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        return CarrierError::Retryable {
            code,
            retry_after: reset,
        };
    }
    if code == "40300" {
        return CarrierError::OptedOut;
    }
    if status.is_server_error() || RETRYABLE_CODES.contains(&code.as_str()) {
        return CarrierError::Retryable {
            code,
            retry_after: None,
        };
    }
    CarrierError::Permanent { code, title }
}

fn unreadable(e: serde_json::Error) -> CarrierError {
    CarrierError::Retryable {
        code: format!("unreadable_response: {e}"),
        retry_after: None,
    }
}

fn unreachable(e: &reqwest::Error) -> CarrierError {
    CarrierError::Retryable {
        code: if e.is_timeout() {
            "timeout".into()
        } else {
            "connection".into()
        },
        retry_after: None,
    }
}

impl TelnyxCarrier {
    /// Sends `request` with the API key; the answer's status, headers and body.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, http::HeaderMap, bytes::Bytes), CarrierError> {
        let api_key = String::from_utf8_lossy(self.api_key.expose()).into_owned();
        let response = request
            .bearer_auth(api_key)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| unreachable(&e))?;
        Ok((status, headers, bytes))
    }
}

#[async_trait]
impl Carrier for TelnyxCarrier {
    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, CarrierError> {
        let body = CreateMessage {
            from: Some(message.from.as_e164().to_owned()),
            to: message.to.as_e164().to_owned(),
            text: Some(message.text.clone()),
            media_urls: message.media_urls.clone(),
            webhook_url: message.webhook_url.clone(),
            messaging_profile_id: None,
            kind: Some(
                if message.media_urls.is_empty() {
                    "SMS"
                } else {
                    "MMS"
                }
                .into(),
            ),
        };
        let request = self
            .http
            .post(format!("{}/v2/messages", self.base_url))
            .json(&body);
        let (status, headers, bytes) = self.call(request).await?;
        outcome(status, &headers, &bytes)
    }

    async fn account_number(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<AccountNumber>, CarrierError> {
        // Telnyx's filter takes digits only and matches part of a number,
        // so the exact number is picked from what it answers.
        let digits = number.as_e164().trim_start_matches('+');
        let mut url =
            url::Url::parse(&format!("{}/v2/phone_numbers", self.base_url)).map_err(|e| {
                CarrierError::Permanent {
                    code: "bad_base_url".into(),
                    title: e.to_string(),
                }
            })?;
        url.query_pairs_mut()
            .append_pair("filter[phone_number]", digits)
            .append_pair("page[size]", "250");
        let request = self.http.get(url);
        let (status, headers, bytes) = self.call(request).await?;
        if !status.is_success() {
            return Err(failure(status, &headers, &bytes));
        }
        let list: PhoneNumberList = serde_json::from_slice(&bytes).map_err(unreadable)?;
        Ok(list
            .data
            .into_iter()
            .find(|record| record.phone_number == number.as_e164())
            .map(|record| AccountNumber {
                active: record.status == "active",
                assigned_to: record.customer_reference.filter(|c| !c.is_empty()),
                purchased_at: record.purchased_at,
                messaging_profile_id: record.messaging_profile_id.filter(|p| !p.is_empty()),
            }))
    }
}
