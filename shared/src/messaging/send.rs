//! `POST /api/messages/send`: validate, store the message, claim the
//! idempotency key, enqueue ONE fan-out job, answer. The work is the same
//! for 10 recipients or 100,000: `totalRecipients` comes from counters.
//!
//! A send with `scheduledAt` is stored `scheduled` in the due index
//! instead; the cron fires it (`scheduling::cron`). Recurring messages are
//! sent through here too, their occurrence as the idempotency key.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::entities::{
    AcceptedSend, Figures, MediaUpload, Message, MessageState, StatusCounts, lanes_for,
};
use super::jobs::{Audience, FanoutJob};
use crate::directory::branches::Branch;
use crate::directory::groups::Group;
use crate::directory::members::Ctx;
use crate::directory::model::{ChurchCounters, Counter, Counters, profile_and_counters};
use crate::domain::ChurchId;
use crate::domain::{MediaId, MessageId, MessageText};
use crate::keys;
use crate::ports::blobs::{BlobKey, Blobs};
use crate::ports::queue::{OutgoingMessage, Queue, QueueError};
use crate::ports::table::Table;
use crate::ports::table::{TableError, TxOp};
use crate::store::{Entities, Transaction, TransactionError};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("link a sending number before sending")]
    NoSendingNumber,
    #[error("this send would pass the plan's {limit} messages a month")]
    MonthlyLimit { limit: u32 },
    #[error("{0} names nothing of this church")]
    UnknownTarget(&'static str),
    #[error("mediaIds names no upload of this church")]
    UnknownMedia,
    #[error("an MMS carries at most 1 MB of media in all")]
    MediaTooLarge,
    #[error("a file of mediaIds was never uploaded, or not as the type it was declared")]
    MediaNotUploaded,
    #[error("this Idempotency-Key was used for another request")]
    IdempotencyMismatch,
    #[error("scheduledAt must be at least a minute from now")]
    ScheduledTooSoon,
    #[error("scheduledAt must be within a year from now")]
    ScheduledTooLate,
    #[error("scheduledAt falls inside the church's quiet hours ({start}–{end} local time)")]
    InQuietHours { start: String, end: String },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Blob(#[from] crate::ports::blobs::BlobError),
}

pub struct SendRequest {
    pub content: MessageText,
    pub target_type: String,
    pub target_ids: Vec<String>,
    pub audiences: Vec<Audience>,
    pub media: Vec<MediaId>,
    pub idempotency_key: Option<String>,
    /// Send then, not now.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Whose send, on which table, at what time (a send opens no sealed data,
/// so the cron sends without the data keys).
pub struct Sending<'a> {
    pub church: ChurchId,
    pub table: &'a dyn Table,
    pub now: DateTime<Utc>,
}

impl<'a> From<&Ctx<'a>> for Sending<'a> {
    fn from(ctx: &Ctx<'a>) -> Self {
        Sending {
            church: ctx.church,
            table: ctx.table,
            now: ctx.now,
        }
    }
}

/// The nearest and farthest a send may be scheduled.
pub const SCHEDULE_AT_LEAST: Duration = Duration::minutes(1);
pub const SCHEDULE_AT_MOST: Duration = Duration::days(365);
/// A replayed request whose message is still waiting for its fan-out this
/// long after it was accepted lost its job (a crash between the two): the
/// replay queues it again (the fan-out is idempotent).
const REQUEUE_AFTER: Duration = Duration::seconds(60);

