//! `POST /api/messages/preview` and `POST /api/media` — what an admin
//! checks and uploads before a send.

use std::time::Duration;

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::authenticate;
use crate::domain::MessageText;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::request::json;
use crate::http::response;
use crate::keys;
use crate::messaging::media::{MAX_MEDIA_BYTES, MAX_MEDIA_PER_MESSAGE, MEDIA_TYPES};
use crate::ports::blobs::BlobKey;
use crate::ports::table::Cond;

/// Telnyx's US long-code price per outbound segment, for estimates only.
pub const PRICE_PER_SEGMENT_USD: f64 = 0.004;
/// How long an upload URL works.
const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Deserialize)]
struct PreviewBody {
    content: Option<String>,
}

/// `POST /api/messages/preview`
pub async fn preview(app: &App, req: Request) -> HttpResult {
    authenticate(app, &req).await?;
    let body: PreviewBody = json(&req)?;
    let text = MessageText::parse(body.content.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("content", "invalid_content", e.to_string()))?;
    let info = text.segment_info();
    response::wrapped(
        StatusCode::OK,
        &json!({
            "segments": info.segments,
            "encoding": info.encoding,
            "characters": info.characters,
            "estimatedCostPerRecipient": (PRICE_PER_SEGMENT_USD * info.segments as f64 * 10_000.0).round() / 10_000.0,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MediaBody {
    content_type: Option<String>,
    size: Option<Value>,
}

/// `POST /api/media` — a presigned PUT for one file of an MMS.
pub async fn upload_url(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let body: MediaBody = json(&req)?;
    let content_type = body.content_type.unwrap_or_default().trim().to_lowercase();
    if !MEDIA_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::field(
            "contentType",
            "unsupported_media",
            format!("contentType must be one of {}", MEDIA_TYPES.join(", ")),
        ));
    }
    let size = match &body.size {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let size = match size {
        Some(s @ 1..=MAX_MEDIA_BYTES) => s,
        _ => {
            return Err(ApiError::field(
                "size",
                "invalid_size",
                format!("size must be 1 to {MAX_MEDIA_BYTES} bytes (MMS media is at most 1 MB)"),
            ));
        }
    };
    let id = crate::domain::MediaId::generate();
    let key = BlobKey::parse(&format!("churches/{}/media/{id}", caller.church_id))
        .map_err(ApiError::internal)?;
    let url = app
        .blobs
        .presign_put(&key, &content_type, UPLOAD_TTL)
        .await
        .map_err(ApiError::internal)?;
    let now = app.clock.now();
    let expires_at = now + chrono::Duration::from_std(UPLOAD_TTL).unwrap_or_default();
    let record = json!({
        "pk": keys::church(caller.church_id), "sk": format!("MEDIA#{id}"), "type": "media",
        "id": id, "blobKey": key.as_str(), "contentType": content_type, "size": size, "createdAt": now.to_rfc3339(),
    });
    app.table
        .put(
            record.as_object().cloned().unwrap_or_default(),
            Some(Cond::NotExists),
        )
        .await
        .map_err(ApiError::internal)?;
    response::wrapped(
        StatusCode::OK,
        &json!({ "id": id, "uploadUrl": url, "expiresAt": expires_at.to_rfc3339() }),
    )
}

/// `POST /api/messages/send`
pub async fn send(app: &App, req: Request) -> HttpResult {
    use crate::domain::{BranchId, GroupId, MemberId};
    use crate::messaging::jobs::Audience;
    use crate::messaging::send::{self as sending, SendError, SendRequest};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SendBody {
        content: Option<String>,
        target_type: Option<String>,
        target_ids: Option<Vec<String>>,
        /// Extension: files from `POST /api/media`, sent as one MMS.
        media_ids: Option<Vec<String>>,
    }
    let caller = authenticate(app, &req).await?;
    let body: SendBody = json(&req)?;
    let content = MessageText::parse(body.content.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("content", "invalid_content", e.to_string()))?;
    let target_type = body.target_type.unwrap_or_default();
    let ids = body.target_ids.unwrap_or_default();
    let bad_ids = || {
        ApiError::field(
            "targetIds",
            "invalid_id",
            "targetIds must name members, branches or groups by id",
        )
    };
    let audiences = match target_type.as_str() {
        "all" => vec![Audience::All],
        "individual" | "branches" | "groups" if ids.is_empty() => {
            return Err(ApiError::field(
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
            return Err(ApiError::field(
                "targetType",
                "invalid_target",
                "targetType must be individual, branches, groups or all",
            ));
        }
    };
    if ids.len() > 10_000 {
        return Err(ApiError::field(
            "targetIds",
            "too_many",
            "at most 10,000 targetIds",
        ));
    }
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    if idempotency_key.as_ref().is_some_and(|k| k.len() > 200) {
        return Err(ApiError::field(
            "Idempotency-Key",
            "too_long",
            "Idempotency-Key must be at most 200 characters",
        ));
    }
    let media = body.media_ids.unwrap_or_default();
    if media.len() > MAX_MEDIA_PER_MESSAGE {
        return Err(ApiError::field(
            "mediaIds",
            "too_many",
            format!("at most {MAX_MEDIA_PER_MESSAGE} mediaIds"),
        ));
    }
    let media = media
        .iter()
        .map(|m| crate::domain::MediaId::parse(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ApiError::field(
                "mediaIds",
                "invalid_id",
                "mediaIds must be ids from POST /api/media",
            )
        })?;
    let fingerprint = json!({ "content": content.as_str(), "targetType": target_type, "targetIds": ids, "mediaIds": media })
        .to_string();
    let request = SendRequest {
        content,
        target_type,
        target_ids: ids,
        audiences,
        media,
        idempotency_key,
    };
    let ctx = super::members::ctx(app, &caller)?;
    let answer = sending::send(&ctx, app.fanout_queue.as_ref(), request, &fingerprint)
        .await
        .map_err(|e| match e {
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
            SendError::UnknownMedia | SendError::MediaTooLarge => {
                ApiError::field("mediaIds", "invalid_media", e.to_string())
            }
            SendError::IdempotencyMismatch => ApiError::Unprocessable {
                code: "idempotency_mismatch",
                message: e.to_string(),
            },
            other => ApiError::internal(other),
        })?;
    response::wrapped(StatusCode::CREATED, &answer)
}

/// A message as the history and detail answers show it.
fn message_view(item: &crate::ports::table::Item) -> Value {
    use crate::messaging::model::Status;
    let count = |s: Status| item.get(s.counter()).and_then(Value::as_i64).unwrap_or(0);
    let recipients = item.get("recipients").and_then(Value::as_i64).unwrap_or(0);
    let terminal: i64 = Status::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| count(*s))
        .sum();
    let fanned_out = item
        .get("fannedOut")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stored = item
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("queued");
    let status = if fanned_out && terminal == recipients && stored != "failed" {
        "completed"
    } else {
        stored
    };
    let delivered = count(Status::Delivered);
    let sendable = recipients - count(Status::OptedOut);
    let rate = if sendable > 0 {
        (delivered as f64 * 1000.0 / sendable as f64).round() / 10.0
    } else {
        0.0
    };
    let total = if fanned_out {
        recipients
    } else {
        item.get("totalRecipients")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(recipients)
    };
    json!({
        "id": item.get("id"), "content": item.get("content"), "targetType": item.get("targetType"),
        "totalRecipients": total, "deliveredCount": delivered, "failedCount": count(Status::Failed),
        "status": status, "createdAt": item.get("createdAt"), "sentAt": item.get("sentAt"), "deliveryRate": rate,
        "segments": item.get("segments"), "encoding": item.get("encoding"),
        "counts": {
            "queued": count(Status::Queued), "sending": count(Status::Sending), "sent": count(Status::Sent),
            "delivered": delivered, "failed": count(Status::Failed), "optedOut": count(Status::OptedOut), "uncertain": count(Status::Uncertain),
        },
    })
}

/// `GET /api/messages/history?page&limit&status`
pub async fn history(app: &App, req: Request) -> HttpResult {
    use crate::http::list::{PageRequest, query_param, respond};
    use crate::ports::table::{Query, SortCond};
    let caller = authenticate(app, &req).await?;
    let page = PageRequest::from_query(&req)?;
    let status = query_param(&req, "status");
    let query = Query::partition(keys::church(caller.church_id))
        .sort(SortCond::BeginsWith("MSG#".into()))
        .descending();
    let wanted = page.skip() + page.limit as usize;
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let found = app
            .table
            .query(query.clone().limit(wanted.min(1_000) as u32).after(cursor))
            .await
            .map_err(ApiError::internal)?;
        items.extend(
            found
                .items
                .iter()
                .map(message_view)
                .filter(|m| status.as_deref().is_none_or(|s| m["status"] == s)),
        );
        cursor = found.cursor;
        if items.len() >= wanted || cursor.is_none() {
            break;
        }
    }
    let total = app
        .table
        .get(&keys::church_counters(caller.church_id))
        .await
        .map_err(ApiError::internal)?
        .and_then(|c| c.get("messagesCreated").and_then(Value::as_u64))
        .unwrap_or(0);
    let shown: Vec<Value> = items
        .into_iter()
        .skip(page.skip())
        .take(page.limit as usize)
        .collect();
    respond(&shown, &page, total, None)
}

fn message_id(req: &Request) -> Result<crate::domain::MessageId, ApiError> {
    super::members::path_id(req, "messageId", "message", crate::domain::MessageId::parse)
}

/// `GET /api/messages/:messageId`
pub async fn get(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = message_id(&req)?;
    let item = app
        .table
        .get(&crate::messaging::model::message_key(caller.church_id, id))
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound { what: "message" })?;
    response::wrapped(StatusCode::OK, &message_view(&item))
}

/// `GET /api/messages/:messageId/recipients?status&page&limit&cursor`
pub async fn recipients(app: &App, req: Request) -> HttpResult {
    use crate::http::list::{PageRequest, query_param, respond};
    use crate::messaging::model::{Status, message_key, recipients_partition};
    use crate::ports::table::{Cursor, Query, SortCond};
    let caller = authenticate(app, &req).await?;
    let id = message_id(&req)?;
    let page = PageRequest::from_query(&req)?;
    let status = match query_param(&req, "status") {
        None => None,
        Some(s) => Some(Status::parse(&s).ok_or_else(|| {
            ApiError::field(
                "status",
                "invalid_status",
                "status is not a recipient status",
            )
        })?),
    };
    let message = app
        .table
        .get(&message_key(caller.church_id, id))
        .await
        .map_err(ApiError::internal)?
        .ok_or(ApiError::NotFound { what: "message" })?;
    let vault = app.vault()?;
    let cursor = page.table_cursor(vault)?;
    let query =
        Query::partition(recipients_partition(id)).sort(SortCond::BeginsWith("RCPT#".into()));
    let skip = if cursor.is_some() { 0 } else { page.skip() };
    let (mut rows, mut next, mut skipped) = (Vec::new(), cursor.map(Cursor), 0);
    loop {
        let found = app
            .table
            .query(query.clone().limit(page.limit.max(100)).after(next))
            .await
            .map_err(ApiError::internal)?;
        next = found.cursor;
        for item in found.items {
            if status
                .is_some_and(|s| item.get("status").and_then(Value::as_str) != Some(s.as_str()))
            {
                continue;
            }
            if skipped < skip {
                skipped += 1;
            } else if rows.len() < page.limit as usize {
                rows.push(json!({
                    "memberId": item.get("memberId"), "firstName": item.get("firstName"), "lastName": item.get("lastName"),
                    "status": item.get("status"), "errorCode": item.get("errorCode"), "updatedAt": item.get("updatedAt"),
                }));
            }
        }
        if rows.len() >= page.limit as usize || next.is_none() {
            break;
        }
    }
    let total = match status {
        Some(s) => message
            .get(s.counter())
            .and_then(Value::as_u64)
            .unwrap_or(0),
        None => message
            .get("recipients")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    respond(&rows, &page, total, next.map(|c| vault.sign_cursor(&c.0)))
}
