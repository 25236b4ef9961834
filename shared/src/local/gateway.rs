//! Turns a plain HTTP request into the event API Gateway (HTTP API, payload
//! 2.0) would hand a Lambda, and reads it back with lambda_http's own
//! decoder — so handlers meet exactly what they meet on AWS.

use std::collections::HashMap;
use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::HeaderMap;
use lambda_http::{Body, Request};
use serde_json::{Map, Value, json};

pub struct Incoming<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
    pub route_key: &'a str,
    pub path_parameters: HashMap<String, String>,
    pub request_id: &'a str,
}

/// Whether API Gateway would pass the body as text rather than base64.
fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let textual = content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml")
        || content_type.starts_with("application/x-www-form-urlencoded");
    textual && std::str::from_utf8(body).is_ok()
}

pub fn to_event(incoming: &Incoming<'_>) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in incoming.headers.keys() {
        let values: Vec<&str> = incoming
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == http::header::COOKIE {
            cookies.extend(values.iter().flat_map(|v| v.split("; ")).map(str::to_owned));
            continue;
        }
        headers.insert(name.as_str().to_owned(), Value::from(values.join(",")));
    }
    let query = incoming.uri.query().unwrap_or("");
    let mut query_parameters: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let joined = match query_parameters.get(k.as_ref()).and_then(Value::as_str) {
            Some(existing) => format!("{existing},{v}"),
            None => v.into_owned(),
        };
        query_parameters.insert(k.into_owned(), Value::from(joined));
    }
    let now = chrono::Utc::now();
    let host = incoming
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let text = is_text(incoming.headers, &incoming.body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": incoming.route_key,
        "rawPath": incoming.uri.path(),
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {
                "method": incoming.method.as_str(),
                "path": incoming.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": incoming.peer.ip().to_string(),
                "userAgent": incoming.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": incoming.request_id,
            "routeKey": incoming.route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": !text,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query_parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(query_parameters);
    }
    if !incoming.path_parameters.is_empty() {
        event["pathParameters"] = json!(incoming.path_parameters);
    }
    if !incoming.body.is_empty() {
        event["body"] = if text {
            Value::from(String::from_utf8_lossy(&incoming.body).into_owned())
        } else {
            Value::from(STANDARD.encode(&incoming.body))
        };
    }
    event
}

/// The request a Lambda would receive for this event.
pub fn to_request(event: &Value) -> Result<Request, serde_json::Error> {
    lambda_http::request::from_str(&event.to_string())
}

pub fn body_bytes(body: Body) -> Bytes {
    match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    }
}