/// The blob keys of `media`, all uploads of this church within MMS's 1 MB.
///
/// The sizes are the stored files' own, not the ones declared for the
/// upload: a presigned PUT cannot hold a browser to its declared size, so
/// a file put bigger (or never put, or of another type) is refused here,
/// before any recipient is queued.
async fn media_keys(
    ctx: &Sending<'_>,
    blobs: &dyn Blobs,
    media: &[MediaId],
) -> Result<Vec<String>, SendError> {
    if media.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<_> = media.iter().map(|m| keys::media(ctx.church, *m)).collect();
    let mut total = 0;
    let mut found = Vec::new();
    for upload in ctx.table.load_many::<MediaUpload>(&wanted).await? {
        let upload = upload.ok_or(SendError::UnknownMedia)?;
        let key = BlobKey::parse(&upload.blob_key).map_err(|_| SendError::UnknownMedia)?;
        let stored = blobs.stat(&key).await?.ok_or(SendError::MediaNotUploaded)?;
        if stored.content_type != upload.content_type {
            return Err(SendError::MediaNotUploaded);
        }
        total += stored.size;
        found.push(upload.blob_key);
    }
    if total > super::media::MAX_MEDIA_BYTES {
        return Err(SendError::MediaTooLarge);
    }
    Ok(found)
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

async fn estimate(
    ctx: &Sending<'_>,
    audiences: &[Audience],
    counters: Option<&ChurchCounters>,
) -> Result<i64, SendError> {
    let mut total = 0;
    for audience in audiences {
        total += match audience {
            Audience::All => counters.map_or(0, |c| c.get(Counter::Members)),
            Audience::Members { ids } => ids.len() as i64,
            Audience::Branch { id } => {
                let branch: Branch = ctx
                    .table
                    .load(&keys::branch(ctx.church, *id))
                    .await?
                    .ok_or(SendError::UnknownTarget("targetIds"))?;
                branch.member_count
            }
            Audience::Group { id } => {
                let group: Group = ctx
                    .table
                    .load(&keys::group(ctx.church, *id))
                    .await?
                    .ok_or(SendError::UnknownTarget("targetIds"))?;
                group.member_count
            }
        };
    }
    Ok(total)
}

/// The parts of accepting a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Message,
    /// The month's count, within the plan's allowance.
    Allowance,
    Day,
    /// The idempotency key's claim: held by another request.
    Idempotency,
}

/// The answer of a request already accepted under `key`, if one was; a
/// message left without its fan-out job gets it again.
async fn accepted(
    ctx: &Sending<'_>,
    fanout: &dyn Queue,
    key: &str,
    body_hash: &str,
) -> Result<Option<Value>, SendError> {
    let claim = keys::idempotency(ctx.church, &key_hash(key));
    let Some(seen) = ctx.table.load::<AcceptedSend>(&claim).await? else {
        return Ok(None);
    };
    if seen.body_hash != body_hash {
        return Err(SendError::IdempotencyMismatch);
    }
    if let Some(id) = seen.message_id {
        requeue_if_lost(ctx, fanout, id).await?;
    }
    Ok(Some(seen.answer))
}

