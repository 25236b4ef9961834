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
//! the furthest state at once. Neither path depends on the other, so a
//! receipt is never lost when Telnyx stops retrying.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::model::{Status, carrier_index, status_of, transition};
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::ports::table::{Index, Item, Key, Query, Table, TableError, Update};

/// How long an early receipt waits for its send to be recorded.
const EARLY_TTL_SECS: i64 = 2 * 86_400;

/// Receipts for a carrier id the sender has not recorded yet.
pub fn early_key(carrier_id: &str) -> Key {
    Key::new(format!("EARLY#{carrier_id}"), "RECEIPT")
}

/// What a carrier id's early receipts say: the furthest state, and a
/// failure's code.
pub type Early = (Status, Option<String>);

fn furthest(item: &Item) -> Option<Early> {
    let code = |state: &Value| {
        state
            .get("errorCode")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    [Status::Delivered, Status::Failed]
        .into_iter()
        .find_map(|s| item.get(s.as_str()).map(|state| (s, code(state))))
}

/// The early receipts of these carrier ids (one batched read).
pub async fn early(
    table: &dyn Table,
    carrier_ids: &[String],
) -> Result<HashMap<String, Early>, TableError> {
    let mut found = HashMap::new();
    for chunk in carrier_ids.chunks(100) {
        let keys: Vec<Key> = chunk.iter().map(|c| early_key(c)).collect();
        for (id, item) in chunk.iter().zip(table.get_many(&keys).await?) {
            if let Some(early) = item.as_ref().and_then(furthest) {
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

/// The carrier's error code of a receipt (`data` of the envelope), if it failed.
pub fn error_code(data: &Value) -> Option<String> {
    data["payload"]["errors"][0]
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Applies one webhook event (`data` of the envelope) unless its id was seen.
pub async fn apply(
    table: &dyn Table,
    data: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, TableError> {
    let event_id = data.get("id").and_then(Value::as_str).unwrap_or_default();
    let payload = &data["payload"];
    let carrier_id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(to) = payload["to"][0]
        .get("status")
        .and_then(Value::as_str)
        .and_then(target)
    else {
        return Ok(Applied::Ignored);
    };
    if event_id.is_empty() || carrier_id.is_empty() {
        return Ok(Applied::Ignored);
    }
    let page = table
        .query(
            Query::partition(carrier_index(carrier_id))
                .index(Index::Gsi1)
                .limit(1),
        )
        .await?;
    let code = error_code(data);
    let Some(recipient) = page.items.into_iter().next() else {
        // Only a final state is worth keeping: the sender records `sent` itself.
        if to.is_terminal() {
            let update = Update::default()
                .set(to.as_str(), json!({ "errorCode": code }))
                .set("ttl", now.timestamp() + EARLY_TTL_SECS);
            table.update(&early_key(carrier_id), update, None).await?;
        }
        return Ok(Applied::Unknown);
    };
    if recipient.get("type").and_then(Value::as_str) == Some("conversation_message") {
        return thread_message(table, &recipient, to, now).await;
    }
    let id = |k: &str| {
        recipient
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (Ok(church), Ok(message), Ok(member)) = (
        ChurchId::parse(&id("churchId")),
        MessageId::parse(&id("messageId")),
        MemberId::parse(&id("memberId")),
    ) else {
        return Ok(Applied::Ignored);
    };
    let branch = crate::domain::BranchId::parse(&id("branchId")).ok();
    let Some(current) = status_of(&recipient) else {
        return Ok(Applied::Ignored);
    };
    // Only from a state this receipt may move it out of: anything else is
    // a replay, or late (a `sent` after `delivered`).
    if !sources(to).contains(&current) {
        return Ok(Applied::Ignored);
    }
    let set = match (&code, to) {
        (Some(code), Status::Failed) => vec![("errorCode", json!(code))],
        _ => vec![],
    };
    let moved = table
        .transact(transition(
            church,
            message,
            member,
            branch,
            current,
            to,
            set,
            &now.to_rfc3339(),
        ))
        .await;
    match moved {
        Ok(()) => Ok(Applied::Moved(to)),
        // It moved meanwhile (a concurrent delivery of the same event).
        Err(TableError::TransactionCancelled { .. }) => Ok(Applied::Ignored),
        Err(e) => Err(e),
    }
}

/// A receipt for a conversation's outbound text: its `deliveryStatus`
/// moves forward only, like a recipient's.
async fn thread_message(
    table: &dyn Table,
    item: &crate::ports::table::Item,
    to: Status,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, TableError> {
    let current = item
        .get("deliveryStatus")
        .and_then(Value::as_str)
        .and_then(Status::parse);
    let Some(current) = current.filter(|c| sources(to).contains(c)) else {
        return Ok(Applied::Ignored);
    };
    let key = crate::ports::table::Key::of(item)?;
    let update = crate::ports::table::Update::default()
        .set("deliveryStatus", to.as_str())
        .set("updatedAt", now.to_rfc3339());
    let cond = crate::ports::table::Cond::eq("deliveryStatus", current.as_str());
    match table.update(&key, update, Some(cond)).await {
        Ok(_) => Ok(Applied::Moved(to)),
        Err(TableError::ConditionFailed) => Ok(Applied::Ignored),
        Err(e) => Err(e),
    }
}
