//! Telnyx: every signature vector, every fixture parses, and the client
//! against the simulator — success, refusals, 429s, faults and signed
//! delivery receipts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use shared::config::Secret;
use shared::domain::PhoneNumber;
use shared::ports::carrier::{Carrier, CarrierError, OutboundMessage, SentMessage};
use shared::telnyx::api::{ErrorResponse, Message, MessageResponse};
use shared::telnyx::simulator::{Latency, SimConfig, Simulator};
use shared::telnyx::{TelnyxCarrier, WebhookError, WebhookVerifier};

fn fixtures(folder: &str) -> PathBuf {
    crate::support::fixture_path(folder)
}

#[test]
fn every_signature_vector_gets_the_expected_answer() {
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures("telnyx_webhook_signature/vectors.json")).unwrap(),
    )
    .unwrap();
    let now = Utc.timestamp_opt(1_735_689_600, 0).unwrap();
    let mut checked = 0;
    for case in vectors["positive"]
        .as_array()
        .unwrap()
        .iter()
        .chain(vectors["negative"].as_array().unwrap())
    {
        let name = case["name"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let verified = WebhookVerifier::from_base64(case["public_key_b64"].as_str().unwrap())
            .and_then(|v| {
                v.verify(
                    case["timestamp"].as_str().unwrap(),
                    case["signature_b64"].as_str().unwrap(),
                    case["payload"].as_str().unwrap().as_bytes(),
                    now,
                )
            });
        let expected = match expect {
            "valid" => Ok(()),
            "invalid_signature" => Err(WebhookError::BadSignature),
            "invalid_signature_format" => Err(WebhookError::BadSignatureFormat),
            "invalid_public_key" => Err(WebhookError::BadPublicKey),
            "invalid_timestamp" => Err(WebhookError::BadTimestamp),
            other => panic!("{name}: unknown expectation {other}"),
        };
        // A one-second timestamp change is also a signature mismatch.
        assert_eq!(verified, expected, "{name}");
        checked += 1;
    }
    assert!(checked >= 13);

    let good = &vectors["positive"][0];
    let verifier = WebhookVerifier::from_base64(good["public_key_b64"].as_str().unwrap()).unwrap();
    let check = |now| {
        verifier.verify(
            good["timestamp"].as_str().unwrap(),
            good["signature_b64"].as_str().unwrap(),
            good["payload"].as_str().unwrap().as_bytes(),
            now,
        )
    };
    assert_eq!(check(now + chrono::Duration::seconds(300)), Ok(()));
    assert_eq!(
        check(now + chrono::Duration::seconds(301)),
        Err(WebhookError::Stale)
    );
    assert_eq!(
        check(now - chrono::Duration::seconds(301)),
        Err(WebhookError::Stale),
        "future timestamps too"
    );
}

#[test]
fn every_api_example_and_webhook_payload_parses() {
    let mut parsed = 0;
    for entry in std::fs::read_dir(fixtures("telnyx_api_examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if name.contains("error") {
            let e: ErrorResponse =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!e.errors[0].code.is_empty(), "{name}");
        } else if name.contains("response_200") {
            let r: MessageResponse =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.data.id.is_some(), "{name}");
            assert!(
                r.data
                    .cost
                    .as_ref()
                    .and_then(|c| c.amount.as_ref())
                    .is_some(),
                "{name}: cost.amount as string or number"
            );
        } else {
            let _: shared::telnyx::api::CreateMessage =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        parsed += 1;
    }
    for entry in std::fs::read_dir(fixtures("telnyx_webhook_payloads")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.contains("fragment") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(
            event["data"]["event_type"]
                .as_str()
                .unwrap()
                .starts_with("message."),
            "{name}"
        );
        let _: Message = serde_json::from_value(event["data"]["payload"].clone())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        parsed += 1;
    }
    assert!(parsed >= 15);
}

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).unwrap()
}

fn sms(from: &str, to: &str, webhook_url: Option<String>) -> OutboundMessage {
    OutboundMessage {
        from: phone(from),
        to: phone(to),
        text: "Service at 10am {firstName}".into(),
        media_urls: vec![],
        webhook_url,
    }
}

