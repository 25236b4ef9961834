//! A Telnyx simulator: `POST /v2/messages` with Telnyx's validation and
//! error bodies, a per-`from` MPS limit answered with 429 and
//! `x-ratelimit-*` headers, configurable latency and failure rates, and
//! `message.sent` then `message.finalized` delivered to the message's
//! `webhook_url`, signed with Ed25519 exactly as Telnyx signs. Every
//! accepted message goes into a ledger that tests read to count duplicates.
//! It also keeps the account's numbers (`GET /v2/phone_numbers`, `numbers`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api::{ApiError, CreateMessage, ErrorResponse};
use super::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::domain::message_text::segment_info;

mod numbers;

pub use numbers::MESSAGING_PROFILE_ID;

/// How long the simulated carrier takes to answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    Fixed(Duration),
    Uniform(Duration, Duration),
}

impl Latency {
    /// `"0"`, `"120"` or `"500-2000"` (milliseconds).
    pub fn parse(raw: &str) -> Option<Self> {
        let ms = |s: &str| s.trim().parse::<u64>().ok().map(Duration::from_millis);
        match raw.split_once('-') {
            Some((a, b)) => Some(Latency::Uniform(ms(a)?, ms(b)?)),
            None => ms(raw).map(Latency::Fixed),
        }
    }

    fn sample(&self) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform(a, b) if b > a => {
                a + Duration::from_millis(rand::rng().random_range(0..=(b - a).as_millis() as u64))
            }
            Latency::Uniform(a, _) => a,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub api_key: String,
    /// The 32-byte Ed25519 seed webhooks are signed with.
    pub signing_seed: [u8; 32],
    /// Messages per second accepted from one `from` number.
    pub mps_per_from: u32,
    pub latency: Latency,
    /// Share of sends answered 500 (code 10007).
    pub failure_rate: f64,
    /// Share of accepted messages finalized as `delivery_failed`.
    pub delivery_failure_rate: f64,
    /// Delay before each webhook.
    pub webhook_delay: Duration,
    /// Deliveries of one webhook before giving up (Telnyx's retries are finite too).
    pub webhook_attempts: u32,
}

/// What the `TELNYX_SIM_*` variables change of a [`SimConfig`]'s defaults
/// (read with the rest of the configuration, `config.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatorSettings {
    pub mps: Option<u32>,
    pub latency: Option<Latency>,
    pub failure_rate: Option<f64>,
    pub delivery_failure_rate: Option<f64>,
    pub webhook_attempts: Option<u32>,
}

impl SimConfig {
    /// Applies the `TELNYX_SIM_*` settings over the defaults.
    pub fn with_settings(mut self, settings: &SimulatorSettings) -> Self {
        if let Some(mps) = settings.mps {
            self.mps_per_from = mps;
        }
        if let Some(latency) = settings.latency {
            self.latency = latency;
        }
        if let Some(rate) = settings.failure_rate {
            self.failure_rate = rate;
        }
        if let Some(rate) = settings.delivery_failure_rate {
            self.delivery_failure_rate = rate;
        }
        if let Some(attempts) = settings.webhook_attempts {
            self.webhook_attempts = attempts;
        }
        self
    }

    pub fn new(api_key: &str, signing_seed: [u8; 32]) -> Self {
        Self {
            api_key: api_key.to_owned(),
            signing_seed,
            mps_per_from: 1_000,
            latency: Latency::Fixed(Duration::ZERO),
            failure_rate: 0.0,
            delivery_failure_rate: 0.0,
            webhook_delay: Duration::from_millis(10),
            webhook_attempts: WEBHOOK_ATTEMPTS,
        }
    }
}

/// Deliveries of one webhook before the simulator gives up, by default.
const WEBHOOK_ATTEMPTS: u32 = 6;

/// Delivers inbound texts for a running simulator.
#[derive(Clone)]
pub struct SimulatorHandle {
    state: Arc<State>,
}

