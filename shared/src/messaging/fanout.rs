//! The fan-out consumer's step: one page of the audience per invocation.
//! Each member becomes one recipient however many branches or groups name
//! them (the recipient put is conditional), in one of the message's lanes
//! and with a slot of its own in the tallies; members who opted out are
//! recorded `opted_out` and never sent; the rest go out in send jobs of
//! many recipients each; then the job enqueues its own continuation.
//!
//! Fairness between churches: a broadcast only runs a couple of seconds of
//! its number's throughput ahead of the sender (`window`). A 100,000-member
//! broadcast therefore never fills the send queue in front of a small
//! church's message: the fan-out waits (a delayed continuation) until the
//! sender has caught up, and everyone else's jobs slot in between.
//!
//! A cancelled message's remaining pages are skipped: no more recipients
//! are written, and the fan-out finishes as if the audience ended there.
//! A paused one goes on being written, but only up to the window: its
//! queued recipients wait in the sender, so the lead stays full.

use super::entities::{Message, MessageCounts, MessageState, Recipient};
use super::jobs::{Audience, FanoutJob, RecipientBatch, SendJob};
use super::model::{NewRecipient, Placement, Status, create};
use crate::directory::members::{MemberRecord, members_of_rows};
use crate::directory::model::ChurchProfile;
use crate::domain::{ChurchId, MemberId};
use crate::keys;
use crate::ports::queue::{OutgoingMessage, Queue, QueueError};
use crate::ports::table::{
    Cursor, Index, Item, Key, Query, SortCond, Table, TableError, query_all,
};
use crate::store::{Entities, Entity, from_item};

/// Audience members read per invocation.
pub const PAGE: u32 = 200;
/// A broadcast's first page is tiny: its first texts go out in one short
/// send job, queued before anyone's later pages. When many churches send
/// at once (Sunday 09:00), every church's first texts then come early,
/// rather than whole broadcasts in the order they were queued. Tiny,
/// because a job waits out its number's pacing inside the send consumer,
/// whose concurrency is capped: two texts at 10 MPS hold it ~0.1 s, ten
/// held it a second, and 2,000 churches' first jobs queued ~80 s deep
/// (the bench's Sunday rush).
pub const FIRST_PAGE: u32 = 2;
/// Most recipients per send job (one SQS message). A job books its
/// number once, so at 1,000 MPS this is ten writes a second on the number's
/// schedule item, far under what DynamoDB allows one item.
pub const RECIPIENTS_PER_JOB: usize = 100;
/// How far (in seconds of its number's throughput) a broadcast may run
/// ahead of the sender.
const LEAD_SECONDS: u32 = 2;

/// Recipients per send job at `mps`: a job lasts at most ~5 s, so a slow
/// number never holds a sender long, and a fast one uses few SQS messages.
pub fn recipients_per_job(mps: u32) -> usize {
    (mps as usize * 5).clamp(1, RECIPIENTS_PER_JOB)
}

/// Recipients of one broadcast allowed queued or sending at once.
pub fn window(mps: u32) -> i64 {
    i64::from(mps * LEAD_SECONDS).max(2 * recipients_per_job(mps) as i64)
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
    size: u32,
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
            let end = (start + size as usize).min(ids.len());
            let keys: Vec<_> = ids[start..end]
                .iter()
                .map(|m| keys::member(church, *m))
                .collect();
            let items = table.get_many(&keys).await?.into_iter().flatten().collect();
            return Ok((items, (end < ids.len()).then(|| end.to_string())));
        }
    };
    let page = table
        .query(query.limit(size).after(cursor.map(Cursor)))
        .await?;
    let next = page.cursor.map(|c| c.0);
    if matches!(audience, Audience::All) {
        return Ok((page.items, next));
    }
    Ok((members_of_rows(table, church, &page.items).await?, next))
}

fn new_recipient(member: &MemberRecord) -> NewRecipient<'_> {
    NewRecipient {
        member: member.id,
        branch: member.branch_id,
        names: (member.first_name.as_str(), member.last_name.as_str()),
        status: if member.opt_in_sms {
            Status::Queued
        } else {
            Status::OptedOut
        },
    }
}

/// Makes `members` recipients, each in its own slot; the ids to send to.
async fn add(
    table: &dyn Table,
    job: &FanoutJob,
    stored: &Message,
    members: &[MemberRecord],
    now: &str,
) -> Result<Vec<MemberId>, TableError> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    // Slots are handed out by an atomic counter, never reused: a page read
    // again (its job redelivered, members added meanwhile) takes new ones.
    let n = members.len() as u64;
    let (take, exists) = Message::take_slots(n);
    let taken = table
        .update(
            &keys::message(job.church_id, job.message_id),
            take,
            Some(exists),
        )
        .await?;
    let placement = Placement {
        church: job.church_id,
        message: job.message_id,
        lanes: stored.lanes,
        first_slot: Message::slots_taken(&taken, n)?,
    };
    let recipients: Vec<Recipient> = members
        .iter()
        .enumerate()
        .map(|(i, m)| placement.recipient(i, &new_recipient(m), now))
        .collect();
    let created = create(table, &recipients).await?;
    let mut to_send = Vec::new();
    for ((member, recipient), created) in members.iter().zip(&recipients).zip(created) {
        if created {
            if member.opt_in_sms {
                to_send.push(member.id);
            }
            continue;
        }
        // Named by another branch or group, or this page is redelivered
        // after a run died before enqueuing its jobs. Still queued → it
        // goes in a job again (the sender's claim sends it once).
        let existing: Option<Recipient> = table.load(&recipient.key()).await?;
        if existing.is_some_and(|r| r.status == Status::Queued) {
            to_send.push(member.id);
        }
    }
    Ok(to_send)
}

