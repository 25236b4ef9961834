//! `POST /api/messages/send`'s body, parsed into a [`SendRequest`]: every
//! refusal names its field, in the order the checks have always run (the
//! first one found is the answer).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::jobs::Audience;
use super::media::MAX_MEDIA_PER_MESSAGE;
use super::send::{SendError, SendRequest};
use crate::domain::{BranchId, GroupId, MediaId, MemberId, MessageText};
use crate::error::{ApiError, FieldError};

/// At most this many ids in one send (each a member, branch or group).
pub const MAX_TARGET_IDS: usize = 10_000;
/// The longest `Idempotency-Key` kept.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The body as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendBody {
    pub content: Option<String>,
    pub target_type: Option<String>,
    pub target_ids: Option<Vec<String>>,
    /// Extension: files from `POST /api/media`, sent as one MMS.
    pub media_ids: Option<Vec<String>>,
    /// Extension: send then (ISO 8601 with an offset), not now.
    pub scheduled_at: Option<String>,
}

/// A send as parsed, and the fingerprint its `Idempotency-Key` is held to
/// (the same key with another body is refused).
pub struct ParsedSend {
    pub request: SendRequest,
    pub fingerprint: String,
}

pub(crate) fn audiences(target_type: &str, ids: &[String]) -> Result<Vec<Audience>, FieldError> {
    let bad_ids = || {
        FieldError::new(
            "targetIds",
            "invalid_id",
            "targetIds must name members, branches or groups by id",
        )
    };
    Ok(match target_type {
        "all" => vec![Audience::All],
        "individual" | "branches" | "groups" if ids.is_empty() => {
            return Err(FieldError::new(
                "targetIds",
                "required",
                "targetIds is required for this targetType",
            ));
        }
        "individual" => vec![Audience::Members {
            ids: ids
                .iter()
                .map(|i| MemberId::parse(i))
                .collect::<Result<_, _>>()
                .map_err(|_| bad_ids())?,
        }],
        "branches" => ids
            .iter()
            .map(|i| BranchId::parse(i).map(|id| Audience::Branch { id }))
            .collect::<Result<_, _>>()
            .map_err(|_| bad_ids())?,
        "groups" => ids
            .iter()
            .map(|i| GroupId::parse(i).map(|id| Audience::Group { id }))
            .collect::<Result<_, _>>()
            .map_err(|_| bad_ids())?,
        _ => {
            return Err(FieldError::new(
                "targetType",
                "invalid_target",
                "targetType must be individual, branches, groups or all",
            ));
        }
    })
}

fn media(ids: &[String]) -> Result<Vec<MediaId>, FieldError> {
    if ids.len() > MAX_MEDIA_PER_MESSAGE {
        return Err(FieldError::new(
            "mediaIds",
            "too_many",
            format!("at most {MAX_MEDIA_PER_MESSAGE} mediaIds"),
        ));
    }
    ids.iter()
        .map(|m| MediaId::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            FieldError::new(
                "mediaIds",
                "invalid_id",
                "mediaIds must be ids from POST /api/media",
            )
        })
}

/// The `Idempotency-Key` header, trimmed; blank is none.
fn idempotency_key(header: Option<&str>) -> Result<Option<String>, FieldError> {
    let key = header.map(str::trim).filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > MAX_IDEMPOTENCY_KEY) {
        return Err(FieldError::new(
            "Idempotency-Key",
            "too_long",
            "Idempotency-Key must be at most 200 characters",
        ));
    }
    Ok(key.map(str::to_owned))
}

/// `scheduledAt`: an instant with its offset (`2026-12-06T09:00:00-05:00`).
fn scheduled_at(text: Option<&str>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            FieldError::new(
                "scheduledAt",
                "invalid_time",
                "scheduledAt must be an ISO 8601 time with its offset, such as 2026-12-06T09:00:00-05:00",
            )
        })
}

impl SendBody {
    /// The send this body asks for, with the request's `Idempotency-Key`.
    pub fn parse(self, idempotency_header: Option<&str>) -> Result<ParsedSend, FieldError> {
        let content = MessageText::parse(self.content.as_deref().unwrap_or(""))
            .map_err(|e| FieldError::new("content", "invalid_content", e.to_string()))?;
        let target_type = self.target_type.unwrap_or_default();
        let ids = self.target_ids.unwrap_or_default();
        let audiences = audiences(&target_type, &ids)?;
        if ids.len() > MAX_TARGET_IDS {
            return Err(FieldError::new(
                "targetIds",
                "too_many",
                "at most 10,000 targetIds",
            ));
        }
        let idempotency_key = idempotency_key(idempotency_header)?;
        let media = media(&self.media_ids.unwrap_or_default())?;
        let scheduled_at = scheduled_at(self.scheduled_at.as_deref())?;
        let mut fingerprint = json!({ "content": content.as_str(), "targetType": target_type, "targetIds": ids, "mediaIds": media });
        // Only when asked for: a send's fingerprint stays what it was
        // before scheduling existed, so a key replayed across the upgrade
        // still matches.
        if let Some(at) = scheduled_at {
            fingerprint["scheduledAt"] = json!(at);
        }
        let fingerprint = fingerprint.to_string();
        Ok(ParsedSend {
            request: SendRequest {
                content,
                target_type,
                target_ids: ids,
                audiences,
                media,
                idempotency_key,
                scheduled_at,
            },
            fingerprint,
        })
    }
}

