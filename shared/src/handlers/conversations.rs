//! The inbox routes (`/api/messages/conversations…`): list, thread, reply
//! (with or without a file), read, status and reactions — one member ↔ the
//! church, never relayed to others.

use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::auth::caller::authenticate;
use crate::conversations::model::{ConversationStatus, ThreadMessage};
use crate::conversations::replies::{ReplyFile, ReplyTarget};
use crate::conversations::{ConversationError, inbox, reactions, replies};
use crate::domain::{ConversationId, MessageId, MessageText};
use crate::error::{ApiError, During, FieldError};
use crate::http::HttpResult;
use crate::http::list::{PageRequest, query_param, respond};
use crate::http::request::{Upload, json as body_of, multipart_form};
use crate::http::response;
use crate::messaging::media::{MAX_CONVERSATION_FILE_BYTES, MAX_MEDIA_BYTES, MediaKind};
use crate::ports::blobs::Blob;

fn conversation_id(req: &Request) -> Result<ConversationId, ApiError> {
    super::members::path_id(req, "conversationId", "conversation", ConversationId::parse)
}

fn message_id(req: &Request) -> Result<MessageId, ApiError> {
    super::members::path_id(req, "messageId", "message", MessageId::parse)
}

fn status_field(
    raw: Option<String>,
    default: Option<ConversationStatus>,
) -> Result<ConversationStatus, ApiError> {
    match raw {
        None => default,
        Some(raw) => ConversationStatus::parse(&raw),
    }
    .ok_or_else(|| {
        ApiError::field(
            "status",
            "invalid_status",
            "status must be open, closed or archived",
        )
    })
}

/// `GET /api/messages/conversations?page&limit&status` (default open).
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let page = PageRequest::from_query(&req)?;
    let status = status_field(query_param(&req, "status"), Some(ConversationStatus::Open))?;
    let vault = app.vault()?;
    let window = inbox::Window {
        skip: page.skip(),
        limit: page.limit as usize,
        cursor: page.table_cursor(vault)?,
    };
    let listed = inbox::list(app.table.as_ref(), vault, caller.church_id, status, window)
        .await
        .during("list the conversations")?;
    let next = listed.next.map(|c| vault.sign_cursor(&c));
    respond(&listed.items, &page, listed.total, next)
}

/// `GET /api/messages/conversations/:id?page&limit` — newest first, bare.
pub async fn thread(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let page = PageRequest::from_query(&req)?;
    let (conversation, messages) = inbox::thread(
        app.table.as_ref(),
        app.blobs.as_ref(),
        app.vault()?,
        caller.church_id,
        id,
        page.skip(),
        page.limit as usize,
    )
    .await?;
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

/// `replyToId`, if the body names one.
fn reply_to_field(raw: Option<&str>) -> Result<Option<MessageId>, ApiError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => MessageId::parse(raw)
            .map(Some)
            .map_err(|_| invalid_reply_to()),
    }
}

fn invalid_reply_to() -> ApiError {
    ApiError::field(
        "replyToId",
        "invalid_id",
        "replyToId must be a message of this conversation",
    )
}

/// An admin's queued message, answered as the thread shows it.
async fn answer(app: &App, queued: ThreadMessage) -> HttpResult {
    let shown = inbox::shown_messages(
        app.table.as_ref(),
        app.blobs.as_ref(),
        std::slice::from_ref(&queued),
    )
    .await?;
    tracing::info!(church_id = %queued.church_id, conversation_id = %queued.conversation_id, "reply queued");
    response::wrapped(StatusCode::CREATED, &shown.into_iter().next())
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
    let reply_to = reply_to_field(body.reply_to_id.as_deref())?;
    let target = ReplyTarget {
        church: caller.church_id,
        conversation: id,
    };
    let now = app.clock.now().to_rfc3339();
    let queued = replies::reply(
        app.table.as_ref(),
        app.send_queue.as_ref(),
        target,
        content.as_str(),
        reply_to,
        &now,
    )
    .await
    .map_err(|e| match e {
        ConversationError::MessageNotFound => invalid_reply_to(),
        other => other.into(),
    })?;
    answer(app, queued).await
}