impl SimulatorHandle {
    /// A member's phone texts `to` (a church's number): a signed
    /// `message.received` is delivered to `webhook_url` as Telnyx would.
    /// Whether the webhook accepted it.
    pub async fn deliver_inbound(
        &self,
        webhook_url: &str,
        from: &str,
        to: &str,
        text: &str,
        media_urls: &[String],
    ) -> bool {
        let media: Vec<Value> = media_urls.iter().map(|u| self.describe(u)).collect();
        let payload = json!({
            "id": uuid_like(), "record_type": "message", "direction": "inbound", "type": if media.is_empty() { "SMS" } else { "MMS" },
            "from": { "phone_number": from, "carrier": "Simulated", "line_type": "Wireless" },
            "to": [{ "phone_number": to, "status": "webhook_delivered" }],
            "text": text, "media": media, "received_at": chrono::Utc::now().to_rfc3339(),
            "parts": 1, "encoding": "GSM-7", "errors": [],
        });
        deliver(&self.state, webhook_url, "message.received", &payload).await
    }

    /// The account buys a fresh number for `church` (its customer
    /// reference), as the platform does for a church that needs one.
    pub fn buy_number(&self, church: &str) -> String {
        self.state.numbers.buy(church)
    }

    /// The account holds `number`, bought for `church`.
    pub fn assign_number(&self, number: &str, church: &str) {
        self.state.numbers.assign(number, church);
    }

    /// The number's status on the account changes (`ported_out`, `deleted`, …).
    pub fn set_number_status(&self, number: &str, status: &str) {
        self.state.numbers.set_status(number, status);
    }

    /// Serves `bytes` at a new link of the simulator, as Telnyx serves a
    /// member's MMS media; the link for `deliver_inbound`.
    pub fn host_media(&self, content_type: &str, bytes: Bytes) -> String {
        let id = uuid_like();
        lock(&self.state.media).insert(id.clone(), (content_type.to_owned(), bytes));
        format!("{}{MEDIA_PREFIX}{id}", self.state.base_url)
    }

    /// The link stops working, as Telnyx's do after a while.
    pub fn expire_media(&self, url: &str) {
        if let Some(id) = url.rsplit('/').next() {
            lock(&self.state.media).remove(id);
        }
    }

    /// A `payload.media` entry: hosted files are described as Telnyx
    /// describes them; other links pass through undescribed.
    fn describe(&self, url: &str) -> Value {
        let hosted = url
            .strip_prefix(&format!("{}{MEDIA_PREFIX}", self.state.base_url))
            .and_then(|id| lock(&self.state.media).get(id).cloned());
        match hosted {
            Some((content_type, bytes)) => json!({
                "url": url, "content_type": content_type, "size": bytes.len(),
                "hash_sha256": hex::encode(Sha256::digest(&bytes)),
            }),
            None => json!({ "url": url, "content_type": null, "size": null, "hash_sha256": null }),
        }
    }
}

/// Where the simulator serves inbound media.
const MEDIA_PREFIX: &str = "/media/";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `GET /media/{id}`: a hosted file, or Telnyx's 404 once it expired.
fn serve_media(state: &State, path: &str) -> Option<Response<Full<Bytes>>> {
    let id = path.strip_prefix(MEDIA_PREFIX)?;
    let found = lock(&state.media).get(id).cloned();
    Some(match found {
        Some((content_type, bytes)) => {
            let mut response = Response::new(Full::new(bytes));
            if let Ok(value) = http::HeaderValue::from_str(&content_type) {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_TYPE, value);
            }
            response
        }
        None => error(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "The media has expired or does not exist.",
        ),
    })
}

/// One message the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: String,
    pub from: String,
    pub to: String,
    pub text: Option<String>,
    pub media_urls: Vec<String>,
    /// When it was accepted (pacing is judged from these).
    pub at: chrono::DateTime<chrono::Utc>,
}

struct State {
    config: SimConfig,
    key: SigningKey,
    ledger: Mutex<Vec<LedgerEntry>>,
    /// `from` → when it is free again (GCRA, bursts of up to one second's MPS).
    free_at: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// 429s answered.
    throttled: std::sync::atomic::AtomicU64,
    http: reqwest::Client,
    /// Inbound media it serves: id → (content type, bytes).
    media: Mutex<HashMap<String, (String, Bytes)>>,
    base_url: String,
    /// The messaging profile's webhook URL: where receipts go when a
    /// message names no `webhook_url` of its own, as on Telnyx.
    profile_webhook: Mutex<Option<String>>,
    /// The numbers the account holds.
    numbers: numbers::Numbers,
}

/// A running simulator; stops when dropped or with `stop`.
pub struct Simulator {
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
}

