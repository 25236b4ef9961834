//! `POST /api/messages/send`: validate, store the message, claim the
//! idempotency key, enqueue ONE fan-out job, answer. The work is the same
//! for 10 recipients or 100,000: `totalRecipients` comes from counters.

use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::jobs::{Audience, FanoutJob};
use super::model::message_key;
use crate::directory::members::Ctx;
use crate::directory::plans;
use crate::domain::{MediaId, MessageId, MessageText};
use crate::keys;
use crate::ports::queue::{OutgoingMessage, Queue, QueueError};
use crate::ports::table::{Cond, Key, TableError, TxOp, Update};

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
    let wanted: Vec<_> = media
        .iter()
        .map(|m| Key::new(keys::church(ctx.church), format!("MEDIA#{m}")))
        .collect();
    let mut total = 0;
    let mut found = Vec::new();
    for item in ctx.table.get_many(&wanted).await? {
        let item = item.ok_or(SendError::UnknownMedia)?;
        total += item.get("size").and_then(Value::as_u64).unwrap_or(0);
        let key = item
            .get("blobKey")
            .and_then(Value::as_str)
            .ok_or(SendError::UnknownMedia)?;
        found.push(key.to_owned());
    }
    if total > super::media::MAX_MEDIA_BYTES {
        return Err(SendError::MediaTooLarge);
    }
    Ok(found)
}

fn idempotency_key(ctx: &Ctx<'_>, key: &str) -> Key {
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    Key::new(keys::church(ctx.church), format!("IDEMP#{hash}"))
}

fn count(item: Option<&crate::ports::table::Item>, attr: &str) -> i64 {
    item.and_then(|i| i.get(attr))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Recipients the audience will reach, from counters (overlaps counted twice).
async fn estimate(
    ctx: &Ctx<'_>,
    audiences: &[Audience],
    counters: Option<&crate::ports::table::Item>,
) -> Result<i64, SendError> {
    let mut total = 0;
    for audience in audiences {
        total += match audience {
            Audience::All => count(counters, "members"),
            Audience::Members { ids } => ids.len() as i64,
            Audience::Branch { id } => {
                let item = ctx
                    .table
                    .get(&keys::branch(ctx.church, *id))
                    .await?
                    .ok_or(SendError::UnknownTarget("targetIds"))?;
                count(Some(&item), "memberCount")
            }
            Audience::Group { id } => {
                let item = ctx
                    .table
                    .get(&keys::group(ctx.church, *id))
                    .await?
                    .ok_or(SendError::UnknownTarget("targetIds"))?;
                count(Some(&item), "memberCount")
            }
        };
    }
    Ok(total)
}

pub async fn send(
    ctx: &Ctx<'_>,
    fanout: &dyn Queue,
    request: SendRequest,
    body_for_hash: &str,
) -> Result<Value, SendError> {
    let body_hash = hex::encode(Sha256::digest(body_for_hash.as_bytes()));
    if let Some(key) = &request.idempotency_key
        && let Some(seen) = ctx.table.get(&idempotency_key(ctx, key)).await?
    {
        if seen.get("bodyHash").and_then(Value::as_str) != Some(body_hash.as_str()) {
            return Err(SendError::IdempotencyMismatch);
        }
        return Ok(seen.get("answer").cloned().unwrap_or(Value::Null));
    }
    let wanted = [
        keys::church_profile(ctx.church),
        keys::church_counters(ctx.church),
    ];
    let mut found = ctx.table.get_many(&wanted).await?.into_iter();
    let (profile, counters) = (found.next().flatten(), found.next().flatten());
    if profile
        .as_ref()
        .and_then(|p| p.get("telnyxPhoneNumber"))
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(SendError::NoSendingNumber);
    }
    let plan = plans::of_profile(profile.as_ref());
    let total = estimate(ctx, &request.audiences, counters.as_ref()).await?;
    let media_keys = media_keys(ctx, &request.media).await?;

    let id = MessageId::generate();
    let now = ctx.now.to_rfc3339();
    let info = request.content.segment_info();
    let answer = json!({
        "id": id, "content": request.content.as_str(), "targetType": request.target_type, "totalRecipients": total,
        "status": "queued", "createdAt": now, "segments": info.segments, "encoding": info.encoding,
    });
    let key = message_key(ctx.church, id);
    let mut message = json!({
        "pk": key.pk, "sk": key.sk, "type": "message", "churchId": ctx.church, "targetIds": request.target_ids,
        "recipients": 0, "fannedOut": false, "mediaIds": request.media, "mediaKeys": media_keys,
    });
    if let (Some(m), Some(a)) = (message.as_object_mut(), answer.as_object()) {
        m.extend(a.clone());
    }
    let month = format!("messages#{}", ctx.now.format("%Y-%m"));
    let within_plan = plan
        .messages_per_month
        .map(|l| Cond::Le(month.clone(), json!(i64::from(l) - total)));
    let mut ops = vec![
        TxOp::Put {
            item: message.as_object().cloned().unwrap_or_default(),
            cond: Some(Cond::NotExists),
        },
        TxOp::Update {
            key: keys::church_counters(ctx.church),
            update: Update::default()
                .add(&month, total)
                .add("messagesCreated", 1),
            cond: within_plan.map(|c| Cond::Or(vec![c, Cond::AttrNotExists(month.clone())])),
        },
    ];
    ops.push(TxOp::Update {
        key: super::model::day_key(ctx.church, &now[..10]),
        update: Update::default().add("messages", 1),
        cond: None,
    });
    if let Some(limit) = plan.messages_per_month
        && total > i64::from(limit)
    {
        return Err(SendError::MonthlyLimit { limit });
    }
    if let Some(k) = &request.idempotency_key {
        let claim = idempotency_key(ctx, k);
        let ttl = (ctx.now + Duration::hours(24)).timestamp();
        let item = json!({ "pk": claim.pk, "sk": claim.sk, "bodyHash": body_hash, "answer": answer, "ttl": ttl });
        let expired = Cond::Lt("ttl".into(), json!(ctx.now.timestamp()));
        ops.push(TxOp::Put {
            item: item.as_object().cloned().unwrap_or_default(),
            cond: Some(Cond::Or(vec![Cond::NotExists, expired])),
        });
    }
    match ctx.table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCancelled { failed }) if failed.contains(&1) => {
            return Err(SendError::MonthlyLimit {
                limit: plan.messages_per_month.unwrap_or(0),
            });
        }
        Err(TableError::TransactionCancelled { .. }) => return Err(SendError::IdempotencyMismatch),
        Err(e) => return Err(e.into()),
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
        let _ = ctx
            .table
            .update(
                &key,
                Update::default()
                    .set("status", "failed")
                    .set("error", "could not be queued"),
                None,
            )
            .await;
        return Err(e.into());
    }
    Ok(answer)
}
