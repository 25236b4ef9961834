//! `POST /api/messages/send`: validate, store the message, claim the
//! idempotency key, enqueue ONE fan-out job, answer. The work is the same
//! for 10 recipients or 100,000: `totalRecipients` comes from counters.

use chrono::Duration;
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
use crate::domain::{MediaId, MessageId, MessageText};
use crate::keys;
use crate::ports::queue::{OutgoingMessage, Queue, QueueError};
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
    #[error("this Idempotency-Key was used for another request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

pub struct SendRequest {
    pub content: MessageText,
    pub target_type: String,
    pub target_ids: Vec<String>,
    pub audiences: Vec<Audience>,
    pub media: Vec<MediaId>,
    pub idempotency_key: Option<String>,
}

/// The blob keys of `media`, all uploads of this church within MMS's 1 MB.
async fn media_keys(ctx: &Ctx<'_>, media: &[MediaId]) -> Result<Vec<String>, SendError> {
    if media.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<_> = media.iter().map(|m| keys::media(ctx.church, *m)).collect();
    let mut total = 0;
    let mut found = Vec::new();
    for upload in ctx.table.load_many::<MediaUpload>(&wanted).await? {
        let upload = upload.ok_or(SendError::UnknownMedia)?;
        total += upload.size;
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
    ctx: &Ctx<'_>,
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

pub async fn send(
    ctx: &Ctx<'_>,
    fanout: &dyn Queue,
    request: SendRequest,
    body_for_hash: &str,
) -> Result<Value, SendError> {
    let body_hash = hex::encode(Sha256::digest(body_for_hash.as_bytes()));
    if let Some(key) = &request.idempotency_key {
        let claim = keys::idempotency(ctx.church, &key_hash(key));
        if let Some(seen) = ctx.table.load::<AcceptedSend>(&claim).await? {
            if seen.body_hash != body_hash {
                return Err(SendError::IdempotencyMismatch);
            }
            return Ok(seen.answer);
        }
    }
    let (profile, counters) = profile_and_counters(ctx.table, ctx.church).await?;
    let Some(profile) = profile.filter(|p| p.telnyx_phone_number.is_some()) else {
        return Err(SendError::NoSendingNumber);
    };
    let plan = profile.plan();
    let total = estimate(ctx, &request.audiences, counters.as_ref()).await?;
    let media_keys = media_keys(ctx, &request.media).await?;

    let id = MessageId::generate();
    let now = ctx.now.to_rfc3339();
    let info = request.content.segment_info();
    let answer = json!({
        "id": id, "content": request.content.as_str(), "targetType": request.target_type, "totalRecipients": total,
        "status": "queued", "createdAt": now, "segments": info.segments, "encoding": info.encoding,
    });
    let message = Message {
        id,
        church_id: ctx.church,
        content: request.content.as_str().to_owned(),
        target_type: request.target_type.clone(),
        target_ids: request.target_ids.clone(),
        total_recipients: total,
        status: MessageState::Queued,
        created_at: now.clone(),
        sent_at: None,
        segments: info.segments,
        encoding: info.encoding,
        recipients: 0,
        fanned_out: false,
        media_ids: request.media.clone(),
        media_keys,
        error: None,
        lanes: lanes_for(profile.mps(), total),
        slots: 0,
        legacy_counts: StatusCounts::default(),
    };
    let month = ctx.now.format("%Y-%m").to_string();
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
        let accepted = AcceptedSend::new(ctx.church, &key_hash(k), body_hash, answer.clone(), ttl);
        accepting.add(Part::Idempotency, accepted.claim(ctx.now.timestamp())?);
    }
    match accepting.commit(ctx.table).await {
        Ok(()) => {}
        Err(e) if e.failed(Part::Allowance) => {
            return Err(SendError::MonthlyLimit {
                limit: plan.messages_per_month.unwrap_or(0),
            });
        }
        Err(TransactionError::Cancelled(_)) => return Err(SendError::IdempotencyMismatch),
        Err(TransactionError::Table(e)) => return Err(e.into()),
    }
    let job = FanoutJob {
        church_id: ctx.church,
        message_id: id,
        audiences: request.audiences,
        index: 0,
        cursor: None,
    };
    let body =
        serde_json::to_string(&job).map_err(|e| TableError::backend("encode a fan-out job", e))?;
    if let Err(e) = fanout.send_batch(vec![OutgoingMessage::new(body)]).await {
        // Without its job the message would wait forever: say so on it.
        let key = keys::message(ctx.church, id);
        if let Err(marking) = ctx.table.update(&key, Message::not_queued(), None).await {
            tracing::warn!(error = %marking, "could not mark an unqueued message failed");
        }
        return Err(e.into());
    }
    super::templates::count_send(ctx.table, ctx.church, request.content.as_str()).await;
    Ok(answer)
}
