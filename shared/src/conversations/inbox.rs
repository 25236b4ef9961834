//! The church's inbox: conversations by last activity, a thread newest
//! first, marking read, and the open / closed / archived status.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{
    STATUSES, activity, by_status, conversation_key, conversation_view, message_view,
    messages_partition,
};
use crate::crypto::Vault;
use crate::domain::{ChurchId, MemberId};
use crate::keys;
use crate::ports::table::{Cond, Index, Item, Key, Query, Table, TableError, Update};

/// One page of a listing and the total behind it.
pub struct Listed {
    pub items: Vec<Value>,
    pub total: u64,
}

/// Who the conversation is with, as the inbox shows them.
async fn member_of(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    conv: &Item,
) -> Result<Value, TableError> {
    let phone = conv
        .get("phoneSealed")
        .and_then(Value::as_str)
        .and_then(|s| vault.open(s).ok());
    let member_id = conv
        .get("memberId")
        .and_then(Value::as_str)
        .and_then(|m| MemberId::parse(m).ok());
    let member = match member_id {
        Some(id) => table.get(&keys::member(church, id)).await?,
        None => None,
    };
    let name = |attr: &str| member.as_ref().and_then(|m| m.get(attr)).cloned();
    Ok(json!({
        "id": member_id,
        "firstName": name("firstName").unwrap_or_else(|| json!("Unknown")),
        "lastName": name("lastName").unwrap_or_else(|| json!("")),
        "phone": phone,
    }))
}

async fn view(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    conv: &Item,
) -> Result<Value, TableError> {
    let mut view = conversation_view(conv, member_of(table, vault, church, conv).await?);
    view["unknown"] = conv.get("unknown").cloned().unwrap_or(json!(false));
    Ok(view)
}

/// Conversations in `status`, most recent activity first; `skip` then `limit`.
pub async fn list(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    status: &str,
    skip: usize,
    limit: usize,
) -> Result<Listed, TableError> {
    let mut found = Vec::new();
    let mut cursor = None;
    let mut total = 0u64;
    // Counted by walking the status's index keys (an inbox holds hundreds,
    // not millions); only the page's items are read in full.
    loop {
        let page = table
            .query(
                Query::partition(by_status(church, status))
                    .index(Index::Gsi2)
                    .descending()
                    .keys_only()
                    .limit(500)
                    .after(cursor.take()),
            )
            .await?;
        for item in page.items {
            if total as usize >= skip && found.len() < limit {
                found.push(item);
            }
            total += 1;
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let keys = found.iter().map(Key::of).collect::<Result<Vec<_>, _>>()?;
    let mut items = Vec::with_capacity(keys.len());
    for conv in table.get_many(&keys).await?.into_iter().flatten() {
        items.push(view(table, vault, church, &conv).await?);
    }
    Ok(Listed { items, total })
}

async fn conversation(
    table: &dyn Table,
    church: ChurchId,
    id: &str,
) -> Result<Item, ConversationError> {
    table
        .get(&conversation_key(church, id))
        .await?
        .ok_or(ConversationError::NotFound)
}

/// The conversation and one page of its messages, newest first.
pub async fn thread(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    id: &str,
    skip: usize,
    limit: usize,
) -> Result<(Value, Listed), ConversationError> {
    let conv = conversation(table, church, id).await?;
    let all = crate::ports::table::query_all(
        table,
        Query::partition(messages_partition(id)).descending(),
    )
    .await?;
    let total = all.len() as u64;
    let items = all
        .iter()
        .skip(skip)
        .take(limit)
        .map(message_view)
        .collect();
    Ok((
        view(table, vault, church, &conv).await?,
        Listed { items, total },
    ))
}

/// Marks every message of the conversation read.
pub async fn read(table: &dyn Table, church: ChurchId, id: &str) -> Result<(), ConversationError> {
    match table
        .update(
            &conversation_key(church, id),
            Update::default().set("unreadCount", 0),
            Some(Cond::Exists),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(TableError::ConditionFailed) => Err(ConversationError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Moves the conversation to `status` (one of `STATUSES`, checked by the caller).
pub async fn set_status(
    table: &dyn Table,
    church: ChurchId,
    id: &str,
    status: &str,
    now: &str,
) -> Result<(), ConversationError> {
    debug_assert!(STATUSES.contains(&status));
    let conv = conversation(table, church, id).await?;
    let last = conv
        .get("lastMessageAt")
        .and_then(Value::as_str)
        .unwrap_or(now);
    table
        .update(
            &conversation_key(church, id),
            Update::default()
                .set("status", status)
                .set("updatedAt", now)
                .set("gsi2pk", by_status(church, status))
                .set("gsi2sk", activity(last, id)),
            Some(Cond::Exists),
        )
        .await?;
    Ok(())
}

/// The conversation as the inbox shows it (for a reply's answer).
pub async fn get(table: &dyn Table, church: ChurchId, id: &str) -> Result<Item, ConversationError> {
    conversation(table, church, id).await
}