async fn requeue_if_lost(
    ctx: &Sending<'_>,
    fanout: &dyn Queue,
    id: MessageId,
) -> Result<(), SendError> {
    let Some(message) = ctx
        .table
        .load::<Message>(&keys::message(ctx.church, id))
        .await?
    else {
        return Ok(());
    };
    let accepted_at = DateTime::parse_from_rfc3339(&message.created_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(ctx.now);
    let lost = message.status == MessageState::Queued
        && !message.fanned_out
        && message.sent_at.is_none()
        && ctx.now - accepted_at > REQUEUE_AFTER;
    if lost {
        let audiences = super::send_request::audiences(&message.target_type, &message.target_ids)
            .unwrap_or_else(|_| vec![Audience::All]);
        tracing::warn!(message_id = %id, "an accepted message never got its fan-out job; queued again");
        enqueue(fanout, ctx.church, id, audiences).await?;
    }
    Ok(())
}

/// The one fan-out job that starts a message's sending.
pub async fn enqueue(
    fanout: &dyn Queue,
    church: ChurchId,
    message: MessageId,
    audiences: Vec<Audience>,
) -> Result<(), SendError> {
    let job = FanoutJob {
        church_id: church,
        message_id: message,
        audiences,
        index: 0,
        cursor: None,
    };
    let body =
        serde_json::to_string(&job).map_err(|e| TableError::backend("encode a fan-out job", e))?;
    fanout.send_batch(vec![OutgoingMessage::new(body)]).await?;
    Ok(())
}

/// When a scheduled send may go: a minute to a year ahead, outside quiet hours.
fn check_schedule(
    profile: &crate::directory::model::ChurchProfile,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SendError> {
    if at < now + SCHEDULE_AT_LEAST {
        return Err(SendError::ScheduledTooSoon);
    }
    if at > now + SCHEDULE_AT_MOST {
        return Err(SendError::ScheduledTooLate);
    }
    if let Some(quiet) = profile.quiet_hours().filter(|q| q.holds(at, profile.tz())) {
        return Err(SendError::InQuietHours {
            start: quiet.start.format("%H:%M").to_string(),
            end: quiet.end.format("%H:%M").to_string(),
        });
    }
    Ok(())
}

pub async fn send(
    ctx: &Sending<'_>,
    fanout: &dyn Queue,
    blobs: &dyn Blobs,
    request: SendRequest,
    body_for_hash: &str,
) -> Result<Value, SendError> {
    let body_hash = hex::encode(Sha256::digest(body_for_hash.as_bytes()));
    if let Some(key) = &request.idempotency_key
        && let Some(answer) = accepted(ctx, fanout, key, &body_hash).await?
    {
        return Ok(answer);
    }
    let (profile, counters) = profile_and_counters(ctx.table, ctx.church).await?;
    let Some(profile) = profile.filter(|p| p.telnyx_phone_number.is_some()) else {
        return Err(SendError::NoSendingNumber);
    };
    if let Some(at) = request.scheduled_at {
        check_schedule(&profile, at, ctx.now)?;
    }
    let plan = profile.plan();
    let total = estimate(ctx, &request.audiences, counters.as_ref()).await?;
    let media_keys = media_keys(ctx, blobs, &request.media).await?;

    let id = MessageId::generate();
    let now = ctx.now.to_rfc3339();
    let info = request.content.segment_info();
    let scheduled_at = request.scheduled_at.map(crate::scheduling::due::utc_text);
    let status = match scheduled_at {
        Some(_) => MessageState::Scheduled,
        None => MessageState::Queued,
    };
    let mut answer = json!({
        "id": id, "content": request.content.as_str(), "targetType": request.target_type, "totalRecipients": total,
        "state": status.as_str(), "status": crate::messaging::history::shown_status(status.as_str(), 0, 0), "createdAt": now, "segments": info.segments, "encoding": info.encoding,
    });
    if let Some(at) = &scheduled_at {
        answer["scheduledAt"] = json!(at);
    }
    let message = Message {
        id,
        church_id: ctx.church,
        content: request.content.as_str().to_owned(),
        target_type: request.target_type.clone(),
        target_ids: request.target_ids.clone(),
        total_recipients: total,
        status,
        created_at: now.clone(),
        sent_at: None,
        segments: info.segments,
        encoding: info.encoding,
        recipients: 0,
        fanned_out: false,
        media_ids: request.media.clone(),
        media_keys,
        error: None,
        scheduled_at,
        lanes: lanes_for(profile.mps(), total),
        slots: 0,
        legacy_counts: StatusCounts::default(),
    };
    // The allowance of the month it goes out in.
    let month = request
        .scheduled_at
        .unwrap_or(ctx.now)
        .format("%Y-%m")
        .to_string();
    let mut counted = Counters::default()
        .add(Counter::MessagesIn(&month), total)
        .add(Counter::MessagesCreated, 1);
    if let Some(limit) = plan.messages_per_month {
        counted = counted.allowance(Counter::MessagesIn(&month), i64::from(limit) - total);
    }
    let mut accepting = Transaction::new()
        .with(Part::Message, TxOp::create(&message)?)
        .with(Part::Allowance, counted.op(ctx.church))
        .with(
            Part::Day,
            TxOp::Update {
                key: keys::day(ctx.church, &now[..10]),
                update: Figures::message_created(),
                cond: None,
            },
        );
    if let Some(limit) = plan.messages_per_month
        && total > i64::from(limit)
    {
        return Err(SendError::MonthlyLimit { limit });
    }
    if let Some(k) = &request.idempotency_key {
        let ttl = (ctx.now + Duration::hours(24)).timestamp();
        let accepted = AcceptedSend::new(
            ctx.church,
            &key_hash(k),
            body_hash.clone(),
            answer.clone(),
            id,
            ttl,
        );
        accepting.add(Part::Idempotency, accepted.claim(ctx.now.timestamp())?);
    }
    match accepting.commit(ctx.table).await {
        Ok(()) => {}
        Err(e) if e.failed(Part::Allowance) => {
            return Err(SendError::MonthlyLimit {
                limit: plan.messages_per_month.unwrap_or(0),
            });
        }
        Err(e) if e.failed(Part::Idempotency) => {
            // Another request with this key came first (or raced this one:
            // then both may have been cancelled, and this one is retried).
            let key = request.idempotency_key.as_deref().unwrap_or_default();
            return match accepted(ctx, fanout, key, &body_hash).await? {
                Some(answer) => Ok(answer),
                None => Err(TableError::Conflict.into()),
            };
        }
        Err(TransactionError::Cancelled(_)) => return Err(TableError::Conflict.into()),
        Err(TransactionError::Table(e)) => return Err(e.into()),
    }
    if status == MessageState::Scheduled {
        return Ok(answer);
    }
    if let Err(e) = enqueue(fanout, ctx.church, id, request.audiences).await {
        // Without its job the message would wait forever: say so on it.
        let key = keys::message(ctx.church, id);
        if let Err(marking) = ctx.table.update(&key, Message::not_queued(), None).await {
            tracing::warn!(error = %marking, "could not mark an unqueued message failed");
        }
        return Err(e);
    }
    super::templates::count_send(ctx.table, ctx.church, request.content.as_str()).await;
    Ok(answer)
}
