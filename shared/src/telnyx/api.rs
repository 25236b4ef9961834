//! Telnyx API v2 shapes: messaging (`POST /v2/messages`) and the account's
//! numbers (`GET /v2/phone_numbers`), as the OpenAPI spec and the real
//! service send them. `cost.amount` comes as a string in the
//! spec and real captures but as a number in some docs: both parse.

use serde::{Deserialize, Deserializer, Serialize};

/// The body of `POST /v2/messages`: one recipient per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMessage {
    pub from: Option<String>,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_profile_id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageResponse {
    pub data: Message,
}

/// A message as Telnyx reports it, in API answers and webhook payloads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    pub id: Option<String>,
    #[serde(default)]
    pub record_type: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub parts: Option<u32>,
    #[serde(default)]
    pub to: Vec<Recipient>,
    #[serde(default)]
    pub cost: Option<Cost>,
    #[serde(default)]
    pub errors: Vec<ApiError>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Recipient {
    pub phone_number: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Cost {
    #[serde(default, deserialize_with = "string_or_number")]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub errors: Vec<ApiError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v2/phone_numbers`: a page of the account's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberList {
    pub data: Vec<PhoneNumberRecord>,
}

/// One of the account's numbers (Telnyx's `PhoneNumberDetailed`, the fields read here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumberRecord {
    pub id: String,
    #[serde(default = "phone_number_record_type")]
    pub record_type: String,
    pub phone_number: String,
    /// `active`, `purchase_pending`, `port_pending`, `deleted`, `ported_out`, …
    pub status: String,
    #[serde(default)]
    pub customer_reference: Option<String>,
    #[serde(default)]
    pub purchased_at: Option<String>,
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
}

fn phone_number_record_type() -> String {
    "phone_number".into()
}
