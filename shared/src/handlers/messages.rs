//! `/api/messages/*` and `POST /api/media`: what an admin checks, uploads
//! and sends, and what became of it. Each route parses, calls one use case
//! of `messaging`, and maps its answer.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::authenticate;
use crate::domain::{MessageId, MessageText};
use crate::error::{ApiError, During};
use crate::http::HttpResult;
use crate::http::list::{PageRequest, invalid_cursor, query_param, respond};
use crate::http::request::json;
use crate::http::response;
use crate::messaging::control::{self, Control, ControlError};
use crate::messaging::history::{self, RecipientsWanted};
use crate::messaging::model::Status;
use crate::messaging::send::{self as sending};
use crate::messaging::send_request::SendBody;
use crate::messaging::uploads::{self, UploadRequest};
use crate::ports::table::{Cursor, TableError};

/// Telnyx's US long-code price per outbound segment, for estimates only.
pub const PRICE_PER_SEGMENT_USD: f64 = 0.004;

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
    let request = UploadRequest::parse(body.content_type.as_deref(), body.size.as_ref())?;
    let ticket = uploads::start(
        app.table.as_ref(),
        app.blobs.as_ref(),
        caller.church_id,
        request,
        app.clock.now(),
    )
    .await
    .during("start the media upload")?;
    response::wrapped(StatusCode::OK, &ticket)
}

/// `POST /api/messages/send`
pub async fn send(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let body: SendBody = json(&req)?;
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok());
    let parsed = body.parse(key)?;
    let ctx = super::members::ctx(app, &caller)?;
    let answer = sending::send(
        &(&ctx).into(),
        app.fanout_queue.as_ref(),
        app.blobs.as_ref(),
        parsed.request,
        &parsed.fingerprint,
    )
    .await?;
    response::wrapped(StatusCode::CREATED, &answer)
}

/// `GET /api/messages/history?page&limit&status`
pub async fn history(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let page = PageRequest::from_query(&req)?;
    let status = query_param(&req, "status");
    let found = history::history(
        app.table.as_ref(),
        caller.church_id,
        page.skip(),
        page.limit as usize,
        status.as_deref(),
    )
    .await
    .during("read the message history")?;
    respond(&found.messages, &page, found.total, None)
}

fn message_id(req: &Request) -> Result<MessageId, ApiError> {
    super::members::path_id(req, "messageId", "message", MessageId::parse)
}

/// `GET /api/messages/:messageId`
pub async fn get(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = message_id(&req)?;
    let message = history::message(app.table.as_ref(), caller.church_id, id)
        .await
        .during("read the message")?
        .ok_or(ApiError::NotFound { what: "message" })?;
    response::wrapped(StatusCode::OK, &history::summary(&message))
}

/// `POST /api/messages/:messageId/pause`
pub async fn pause(app: &App, req: Request) -> HttpResult {
    apply_control(app, req, Control::Pause).await
}

/// `POST /api/messages/:messageId/resume`
pub async fn resume(app: &App, req: Request) -> HttpResult {
    apply_control(app, req, Control::Resume).await
}

/// `POST /api/messages/:messageId/cancel`
pub async fn cancel(app: &App, req: Request) -> HttpResult {
    apply_control(app, req, Control::Cancel).await
}

/// Answers as `GET /api/messages/:messageId` does, showing the new state;
/// a refused control is a 409 naming why.
async fn apply_control(app: &App, req: Request, control: Control) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = message_id(&req)?;
    let message = match control::apply(app.table.as_ref(), caller.church_id, id, control).await {
        Ok(message) => message,
        Err(ControlError::NotFound) => return Err(ApiError::NotFound { what: "message" }),
        Err(ControlError::Refused(why)) => {
            return Err(ApiError::Conflict {
                code: why.code(),
                message: why.to_string(),
            });
        }
        Err(e @ ControlError::Contended) => {
            return Err(ApiError::Conflict {
                code: "message_changed",
                message: e.to_string(),
            });
        }
        Err(ControlError::Table(e)) => return Err(e).during("control the message"),
    };
    response::wrapped(StatusCode::OK, &history::summary(&message))
}

/// `GET /api/messages/:messageId/recipients?status&page&limit&cursor`
pub async fn recipients(app: &App, req: Request) -> HttpResult {
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
    let message = history::message(app.table.as_ref(), caller.church_id, id)
        .await
        .during("read the message")?
        .ok_or(ApiError::NotFound { what: "message" })?;
    let vault = app.vault()?;
    let cursor = page.table_cursor(vault)?;
    let wanted = RecipientsWanted {
        status,
        skip: if cursor.is_some() { 0 } else { page.skip() },
        limit: page.limit,
        cursor: cursor.map(Cursor),
    };
    let found = match history::recipients(app.table.as_ref(), &message, wanted).await {
        Err(TableError::BadCursor) => return Err(invalid_cursor()),
        found => found.during("read the message's recipients")?,
    };
    respond(
        &found.rows,
        &page,
        found.total,
        found.next.map(|c| vault.sign_cursor(&c.0)),
    )
}
