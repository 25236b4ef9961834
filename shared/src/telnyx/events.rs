//! Telnyx's messaging webhook events, as they arrive (TELNYX.md, Webhooks;
//! `tests/fixtures/telnyx_webhook_payloads`): the envelope's `data`, told
//! apart by `event_type`. Delivery receipts (`message.sent`,
//! `message.finalized`) and inbound texts (`message.received`) are read
//! here into what the use cases need; every other event is acknowledged.

use serde::Deserialize;
use serde_json::Value;

/// What a receipt's payload carries that we read; lenient, so a field we
/// do not read never costs us a receipt.
#[derive(Deserialize)]
struct ReceiptPayload {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    to: Vec<RecipientStatus>,
    #[serde(default)]
    errors: Vec<ReceiptError>,
}

#[derive(Deserialize)]
struct RecipientStatus {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct ReceiptError {
    #[serde(default)]
    code: Option<Value>,
}

#[derive(Deserialize)]
struct Envelope {
    data: Event,
}

/// One event: `data` of the envelope.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    /// Kept as sent: an inbound text without an id is known by its digest.
    #[serde(default)]
    pub payload: Value,
}

/// What an event asks of us.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Receipt(Receipt),
    Received(InboundPayload),
    /// Another event type, or one without what its type needs.
    Other,
}

/// A delivery receipt for a text we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_id: String,
    /// Telnyx's id of the message, as the send's answer gave it.
    pub carrier_id: String,
    /// The recipient's status (`sent`, `delivered`, `delivery_failed` …).
    pub status: String,
    pub error_code: Option<String>,
}

/// `message.received`'s payload.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InboundPayload {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub from: Party,
    #[serde(default)]
    pub to: Vec<Party>,
    #[serde(default)]
    pub text: Option<String>,
    /// Each `{url, content_type, size, hash_sha256}`; read by the media copy.
    #[serde(default)]
    pub media: Vec<Value>,
    /// Set when Telnyx answered a STOP/HELP keyword itself.
    #[serde(default)]
    pub autoresponse_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Party {
    #[serde(default)]
    pub phone_number: Option<String>,
}

impl Event {
    /// The event in a webhook's body.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<Envelope>(body).map(|e| e.data)
    }

    pub fn kind(&self) -> Kind {
        match self.event_type.as_deref() {
            Some("message.sent" | "message.finalized") => {
                self.receipt().map_or(Kind::Other, Kind::Receipt)
            }
            Some("message.received") => {
                InboundPayload::deserialize(&self.payload).map_or(Kind::Other, Kind::Received)
            }
            _ => Kind::Other,
        }
    }

    fn receipt(&self) -> Option<Receipt> {
        let payload = ReceiptPayload::deserialize(&self.payload).ok()?;
        let error_code = payload
            .errors
            .first()
            .and_then(|e| e.code.as_ref())
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Receipt {
            event_id: self.id.clone().filter(|id| !id.is_empty())?,
            carrier_id: payload.id.filter(|id| !id.is_empty())?,
            status: payload.to.into_iter().next()?.status?,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_without_an_event_id_or_status_asks_nothing() {
        let event = |data: serde_json::Value| -> Event { serde_json::from_value(data).unwrap() };
        let full = serde_json::json!({
            "id": "e1", "event_type": "message.finalized",
            "payload": {"id": "m1", "to": [{"phone_number": "+12025550100", "status": "delivery_failed"}],
                        "errors": [{"code": "40008", "title": "Undeliverable"}]},
        });
        assert_eq!(
            event(full.clone()).kind(),
            Kind::Receipt(Receipt {
                event_id: "e1".into(),
                carrier_id: "m1".into(),
                status: "delivery_failed".into(),
                error_code: Some("40008".into()),
            })
        );
        let mut no_id = full.clone();
        no_id["id"] = "".into();
        assert_eq!(event(no_id).kind(), Kind::Other);
        let mut no_status = full;
        no_status["payload"]["to"] = serde_json::json!([{"phone_number": "+12025550100"}]);
        assert_eq!(event(no_status).kind(), Kind::Other);
    }
}
