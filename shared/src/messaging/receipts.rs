//! Delivery receipts (`message.sent`, `message.finalized`): they move a
//! recipient forward only — a late `sent` never overwrites `delivered` —
//! and each Telnyx event is applied once however often it is delivered.

use serde_json::{Value, json};

use super::model::{Status, carrier_index, transition};
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::ports::table::{Cond, Index, Key, Query, Table, TableError};

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
    let seen = Key::new(format!("WEBHOOK#{event_id}"), "EVENT");
    if table.get(&seen).await?.is_some() {
        return Ok(Applied::Ignored);
    }
    let page = table
        .query(
            Query::partition(carrier_index(carrier_id))
                .index(Index::Gsi1)
                .limit(1),
        )
        .await?;
    let Some(recipient) = page.items.into_iter().next() else {
        return Ok(Applied::Unknown);
    };
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
    let code = payload["errors"][0]
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stamp = now.to_rfc3339();
    let mut result = Applied::Ignored;
    for from in sources(to) {
        let set = match (&code, to) {
            (Some(code), Status::Failed) => vec![("errorCode", json!(code))],
            _ => vec![],
        };
        match table
            .transact(transition(
                church, message, member, branch, *from, to, set, &stamp,
            ))
            .await
        {
            Ok(()) => {
                result = Applied::Moved(to);
                break;
            }
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    // Remember the event for three days: Telnyx retries for less than that.
    let item = json!({ "pk": seen.pk, "sk": seen.sk, "ttl": now.timestamp() + 3 * 86_400 });
    table
        .put(
            item.as_object().cloned().unwrap_or_default(),
            Some(Cond::NotExists),
        )
        .await
        .or_else(|e| match e {
            TableError::ConditionFailed => Ok(()),
            e => Err(e),
        })?;
    Ok(result)
}
