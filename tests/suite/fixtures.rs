//! AWS's own event fixtures (tests/fixtures/aws_lambda_events) through
//! our plumbing, and the events the local stack makes held against them.

use std::collections::BTreeSet;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use serde_json::Value;
use shared::local::{Incoming, sqs_event, to_event, to_request};
use shared::ports::ReceivedMessage;

fn fixture(name: &str) -> String {
    crate::support::fixture_text(&format!("aws_lambda_events/{name}"))
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn api_gateway_v2_fixtures_become_requests() {
    for name in [
        "example-apigw-v2-request-no-authorizer.json",
        "example-apigw-v2-request-jwt-authorizer.json",
        "example-apigw-v2-request-lambda-authorizer.json",
        "example-apigw-v2-request-iam.json",
        "example-apigw-v2-request-multi-value-parameters.json",
        "lambda-http.apigw_v2_proxy_request.json",
        "lambda-http.apigw_v2_proxy_request_minimal.json",
    ] {
        let request = to_request(&serde_json::from_str(&fixture(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !shared::http::pipeline::request_id(&request).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn local_gateway_events_have_the_shape_of_real_ones() {
    let real: Value =
        serde_json::from_str(&fixture("example-apigw-v2-request-no-authorizer.json")).unwrap();
    let headers = http::HeaderMap::from_iter([
        (
            http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        ),
        (
            http::header::COOKIE,
            "accessToken=a; csrf=b".parse().unwrap(),
        ),
    ]);
    let uri: http::Uri = "/api/members/01J?page=2&limit=10".parse().unwrap();
    let ours = to_event(&Incoming {
        method: &http::Method::PUT,
        uri: &uri,
        headers: &headers,
        body: Bytes::from_static(br#"{"firstName":"Ruth"}"#),
        peer: "127.0.0.1:50000".parse().unwrap(),
        route_key: "PUT /api/members/{memberId}",
        path_parameters: [("memberId".to_owned(), "01J".to_owned())].into(),
        request_id: "req-1",
    });
    let missing: Vec<_> = keys(&real["requestContext"])
        .difference(&keys(&ours["requestContext"]))
        .cloned()
        .collect();
    assert!(
        missing
            .iter()
            .all(|k| k == "authentication" || k == "authorizer"),
        "missing: {missing:?}"
    );
    for key in [
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext",
        "isBase64Encoded",
        "body",
    ] {
        assert!(ours.get(key).is_some(), "{key}");
    }
    let request = to_request(&ours).unwrap();
    use lambda_http::RequestExt;
    assert_eq!(
        request
            .path_parameters_ref()
            .and_then(|p| p.first("memberId")),
        Some("01J")
    );
    assert_eq!(
        request
            .query_string_parameters_ref()
            .and_then(|q| q.first("page")),
        Some("2")
    );
    assert_eq!(request.headers()["cookie"], "accessToken=a; csrf=b");
    assert_eq!(request.body().as_ref(), br#"{"firstName":"Ruth"}"#);
}

#[test]
fn binary_bodies_travel_base64_encoded() {
    let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe");
    let headers =
        http::HeaderMap::from_iter([(http::header::CONTENT_TYPE, "image/png".parse().unwrap())]);
    let uri: http::Uri = "/api/media".parse().unwrap();
    let event = to_event(&Incoming {
        method: &http::Method::POST,
        uri: &uri,
        headers: &headers,
        body: png.clone(),
        peer: "127.0.0.1:50000".parse().unwrap(),
        route_key: "POST /api/media",
        path_parameters: Default::default(),
        request_id: "req-2",
    });
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(to_request(&event).unwrap().body().as_ref(), png.as_ref());
}

#[test]
fn aws_sqs_fixtures_parse() {
    let real: SqsEvent = serde_json::from_str(&fixture("example-sqs-event.json")).unwrap();
    assert!(!real.records.is_empty());
    let response: SqsBatchResponse =
        serde_json::from_str(&fixture("example-sqs-batch-response.json")).unwrap();
    assert!(!response.batch_item_failures.is_empty());
}

#[test]
fn local_sqs_events_have_the_shape_of_real_ones() {
    let real: SqsEvent = serde_json::from_str(&fixture("example-sqs-event.json")).unwrap();
    let real_record = serde_json::to_value(&real.records[0]).unwrap();
    let ours = sqs_event(
        "FanoutQueue",
        &[ReceivedMessage {
            message_id: "m-1".into(),
            receipt_handle: "r-1".into(),
            body: "{}".into(),
            receive_count: 3,
            sent_at_ms: 1_795_708_800_000,
        }],
    )
    .unwrap();
    let our_record = serde_json::to_value(&ours.records[0]).unwrap();
    for key in [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "eventSource",
        "eventSourceARN",
    ] {
        assert!(our_record.get(key).is_some(), "{key}");
    }
    assert_eq!(
        keys(&our_record["attributes"]),
        keys(&real_record["attributes"])
    );
    assert_eq!(ours.records[0].attributes["ApproximateReceiveCount"], "3");
}

#[test]
fn scheduled_events_match_eventbridges_fixture() {
    let real: Value = serde_json::from_str(&fixture("example-eventbridge-schedule.json")).unwrap();
    let parsed: EventBridgeEvent<Value> = serde_json::from_value(real.clone()).unwrap();
    assert_eq!(parsed.detail_type, "Scheduled Event");
    let ours =
        shared::local::scheduler::scheduled_event("RecurringMessagesFunction", chrono::Utc::now())
            .unwrap();
    assert_eq!(keys(&serde_json::to_value(&ours).unwrap()), keys(&real));
}