fn error(status: StatusCode, code: &str, title: &str, detail: &str) -> Response<Full<Bytes>> {
    let body = ErrorResponse {
        errors: vec![ApiError {
            code: code.into(),
            title: title.into(),
            detail: Some(detail.into()),
        }],
    };
    let mut response = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(&body).unwrap_or_default(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// E.164 as Telnyx checks it: `+`, then 8 to 15 digits.
fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
}

fn uuid_like() -> String {
    let hex = format!("{:032x}", ulid::Ulid::new().0);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

impl Simulator {
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            key: SigningKey::from_bytes(&config.signing_seed),
            config,
            ledger: Mutex::new(Vec::new()),
            free_at: Mutex::new(HashMap::new()),
            throttled: std::sync::atomic::AtomicU64::new(0),
            http: reqwest::Client::new(),
            media: Mutex::new(HashMap::new()),
            base_url: format!("http://{addr}"),
            profile_webhook: Mutex::new(None),
            numbers: numbers::Numbers::default(),
        });
        let (shutdown, mut stop) = watch::channel(false);
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(pair) => pair, Err(_) => continue },
                    _ = stop.changed() => return,
                };
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the messaging profile's webhook URL (Telnyx's portal setting),
    /// used for receipts of messages that name none.
    pub fn set_profile_webhook(&self, url: &str) {
        *lock(&self.state.profile_webhook) = Some(url.to_owned());
    }

    /// The key webhooks verify with (`TELNYX_PUBLIC_KEY`).
    pub fn public_key(&self) -> VerifyingKey {
        self.state.key.verifying_key()
    }

    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key().to_bytes())
    }

    /// A handle for delivering inbound texts (the local stack's `/sim/inbound`)
    /// and changing the account's numbers.
    pub fn handle(&self) -> SimulatorHandle {
        SimulatorHandle {
            state: Arc::clone(&self.state),
        }
    }

    /// How many requests were refused with 429 (a paced sender causes none).
    pub fn throttled(&self) -> u64 {
        self.state
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every message accepted so far, in order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn handle(state: Arc<State>, req: hyper::Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == http::Method::GET
        && let Some(response) = serve_media(&state, req.uri().path())
    {
        return response;
    }
    let listing_numbers = req.method() == http::Method::GET && req.uri().path() == numbers::ROUTE;
    let sending = req.method() == http::Method::POST && req.uri().path() == "/v2/messages";
    if !listing_numbers && !sending {
        return error(
            StatusCode::NOT_FOUND,
            "10005",
            "Resource not found",
            "The requested resource does not exist.",
        );
    }
    let expected = format!("Bearer {}", state.config.api_key);
    if req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "10009",
            "Authentication failed",
            "The API key is missing or invalid.",
        );
    }
    if listing_numbers {
        return state.numbers.list(req.uri().query().unwrap_or(""));
    }
    let Ok(body) = Limited::new(req.into_body(), 1024 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "10015",
            "Bad request",
            "The request body could not be read.",
        );
    };
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "10015",
            "Bad request",
            "The request body is not valid JSON.",
        );
    };
    if raw.get("to").is_some_and(Value::is_array) {
        return error(
            StatusCode::BAD_REQUEST,
            "40310",
            "Too many recipients",
            "Only one recipient may be given per request.",
        );
    }
    let Ok(message) = serde_json::from_value::<CreateMessage>(raw) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "10015",
            "Bad request",
            "The request does not match the schema.",
        );
    };
    let from = message.from.clone().unwrap_or_default();
    for (field, number) in [("to", &message.to), ("from", &from)] {
        if !is_e164(number) {
            return error(
                StatusCode::BAD_REQUEST,
                "10016",
                "Phone number must be in +E.164 format",
                &format!("The '{field}' parameter must be in E.164 format."),
            );
        }
    }
    if message.text.as_deref().unwrap_or("").is_empty() && message.media_urls.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "40008",
            "Message body is empty",
            "Either text or media_urls is required.",
        );
    }
    // Per-number throughput: one message every 1/MPS, bursts of up to one
    // second's worth, as a leaky bucket carrier limit behaves.
    let now = chrono::Utc::now();
    {
        let mut free_at = state.free_at.lock().unwrap_or_else(|p| p.into_inner());
        let interval = crate::messaging::pacing::interval(state.config.mps_per_from);
        let tolerance = chrono::Duration::seconds(1) - interval;
        match crate::messaging::pacing::book(
            free_at.get(&from).copied(),
            now,
            interval,
            1,
            tolerance,
        ) {
            Ok((_, next)) => {
                free_at.insert(from.clone(), next);
            }
            Err(wait) => {
                state
                    .throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut response = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "10011",
                    "Too many requests",
                    "You have exceeded the maximum number of allowed requests.",
                );
                let reset = (wait.num_milliseconds() as f64 / 1000.0).ceil().max(1.0);
                let headers = response.headers_mut();
                for (name, value) in [
                    ("x-ratelimit-limit", state.config.mps_per_from.to_string()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", format!("{reset}")),
                ] {
                    if let Ok(value) = http::HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                return response;
            }
        }
    }
    tokio::time::sleep(state.config.latency.sample()).await;
    if rand::rng().random_bool(state.config.failure_rate.clamp(0.0, 1.0)) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "10007",
            "Unexpected error",
            "An unexpected error occurred.",
        );
    }
    let id = uuid_like();
    let text = message.text.clone().unwrap_or_default();
    let parts = segment_info(&text).segments.max(1);
    let payload = json!({
        "id": id, "record_type": "message", "direction": "outbound", "type": if message.media_urls.is_empty() { "SMS" } else { "MMS" },
        "from": { "phone_number": from, "carrier": "Telnyx", "line_type": "Wireless" },
        "to": [{ "phone_number": message.to, "status": "queued", "carrier": "SIMULATED", "line_type": "Wireless" }],
        "text": text, "media": message.media_urls.iter().map(|u| json!({"url": u})).collect::<Vec<_>>(),
        "parts": parts, "encoding": "GSM-7", "cost": { "amount": format!("{:.4}", 0.004 * parts as f64), "currency": "USD" },
        "errors": [], "webhook_url": message.webhook_url, "sent_at": Value::Null, "completed_at": Value::Null,
        "valid_until": (now + chrono::Duration::hours(4)).to_rfc3339(),
    });
    state
        .ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(LedgerEntry {
            id: id.clone(),
            from,
            to: message.to.clone(),
            text: message.text.clone(),
            media_urls: message.media_urls.clone(),
            at: now,
        });
    let profile_webhook = lock(&state.profile_webhook).clone();
    if let Some(url) = message.webhook_url.clone().or(profile_webhook) {
        tokio::spawn(deliver_receipts(Arc::clone(&state), url, payload.clone()));
    }
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "data": payload }).to_string(),
    )));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `message.sent`, then `message.finalized` (delivered or delivery_failed).
