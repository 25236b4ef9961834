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
use crate::ports::blobs::BlobKey;
use crate::ports::table::Cond;

/// Telnyx's US long-code price per outbound segment, for estimates only.
pub const PRICE_PER_SEGMENT_USD: f64 = 0.004;
/// Telnyx accepts at most 1 MB of media per MMS.
pub const MAX_MEDIA_BYTES: u64 = 1_048_576;
/// The kinds of media carriers deliver by MMS.
pub const MEDIA_TYPES: [&str; 10] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "video/mp4",
    "video/3gpp",
    "audio/mpeg",
    "audio/mp3",
    "text/vcard",
    "text/x-vcard",
    "application/pdf",
];
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
    let id = ulid::Ulid::new().to_string();
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