/// The file of a reply-with-media, checked: a kind the inbox takes, and a
/// size MMS can carry (Telnyx resizes images and videos; other files must
/// already fit).
fn media_file(upload: &Upload) -> Result<String, ApiError> {
    let content_type = upload.content_type.clone().unwrap_or_default();
    let Some(kind) = MediaKind::of(&content_type) else {
        return Err(ApiError::field(
            "file",
            "unsupported_media",
            "file must be an image, a video, audio or a PDF",
        ));
    };
    let size = upload.bytes.len() as u64;
    if size == 0 {
        return Err(ApiError::field("file", "required", "file is empty"));
    }
    let limit = if kind.transcodable() {
        MAX_CONVERSATION_FILE_BYTES
    } else {
        MAX_MEDIA_BYTES
    };
    if size > limit {
        return Err(ApiError::FieldTooLarge(FieldError::new(
            "file",
            "file_too_large",
            format!(
                "a {} must be at most {limit} bytes to go by MMS",
                kind.as_str()
            ),
        )));
    }
    Ok(content_type)
}

/// `POST /api/messages/conversations/:id/reply-with-media` — multipart
/// `file` (image, video, audio, pdf; ≤ 5 MB) and `content?`.
pub async fn reply_with_media(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let form = multipart_form(&req, "file").await?;
    let content = match form.texts.get("content").map(|c| c.trim()) {
        Some(c) if !c.is_empty() => MessageText::parse(c)
            .map_err(|e| ApiError::field("content", "invalid_content", e.to_string()))?
            .as_str()
            .to_owned(),
        _ => String::new(),
    };
    let content_type = media_file(&form.file)?;
    let name = form
        .file
        .file_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "attachment".into());
    let file = ReplyFile {
        blob: Blob {
            bytes: form.file.bytes,
            content_type,
        },
        name,
    };
    let target = ReplyTarget {
        church: caller.church_id,
        conversation: id,
    };
    let now = app.clock.now().to_rfc3339();
    let queued = replies::reply_with_file(
        app.table.as_ref(),
        app.blobs.as_ref(),
        app.send_queue.as_ref(),
        target,
        &content,
        file,
        &now,
    )
    .await?;
    answer(app, queued).await
}

fn emoji_field(raw: Option<&str>, field: &str) -> Result<&'static str, ApiError> {
    raw.and_then(reactions::parse_emoji).ok_or_else(|| {
        ApiError::field(
            field,
            "invalid_emoji",
            format!("{field} must be one of {}", reactions::EMOJI.join(" ")),
        )
    })
}

/// `POST /api/messages/conversations/:id/messages/:mid/reactions` `{emoji}`.
pub async fn react(app: &App, req: Request) -> HttpResult {
    #[derive(Deserialize)]
    struct ReactionBody {
        emoji: Option<String>,
    }
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let message = message_id(&req)?;
    let body: ReactionBody = body_of(&req)?;
    let emoji = emoji_field(body.emoji.as_deref(), "emoji")?;
    let now = app.clock.now().to_rfc3339();
    let reaction = reactions::add(
        app.table.as_ref(),
        caller.church_id,
        id,
        message,
        emoji,
        &now,
    )
    .await?;
    response::wrapped(StatusCode::CREATED, &reaction)
}

/// `DELETE /api/messages/conversations/:id/messages/:mid/reactions/:emoji`.
pub async fn unreact(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    let message = message_id(&req)?;
    // API Gateway may hand the emoji over still percent-encoded.
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first("emoji"))
        .map(|e| {
            percent_encoding::percent_decode_str(e)
                .decode_utf8_lossy()
                .into_owned()
        });
    let emoji = emoji_field(raw.as_deref(), "emoji")?;
    reactions::remove(app.table.as_ref(), caller.church_id, id, message, emoji).await?;
    response::json(StatusCode::OK, &json!({ "success": true }))
}

/// `PATCH /api/messages/conversations/:id/read`.
pub async fn read(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = conversation_id(&req)?;
    inbox::read(app.table.as_ref(), caller.church_id, id).await?;
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
    inbox::set_status(app.table.as_ref(), caller.church_id, id, status, &now).await?;
    response::json(StatusCode::OK, &json!({ "success": true }))
}
