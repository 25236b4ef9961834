//! The fan-out consumer's step: one page of the audience per invocation.
//! Each member becomes one recipient however many branches or groups name
//! them (the recipient put is conditional); members who opted out are
//! recorded `opted_out` and never sent; the rest go out in send jobs of
//! many recipients each; then the job enqueues its own continuation.

use serde::{Deserialize, Serialize};

use super::model::{Status, add_recipient, message_key};
use super::send::{Audience, FanoutJob};
use crate::directory::members::{MemberRecord, members_of_rows};
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::queue::{OutgoingMessage, Queue, QueueError};
use crate::ports::table::{Cursor, Index, Item, Query, SortCond, Table, TableError, Update};

/// Audience members read per invocation.
pub const PAGE: u32 = 100;
/// Recipients per send job (one SQS message).
pub const RECIPIENTS_PER_JOB: usize = 25;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    pub church_id: ChurchId,
    pub message_id: MessageId,
    pub member_ids: Vec<MemberId>,
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("could not encode a job")]
    Encode(#[from] serde_json::Error),
}

/// One page of `audience` from `cursor`: member items, and where to go on.
async fn page(
    table: &dyn Table,
    church: ChurchId,
    audience: &Audience,
    cursor: Option<String>,
) -> Result<(Vec<Item>, Option<String>), TableError> {
    let members_of = |container: String| {
        Query::partition(keys::church(church))
            .sort(SortCond::BeginsWith(keys::memberships_prefix(&container)))
    };
    let query = match audience {
        Audience::All => Query::partition(keys::members_by_first_name(church)).index(Index::Gsi1),
        Audience::Branch { id } => members_of(keys::branch_container(*id)),
        Audience::Group { id } => members_of(keys::group_container(*id)),
        Audience::Members { ids } => {
            let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
            let end = (start + PAGE as usize).min(ids.len());
            let keys: Vec<_> = ids[start..end]
                .iter()
                .map(|m| keys::member(church, *m))
                .collect();
            let items = table.get_many(&keys).await?.into_iter().flatten().collect();
            return Ok((items, (end < ids.len()).then(|| end.to_string())));
        }
    };
    let page = table
        .query(query.limit(PAGE).after(cursor.map(Cursor)))
        .await?;
    let next = page.cursor.map(|c| c.0);
    if matches!(audience, Audience::All) {
        return Ok((page.items, next));
    }
    Ok((members_of_rows(table, church, &page.items).await?, next))
}

/// Runs one step of a fan-out job.
pub async fn step(
    table: &dyn Table,
    send_queue: &dyn Queue,
    fanout_queue: &dyn Queue,
    job: FanoutJob,
    now: &str,
) -> Result<(), FanoutError> {
    let message = message_key(job.church_id, job.message_id);
    if table.get(&message).await?.is_none() {
        tracing::warn!(message_id = %job.message_id, "fan-out for a message that does not exist; dropped");
        return Ok(());
    }
    if job.index == 0 && job.cursor.is_none() {
        table
            .update(
                &message,
                Update::default()
                    .set("status", "sending")
                    .set("sentAt", now),
                None,
            )
            .await?;
    }
    let Some(audience) = job.audiences.get(job.index) else {
        table
            .update(&message, Update::default().set("fannedOut", true), None)
            .await?;
        return Ok(());
    };
    let (members, next) = page(table, job.church_id, audience, job.cursor.clone()).await?;
    let mut to_send = Vec::new();
    for item in members {
        let Ok(member) = MemberRecord::from_item(item) else {
            continue;
        };
        let status = if member.opt_in_sms {
            Status::Queued
        } else {
            Status::OptedOut
        };
        let names = (member.first_name.as_str(), member.last_name.as_str());
        match table
            .transact(
                add_recipient(
                    job.church_id,
                    job.message_id,
                    member.id,
                    member.branch_id,
                    names,
                    status,
                    now,
                )
                .to_vec(),
            )
            .await
        {
            Ok(()) if status == Status::Queued => to_send.push(member.id),
            Ok(()) => {}
            // Already a recipient (named by another branch or group, or a redelivered page).
            Err(TableError::TransactionCancelled { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let jobs = to_send
        .chunks(RECIPIENTS_PER_JOB)
        .map(|ids| {
            serde_json::to_string(&SendJob {
                church_id: job.church_id,
                message_id: job.message_id,
                member_ids: ids.to_vec(),
            })
            .map(OutgoingMessage::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !jobs.is_empty() {
        send_queue.send_batch(jobs).await?;
    }
    let continuation = match next {
        Some(cursor) => FanoutJob {
            cursor: Some(cursor),
            ..job
        },
        None => FanoutJob {
            index: job.index + 1,
            cursor: None,
            ..job
        },
    };
    fanout_queue
        .send_batch(vec![OutgoingMessage::new(serde_json::to_string(
            &continuation,
        )?)])
        .await?;
    Ok(())
}
