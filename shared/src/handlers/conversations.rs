//! The inbox routes (`/api/messages/conversations…`): list, thread, reply,
//! read and status — one member ↔ the church, never relayed to others.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::caller::authenticate;
use crate::conversations::model::{STATUSES, message_view};
use crate::conversations::{ConversationError, inbox, replies};
use crate::domain::{MessageId, MessageText};
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::list::{PageRequest, query_param, respond};
use crate::http::request::json as body_of;
use crate::http::response;

fn conversation_id(req: &Request) -> Result<String, ApiError> {
    super::members::path_id(req, "conversationId", "conversation", MessageId::parse)
        .map(|id| id.to_string())
}

fn fail(e: ConversationError) -> ApiError {
    match e {
        ConversationError::NotFound => ApiError::NotFound {
            what: "conversation",
        },
        other => ApiError::internal(other),
    }
}

fn status_field(raw: Option<String>, default: Option<&str>) -> Result<String, ApiError> {
    let status = raw.or(default.map(str::to_owned)).unwrap_or_default();
    if STATUSES.contains(&status.as_str()) {
        Ok(status)
    } else {
        Err(ApiError::field(
            "status",
            "invalid_status",
            "status must be open, closed or archived",
        ))
    }
}

/// `GET /api/messages/conversations?page&limit&status` (default open).
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let page = PageRequest::from_query(&req)?;
    let status = status_field(query_param(&req, "status"), Some("open"))?;
    let listed = inbox::list(
        app.table.as_ref(),
        app.vault()?,
        caller.church_id,
        &status,
        page.skip(),
        page.limit as usize,
    )
    .await
    .map_err(ApiError::internal)?;
    respond(&listed.items, &page, listed.total, None)
}

/// `GET /api/messages/conversations/:id?page&limit` — newest first, bare.
pub async fn thread(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let page = PageRequest::from_query(&req)?;
    let (conversation, messages) = inbox::thread(
        app.table.as_ref(),
        app.vault()?,
        caller.church_id,
        &id,
        page.skip(),
        page.limit as usize,
    )
    .await
    .map_err(fail)?;
    let limit = u64::from(page.limit);
    response::bare(
        StatusCode::OK,
        &json!({
            "conversation": conversation,
            "messages": messages.items,
            "pagination": { "page": page.page, "limit": page.limit, "total": messages.total, "pages": messages.total.div_ceil(limit) },
        }),
    )
}

/// `POST /api/messages/conversations/:id/reply` `{content, replyToId?}`.
pub async fn reply(app: &App, req: Request) -> HttpResult {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReplyBody {
        content: Option<String>,
        reply_to_id: Option<String>,
    }
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let body: ReplyBody = body_of(&req)?;
    let content = MessageText::parse(body.content.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::field("content", "invalid_content", e.to_string()))?;
    if let Some(reply_to) = &body.reply_to_id
        && MessageId::parse(reply_to).is_err()
    {
        return Err(ApiError::field(
            "replyToId",
            "invalid_id",
            "replyToId must be a message of this conversation",
        ));
    }
    inbox::get(app.table.as_ref(), caller.church_id, &id)
        .await
        .map_err(fail)?;
    let now = app.clock.now().to_rfc3339();
    let mut item = replies::queue(
        app.table.as_ref(),
        app.send_queue.as_ref(),
        caller.church_id,
        &id,
        content.as_str(),
        false,
        &now,
    )
    .await
    .map_err(fail)?;
    if let Some(reply_to) = body.reply_to_id {
        item.insert("replyToId".into(), Value::String(reply_to));
    }
    response::wrapped(StatusCode::CREATED, &message_view(&item))
}

/// `PATCH /api/messages/conversations/:id/read`.
pub async fn read(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    inbox::read(app.table.as_ref(), caller.church_id, &id)
        .await
        .map_err(fail)?;
    response::json(StatusCode::OK, &json!({ "success": true }))
}

/// `PATCH /api/messages/conversations/:id/status` `{status}`.
pub async fn status(app: &App, req: Request) -> HttpResult {
    #[derive(Deserialize)]
    struct StatusBody {
        status: Option<String>,
    }
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let body: StatusBody = body_of(&req)?;
    let status = status_field(body.status, None)?;
    let now = app.clock.now().to_rfc3339();
    inbox::set_status(app.table.as_ref(), caller.church_id, &id, &status, &now)
        .await
        .map_err(fail)?;
    response::json(StatusCode::OK, &json!({ "success": true }))
}