/// What a refused send answers.
impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NoSendingNumber => ApiError::Unprocessable {
                code: "no_sending_number",
                message: e.to_string(),
            },
            SendError::MonthlyLimit { .. } => ApiError::Unprocessable {
                code: "plan_limit",
                message: e.to_string(),
            },
            SendError::UnknownTarget(_) => {
                ApiError::field("targetIds", "unknown_target", e.to_string())
            }
            SendError::UnknownMedia | SendError::MediaTooLarge | SendError::MediaNotUploaded => {
                ApiError::field("mediaIds", "invalid_media", e.to_string())
            }
            SendError::ScheduledTooSoon | SendError::ScheduledTooLate => {
                ApiError::field("scheduledAt", "out_of_range", e.to_string())
            }
            SendError::InQuietHours { .. } => {
                ApiError::RefusedField(FieldError::new("scheduledAt", "quiet_hours", e.to_string()))
            }
            SendError::IdempotencyMismatch => ApiError::Unprocessable {
                code: "idempotency_mismatch",
                message: e.to_string(),
            },
            SendError::Table(crate::ports::table::TableError::Conflict) => ApiError::Conflict {
                code: "try_again",
                message: "another request with this Idempotency-Key raced this one; try again"
                    .into(),
            },
            other => ApiError::internal_at("send the message", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: serde_json::Value) -> SendBody {
        serde_json::from_value(value).unwrap()
    }

    fn refusal(value: serde_json::Value, key: Option<&str>) -> (String, String) {
        let e = body(value).parse(key).err().unwrap();
        (e.field, e.code)
    }

    fn named(field: &str, code: &str) -> (String, String) {
        (field.to_owned(), code.to_owned())
    }

    #[test]
    fn content_comes_first() {
        assert_eq!(
            refusal(json!({"targetType": "nobody"}), None),
            named("content", "invalid_content")
        );
    }

    #[test]
    fn the_target_type_and_ids_are_checked() {
        assert_eq!(
            refusal(json!({"content": "Hi", "targetType": "nobody"}), None),
            named("targetType", "invalid_target")
        );
        assert_eq!(
            refusal(json!({"content": "Hi", "targetType": "groups"}), None),
            named("targetIds", "required")
        );
        assert_eq!(
            refusal(
                json!({"content": "Hi", "targetType": "branches", "targetIds": ["nope"]}),
                None
            ),
            named("targetIds", "invalid_id")
        );
        let many: Vec<String> = (0..=MAX_TARGET_IDS)
            .map(|_| MemberId::generate().to_string())
            .collect();
        assert_eq!(
            refusal(
                json!({"content": "Hi", "targetType": "individual", "targetIds": many}),
                None
            ),
            named("targetIds", "too_many")
        );
    }

    #[test]
    fn the_idempotency_key_and_media_are_checked() {
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY + 1);
        assert_eq!(
            refusal(json!({"content": "Hi", "targetType": "all"}), Some(&long)),
            named("Idempotency-Key", "too_long")
        );
        let eleven: Vec<String> = (0..=MAX_MEDIA_PER_MESSAGE)
            .map(|_| MediaId::generate().to_string())
            .collect();
        assert_eq!(
            refusal(
                json!({"content": "Hi", "targetType": "all", "mediaIds": eleven}),
                None
            ),
            named("mediaIds", "too_many")
        );
        assert_eq!(
            refusal(
                json!({"content": "Hi", "targetType": "all", "mediaIds": ["x"]}),
                None
            ),
            named("mediaIds", "invalid_id")
        );
    }

    #[test]
    fn a_valid_body_parses_with_its_fingerprint() {
        let group = GroupId::generate();
        let parsed = body(
            json!({"content": "Rehearsal at 7", "targetType": "groups", "targetIds": [group.to_string()]}),
        )
        .parse(Some("  key-1  "))
        .unwrap();
        assert_eq!(parsed.request.idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(parsed.request.audiences.len(), 1);
        assert_eq!(
            parsed.fingerprint,
            json!({"content": "Rehearsal at 7", "targetType": "groups", "targetIds": [group.to_string()], "mediaIds": []})
                .to_string()
        );
        assert!(
            body(json!({"content": "Hi", "targetType": "all"}))
                .parse(Some("   "))
                .unwrap()
                .request
                .idempotency_key
                .is_none()
        );
    }
}