/// How many recipients the message has, once the last page is written:
/// read by key only, lane by lane, once per broadcast (the number a
/// `completed` message must have counted).
async fn count_recipients(table: &dyn Table, message: &Message) -> Result<i64, TableError> {
    let mut n = 0;
    for lane in 0..message.lanes.max(1) {
        let query = Recipient::lane(message.id, lane).keys_only().limit(1_000);
        n += query_all(table, query).await?.len() as i64;
    }
    Ok(n)
}

/// Marks the message as being sent; a message paused or cancelled before
/// its first page keeps that state and gets only the time.
async fn start(table: &dyn Table, message: &Key, now: &str) -> Result<(), TableError> {
    let (update, queued) = Message::started(now);
    match table.update(message, update, Some(queued)).await {
        Err(TableError::ConditionFailed) => {
            let (update, exists) = Message::first_sent(now);
            table.update(message, update, Some(exists)).await.map(drop)
        }
        done => done.map(drop),
    }
}

/// The audience is written (or the rest skipped): the message's recipients
/// are counted, the number a settled message must have counted.
async fn finish(table: &dyn Table, stored: &Message) -> Result<(), FanoutError> {
    let recipients = count_recipients(table, stored).await?;
    table
        .update(
            &keys::message(stored.church_id, stored.id),
            Message::fanned_out(recipients),
            None,
        )
        .await?;
    Ok(())
}

/// Runs one step of a fan-out job.
pub async fn step(
    table: &dyn Table,
    send_queue: &dyn Queue,
    fanout_queue: &dyn Queue,
    job: FanoutJob,
    now: &str,
) -> Result<(), FanoutError> {
    let message = keys::message(job.church_id, job.message_id);
    let Some(stored) = table.load::<Message>(&message).await? else {
        tracing::warn!(message_id = %job.message_id, "fan-out for a message that does not exist; dropped");
        return Ok(());
    };
    if stored.status == MessageState::Cancelled {
        return finish(table, &stored).await;
    }
    let profile: Option<ChurchProfile> = table.load(&ChurchProfile::key_of(job.church_id)).await?;
    let mps = profile.map_or(crate::directory::model::DEFAULT_MPS, |p| p.mps());
    let counts = MessageCounts::or_legacy(
        table
            .load(&keys::message_counts(job.church_id, job.message_id))
            .await?,
        &stored,
    )
    .counts;
    // The aggregated counts trail the recipients by the aggregator's lag
    // (seconds): the window is a lead to keep, not a limit to enforce.
    let outstanding = counts.of(Status::Queued) + counts.of(Status::Sending);
    if outstanding >= window(mps) {
        // The sender is behind: come back when about half the window is sent.
        let behind = (outstanding - window(mps) / 2).max(0) as f64 / f64::from(mps);
        let delay = std::time::Duration::from_secs_f64(behind.clamp(1.0, 900.0));
        fanout_queue
            .send_batch(vec![
                OutgoingMessage::new(serde_json::to_string(&job)?).delayed(delay),
            ])
            .await?;
        return Ok(());
    }
    if job.index == 0 && job.cursor.is_none() {
        start(table, &message, now).await?;
    }
    let Some(audience) = job.audiences.get(job.index) else {
        return finish(table, &stored).await;
    };
    let size = if job.index == 0 && job.cursor.is_none() {
        FIRST_PAGE
    } else {
        PAGE
    };
    let (members, next) = page(table, job.church_id, audience, job.cursor.clone(), size).await?;
    let members: Vec<MemberRecord> = members
        .into_iter()
        .filter_map(|item| match from_item::<MemberRecord>(item) {
            Ok(member) => Some(member),
            // One unreadable member must not stop the broadcast to the rest.
            Err(e) => {
                tracing::warn!(error = %e, "audience member unreadable; skipped");
                None
            }
        })
        .collect();
    let to_send = add(table, &job, &stored, &members, now).await?;
    let jobs = to_send
        .chunks(recipients_per_job(mps))
        .map(|ids| {
            serde_json::to_string(&SendJob::Recipients(RecipientBatch {
                church_id: job.church_id,
                message_id: job.message_id,
                member_ids: ids.to_vec(),
            }))
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
