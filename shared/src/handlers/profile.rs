//! `GET/PUT /api/admin/profile` and `POST /api/admin/phone-numbers/link`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::members::ctx;
use crate::app::App;
use crate::auth::authenticate;
use crate::directory::profile::{self, ProfileChanges};
use crate::domain::PhoneNumber;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::request::{Fields, json};
use crate::http::response;
use crate::messaging::pacing::MAX_MPS;
use crate::scheduling::quiet_hours::QuietHours;

/// `GET /api/admin/profile` — bare, as the frontend reads it.
pub async fn get(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    response::bare(StatusCode::OK, &profile::view(&ctx(app, &caller)?).await?)
}

/// Fields the frontend may send back unchanged but never sets.
const READ_ONLY: [&str; 11] = [
    "id",
    "createdAt",
    "updatedAt",
    "dlcStatus",
    "dlcBrandId",
    "dlcCampaignId",
    "dlcRegisteredAt",
    "dlcApprovedAt",
    "telnyxPhoneNumber",
    "success",
    // The number's registered throughput: the operator's, not the admin's.
    "allowedMps",
];

fn text_limit(field: &str) -> usize {
    match field {
        "name" | "streetAddress" | "website" => 200,
        "city" => 100,
        "entityType" | "vertical" | "timezone" => 64,
        "welcomeMessage" => 480,
        "helpReply" => 320,
        _ => 254,
    }
}

fn parse(body: Map<String, Value>) -> Result<ProfileChanges, ApiError> {
    let mut fields = Fields::default();
    let mut changes = ProfileChanges::default();
    for (field, value) in body {
        let text = match &value {
            Value::String(s) => Some(s.trim().to_owned()),
            Value::Null => None,
            _ => Some(String::new()),
        };
        let is_text = matches!(value, Value::String(_) | Value::Null);
        let mut set = |v: Value| changes.set.push((field.clone(), v));
        match field.as_str() {
            f if READ_ONLY.contains(&f) => {}
            "ein" => match text.as_deref() {
                _ if !is_text => fields.error("ein", "invalid_type", "ein must be text"),
                None | Some("") => changes.ein = Some(None),
                // A masked value (what older answers gave), sent back unchanged.
                Some(masked) if masked.starts_with('*') => {}
                Some(raw) => {
                    let digits: String = raw.chars().filter(|c| *c != '-').collect();
                    if digits.len() == 9 && digits.chars().all(|c| c.is_ascii_digit()) {
                        changes.ein = Some(Some(digits));
                    } else {
                        fields.error("ein", "invalid_ein", "ein must be 9 digits");
                    }
                }
            },
            "wantsPremiumDelivery" => match value {
                Value::Bool(b) => set(json!(b)),
                _ => fields.error(
                    &field,
                    "invalid_type",
                    "wantsPremiumDelivery must be true or false",
                ),
            },
            "sendingMps" => match value.as_u64() {
                Some(n) if (1..=u64::from(MAX_MPS)).contains(&n) => set(json!(n)),
                _ => fields.error(
                    &field,
                    "invalid_number",
                    format!("sendingMps must be a whole number from 1 to {MAX_MPS}"),
                ),
            },
            "quietHours" => match QuietHours::parse_request(&value) {
                Some(stored) => set(stored),
                None => fields.error(
                    &field,
                    "invalid_quiet_hours",
                    "quietHours must be null (off) or {start: \"HH:MM\", end: \"HH:MM\"}, start and end apart",
                ),
            },
            f if profile::TEXT_FIELDS.contains(&f) => {
                if !is_text {
                    fields.error(f, "invalid_type", format!("{f} must be text"));
                    continue;
                }
                let Some(text) = text.filter(|t| !t.is_empty()) else {
                    if f == "name" || f == "email" || f == "timezone" {
                        fields.error(f, "required", format!("{f} cannot be blank"));
                    } else {
                        set(Value::Null);
                    }
                    continue;
                };
                let valid: Result<String, String> = match f {
                    "email" => {
                        let mut check = Fields::default();
                        check
                            .email("email", Some(&text))
                            .ok_or_else(|| "email is not a valid email address".to_owned())
                    }
                    "brandPhoneNumber" => PhoneNumber::parse(&text)
                        .map(|p| p.as_e164().to_owned())
                        .map_err(|e| e.to_string()),
                    "timezone" => text
                        .parse::<chrono_tz::Tz>()
                        .map(|tz| tz.name().to_owned())
                        .map_err(|_| {
                            format!("{text:?} is not an IANA time zone such as America/Chicago")
                        }),
                    "state" if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) => {
                        Ok(text.to_uppercase())
                    }
                    "state" => Err("state must be a two-letter code".into()),
                    "postalCode" => {
                        let ok = matches!(text.len(), 5 | 10)
                            && text
                                .chars()
                                .enumerate()
                                .all(|(i, c)| if i == 5 { c == '-' } else { c.is_ascii_digit() });
                        if ok {
                            Ok(text)
                        } else {
                            Err("postalCode must be 12345 or 12345-6789".into())
                        }
                    }
                    "website" => match url::Url::parse(&text) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") && text.len() <= 200 => {
                            Ok(text)
                        }
                        _ => Err("website must be an http(s) address".into()),
                    },
                    _ if text.chars().count() > text_limit(f) => {
                        Err(format!("{f} must be at most {} characters", text_limit(f)))
                    }
                    _ => Ok(text),
                };
                match valid {
                    Ok(v) => set(json!(v)),
                    Err(why) => fields.error(f, "invalid_value", why),
                }
            }
            other => fields.error(
                other,
                "unknown_field",
                format!("{other} is not a profile field"),
            ),
        }
    }
    fields.finish()?;
    Ok(changes)
}

/// `PUT /api/admin/profile`
pub async fn put(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let body: Map<String, Value> = json(&req)?;
    let changes = parse(body)?;
    let profile = profile::update(&ctx(app, &caller)?, caller.role, changes).await?;
    response::json(
        StatusCode::OK,
        &json!({ "success": true, "profile": profile }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkBody {
    phone_number: Option<String>,
}

/// `POST /api/admin/phone-numbers/link` — PRIMARY only.
pub async fn link_number(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    caller.require_primary()?;
    let body: LinkBody = json(&req)?;
    let raw = body.phone_number.unwrap_or_default();
    let number = PhoneNumber::parse(&raw)
        .map_err(|e| ApiError::field("phoneNumber", "invalid_phone", e.to_string()))?;
    let linked = profile::link_number(&ctx(app, &caller)?, app.carrier()?, &number).await?;
    response::wrapped(
        StatusCode::OK,
        &json!({
            "phoneNumber": number.as_e164(),
            // The frontend reads it as "the webhook is set": Telnyx sends the
            // number's texts to its messaging profile's webhook.
            "webhookId": linked.messaging_profile_id,
            "verified": true,
            "message": "Linked: broadcasts send from this number and texts to it reach your inbox.",
        }),
    )
}
