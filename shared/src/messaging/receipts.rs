//! Delivery receipts (`message.sent`, `message.finalized`): they move a
//! recipient forward only — a late `sent` never overwrites `delivered` —
//! so each Telnyx event is applied once however often it is delivered: a
//! replay finds the recipient already there and writes nothing. (No
//! per-event dedupe row is needed, nor paid for.)
//!
//! A receipt can arrive before the sender has recorded the carrier id (the
//! sender records a whole job's answers in one transaction). It is kept as
//! an early receipt and answered 404, so Telnyx also retries it; the sender
//! reads the job's early receipts before it records the answers and writes
//! the furthest state at once, and reads them once more after recording
//! (a receipt stored between its two reads); the webhook, having stored an
//! early receipt, looks for the record once more. Each side writes, then
//! reads the other's write, so one of them always applies the receipt,
//! even when Telnyx stops retrying.

use std::collections::HashMap;

use super::entities::{EarlyReceipt, Texted};
use super::model::{Mark, Move, Status, apply_one};
use crate::conversations::model::ThreadMessage;
use crate::keys;
use crate::ports::table::{Index, Key, Query, Table, TableError};
use crate::store::{Entities, Entity, from_item};
use crate::telnyx::events::Receipt;

/// How long an early receipt waits for its send to be recorded.
const EARLY_TTL_SECS: i64 = 2 * 86_400;

/// What a carrier id's early receipts say: the furthest state, and a
/// failure's code.
pub type Early = (Status, Option<String>);

/// The early receipts of these carrier ids (one batched read).
pub async fn early(
    table: &dyn Table,
    carrier_ids: &[String],
) -> Result<HashMap<String, Early>, TableError> {
    let mut found = HashMap::new();
    for chunk in carrier_ids.chunks(100) {
        let keys: Vec<Key> = chunk.iter().map(|c| keys::early_receipt(c)).collect();
        let receipts = table.load_many::<EarlyReceipt>(&keys).await?;
        for (id, receipt) in chunk.iter().zip(receipts) {
            if let Some(early) = receipt.as_ref().and_then(EarlyReceipt::furthest) {
                found.insert(id.clone(), early);
            }
        }
    }
    Ok(found)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Moved(Status),
    /// Already at or past that state, or a duplicate event.
    Ignored,
    /// No recipient has this carrier id (yet): Telnyx should retry.
    Unknown,
}

/// Where a receipt may move a recipient from, nearest first.
fn sources(to: Status) -> &'static [Status] {
    match to {
        Status::Sent => &[Status::Sending],
        Status::Delivered | Status::Failed => &[Status::Sent, Status::Sending, Status::Uncertain],
        _ => &[],
    }
}

fn target(carrier_status: &str) -> Option<Status> {
    match carrier_status {
        "sent" => Some(Status::Sent),
        "delivered" => Some(Status::Delivered),
        "delivery_failed" | "sending_failed" | "expired" | "delivery_unconfirmed" => {
            Some(Status::Failed)
        }
        _ => None,
    }
}

/// The recipient or thread message the carrier id names, if recorded yet.
async fn texted(
    table: &dyn Table,
    carrier_id: &str,
) -> Result<Option<crate::ports::table::Item>, TableError> {
    let page = table
        .query(
            Query::partition(keys::carrier_message(carrier_id))
                .index(Index::Gsi1)
                .limit(1),
        )
        .await?;
    Ok(page.items.into_iter().next())
}

/// Applies one delivery receipt; a replay finds its recipient moved on.
pub async fn apply(
    table: &dyn Table,
    receipt: &Receipt,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, TableError> {
    let carrier_id = receipt.carrier_id.as_str();
    let Some(to) = target(&receipt.status) else {
        return Ok(Applied::Ignored);
    };
    let code = receipt.error_code.clone();
    let found = match texted(table, carrier_id).await? {
        Some(found) => found,
        // Only a final state is worth keeping: the sender records `sent` itself.
        None if to.is_terminal() => {
            let ttl = now.timestamp() + EARLY_TTL_SECS;
            let update = EarlyReceipt::record(to, code.clone(), ttl);
            table
                .update(&keys::early_receipt(carrier_id), update, None)
                .await?;
            // A second look: the sender may have recorded the send between
            // the first and the early receipt's write, after its own last
            // read of early receipts (`Sender::settle_late`).
            match texted(table, carrier_id).await? {
                Some(found) => found,
                None => return Ok(Applied::Unknown),
            }
        }
        None => return Ok(Applied::Unknown),
    };
    let recipient = match from_item::<Texted>(found) {
        Ok(Texted::Recipient(recipient)) => recipient,
        Ok(Texted::ThreadMessage(message)) => {
            return thread_message(table, &message, to, now).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "receipt for an unreadable text; ignored");
            return Ok(Applied::Ignored);
        }
    };
    let current = recipient.status;
    // Only from a state this receipt may move it out of: anything else is
    // a replay, or late (a `sent` after `delivered`).
    if !sources(to).contains(&current) {
        return Ok(Applied::Ignored);
    }
    let marks = match (code, to) {
        (Some(code), Status::Failed) => vec![Mark::ErrorCode(code)],
        _ => vec![],
    };
    let moved = Move {
        recipient: recipient.key(),
        from: current,
        to,
        marks,
    };
    // `false`: it moved meanwhile (a concurrent delivery of the same event).
    Ok(if apply_one(table, moved, &now.to_rfc3339()).await? {
        Applied::Moved(to)
    } else {
        Applied::Ignored
    })
}

/// A receipt for a conversation's outbound text: its `deliveryStatus`
/// moves forward only, like a recipient's.
async fn thread_message(
    table: &dyn Table,
    message: &ThreadMessage,
    to: Status,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, TableError> {
    let current = message.delivery_status.outbound();
    let Some(current) = current.filter(|c| sources(to).contains(c)) else {
        return Ok(Applied::Ignored);
    };
    let key = keys::thread_message(message.conversation_id, message.id);
    let (update, cond) = ThreadMessage::moved(current, to, &now.to_rfc3339());
    match table.update(&key, update, Some(cond)).await {
        Ok(_) => Ok(Applied::Moved(to)),
        Err(TableError::ConditionFailed) => Ok(Applied::Ignored),
        Err(e) => Err(e),
    }
}