async fn sim(configure: impl FnOnce(&mut SimConfig)) -> (Simulator, TelnyxCarrier) {
    let mut config = SimConfig::new("KEY-test", [7u8; 32]);
    configure(&mut config);
    let simulator = Simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let carrier =
        TelnyxCarrier::new(&simulator.base_url(), Secret::new(b"KEY-test".to_vec())).unwrap();
    (simulator, carrier)
}

/// A simulator and the client; one text sent with the right key, then one
/// with a wrong key. The simulator, what the first answered and what the
/// second did.
async fn sent_once_then_with_a_wrong_key()
-> (Simulator, SentMessage, Result<SentMessage, CarrierError>) {
    let (simulator, carrier) = sim(|_| {}).await;
    let sent = carrier
        .send(&sms("+12025550100", "+12025550143", None))
        .await
        .unwrap();
    let wrong_key =
        TelnyxCarrier::new(&simulator.base_url(), Secret::new(b"nope".to_vec())).unwrap();
    let refused = wrong_key
        .send(&sms("+12025550100", "+12025550143", None))
        .await;
    (simulator, sent, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_through_the_simulator() {
    let (simulator, sent, _) = sent_once_then_with_a_wrong_key().await;
    let ledger = simulator.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].id, sent.carrier_id);
    assert_eq!(
        (ledger[0].to.as_str(), ledger[0].from.as_str()),
        ("+12025550143", "+12025550100")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_is_a_permanent_10009() {
    let (_simulator, _, refused) = sent_once_then_with_a_wrong_key().await;
    match refused {
        Err(CarrierError::Permanent { code, .. }) => assert_eq!(code, "10009"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_what_telnyx_refuses_and_ledgers_none_of_it() {
    let (simulator, _, _) = sent_once_then_with_a_wrong_key().await;
    // What the typed client can never send, a raw request can.
    let http = reqwest::Client::new();
    let raw = |body: Value| {
        http.post(format!("{}/v2/messages", simulator.base_url()))
            .bearer_auth("KEY-test")
            .json(&body)
            .send()
    };
    let bad_number: Value =
        raw(serde_json::json!({"from": "+12025550100", "to": "202-555-0143", "text": "x"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(bad_number["errors"][0]["code"], "10016");
    let many: Value = raw(serde_json::json!({"from": "+12025550100", "to": ["+12025550143", "+12025550144"], "text": "x"})).await.unwrap().json().await.unwrap();
    assert_eq!(many["errors"][0]["code"], "40310");
    assert_eq!(
        simulator.ledger().len(),
        1,
        "refused requests are not in the ledger"
    );
}

/// What the client makes of Telnyx's answer `status` with the body of
/// `fixture` (under telnyx_api_examples).
fn outcome_of(status: http::StatusCode, fixture: &str) -> Result<SentMessage, CarrierError> {
    shared::telnyx::client::outcome(
        status,
        &http::HeaderMap::new(),
        std::fs::read_to_string(fixtures(&format!("telnyx_api_examples/{fixture}")))
            .unwrap()
            .as_bytes(),
    )
}

#[test]
fn telnyxs_stop_block_is_opted_out() {
    let opted_out = outcome_of(
        http::StatusCode::CONFLICT,
        "post_v2_messages.error_40300_stop_block.docs.json",
    );
    assert_eq!(opted_out, Err(CarrierError::OptedOut));
}

#[test]
fn a_blocked_destination_is_a_permanent_40301() {
    let blocked = outcome_of(
        http::StatusCode::BAD_REQUEST,
        "error_40301_destination_blocked.docs.json",
    );
    assert!(
        matches!(blocked, Err(CarrierError::Permanent { ref code, .. }) if code == "40301"),
        "{blocked:?}"
    );
}

/// A simulator passing 3 MPS per number and the client; four texts sent
/// at once from +1 202 555 0100, and what each got.
async fn four_sends_at_3_mps() -> (
    Simulator,
    TelnyxCarrier,
    Vec<Result<SentMessage, CarrierError>>,
) {
    let (simulator, carrier) = sim(|c| c.mps_per_from = 3).await;
    let mut outcomes = Vec::new();
    for i in 0..4 {
        outcomes.push(
            carrier
                .send(&sms("+12025550100", &format!("+1202555014{i}"), None))
                .await,
        );
    }
    (simulator, carrier, outcomes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_over_its_mps_gets_429_with_a_reset() {
    let (simulator, _, outcomes) = four_sends_at_3_mps().await;
    let limited: Vec<_> = outcomes.iter().filter(|o| matches!(o, Err(CarrierError::Retryable { code, retry_after: Some(_) }) if code == "10011")).collect();
    assert!(!limited.is_empty(), "{outcomes:?}");
    assert!(
        simulator.ledger().len() <= 3 + 3,
        "at most the MPS per second passes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_number_has_its_own_mps_budget() {
    let (_simulator, carrier, _) = four_sends_at_3_mps().await;
    carrier
        .send(&sms("+12025550101", "+12025550143", None))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_fault_is_a_retryable_10007() {
    let (_faulty, faulty_carrier) = sim(|c| c.failure_rate = 1.0).await;
    match faulty_carrier
        .send(&sms("+12025550100", "+12025550143", None))
        .await
    {
        Err(CarrierError::Retryable { code, .. }) => assert_eq!(code, "10007"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_latency_delays_each_send() {
    let (_slow, slow_carrier) =
        sim(|c| c.latency = Latency::Uniform(Duration::from_millis(50), Duration::from_millis(80)))
            .await;
    let started = std::time::Instant::now();
    slow_carrier
        .send(&sms("+12025550100", "+12025550143", None))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn a_latency_range_parses_in_milliseconds() {
    assert_eq!(
        Latency::parse("500-2000"),
        Some(Latency::Uniform(
            Duration::from_millis(500),
            Duration::from_millis(2000)
        ))
    );
}

/// One webhook delivery: timestamp header, signature header, raw body.
type Delivery = (String, String, Vec<u8>);

/// A text sent through a simulator that delivers every text, with a tiny
/// webhook receiver on loopback as its webhook; the simulator, what the send
/// answered and the deliveries once there are two (or 2 s have passed).
async fn receipts_of_one_text() -> (Simulator, SentMessage, Vec<Delivery>) {
    // A tiny webhook receiver on loopback.
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let sink = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let sink = Arc::clone(&sink);
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let (ts, sig) = (
                                header("telnyx-timestamp"),
                                header("telnyx-signature-ed25519"),
                            );
                            let body = http_body_util::BodyExt::collect(req.into_body())
                                .await
                                .unwrap()
                                .to_bytes()
                                .to_vec();
                            sink.lock().unwrap().push((ts, sig, body));
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::new()),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let (simulator, carrier) = sim(|c| c.delivery_failure_rate = 0.0).await;
    let sent = carrier
        .send(&sms("+12025550100", "+12025550143", Some(url)))
        .await
        .unwrap();
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.lock().unwrap().clone();
    (simulator, sent, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_text_gets_two_receipts_sent_then_finalized() {
    let (_simulator, sent, got) = receipts_of_one_text().await;
    assert_eq!(got.len(), 2);
    let mut kinds = Vec::new();
    for (_, _, body) in &got {
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["data"]["payload"]["id"], sent.carrier_id.as_str());
        kinds.push((
            event["data"]["event_type"].as_str().unwrap().to_owned(),
            event["data"]["payload"]["to"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    assert_eq!(
        kinds,
        [
            ("message.sent".into(), "sent".into()),
            ("message.finalized".into(), "delivered".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_carry_the_simulators_signature_which_tampering_breaks() {
    let (simulator, _, got) = receipts_of_one_text().await;
    assert_eq!(got.len(), 2);
    let verifier = WebhookVerifier::from_key(simulator.public_key());
    assert!(WebhookVerifier::from_base64(&simulator.public_key_base64()).is_ok());
    for (ts, sig, body) in &got {
        verifier.verify(ts, sig, body, Utc::now()).unwrap();
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verifier.verify(ts, sig, &tampered, Utc::now()),
            Err(WebhookError::BadSignature)
        );
    }
}