async fn deliver_receipts(state: Arc<State>, url: String, mut payload: Value) {
    let failed = rand::rng().random_bool(state.config.delivery_failure_rate.clamp(0.0, 1.0));
    for (event_type, status) in [
        ("message.sent", "sent"),
        (
            "message.finalized",
            if failed {
                "delivery_failed"
            } else {
                "delivered"
            },
        ),
    ] {
        tokio::time::sleep(state.config.webhook_delay).await;
        payload["to"][0]["status"] = json!(status);
        if failed && event_type == "message.finalized" {
            payload["errors"] = json!([{ "code": "40008", "title": "Undeliverable", "detail": "The message could not be delivered." }]);
        }
        deliver(&state, &url, event_type, &payload).await;
    }
}

/// Posts one signed event to `url`; like Telnyx, anything but a 2xx is
/// retried with backoff. Whether it was accepted.
async fn deliver(state: &State, url: &str, event_type: &str, payload: &Value) -> bool {
    let event = json!({
        "data": { "event_type": event_type, "id": uuid_like(), "occurred_at": chrono::Utc::now().to_rfc3339(), "record_type": "event", "payload": payload },
        "meta": { "attempt": 1, "delivered_to": url },
    });
    let body = event.to_string();
    for attempt in 0..state.config.webhook_attempts {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = STANDARD.encode(
            state
                .key
                .sign(format!("{timestamp}|{body}").as_bytes())
                .to_bytes(),
        );
        let sent = state
            .http
            .post(url)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::debug!(status = %r.status(), attempt, "simulated webhook refused; retrying")
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "simulated webhook not delivered; retrying")
            }
        }
        if attempt + 1 < state.config.webhook_attempts {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
    }
    false
}
