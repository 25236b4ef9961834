//! The church's inbox: conversations by last activity, a thread newest
//! first, marking read, and the open / closed / archived status.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{
    STATUSES, activity, by_status, conversation_key, conversation_view, message_key, message_view,
    messages_partition, phone_conversation_key, reply_preview,
};
use crate::crypto::Vault;
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::blobs::Blobs;
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

/// A page of thread items as the inbox shows them: media through
/// presigned links, and the preview of each replied-to message.
pub async fn shown_messages(
    table: &dyn Table,
    blobs: &dyn Blobs,
    conversation: &str,
    items: &[Item],
) -> Result<Vec<Value>, ConversationError> {
    let mut shown = Vec::with_capacity(items.len());
    for item in items {
        let media = super::media::shown(blobs, item).await?;
        let reply_to = match item
            .get("replyToId")
            .and_then(Value::as_str)
            .and_then(|r| MessageId::parse(r).ok())
        {
            Some(id) => table
                .get(&message_key(conversation, id))
                .await?
                .map(|m| reply_preview(&m))
                .unwrap_or(Value::Null),
            None => Value::Null,
        };
        shown.push(message_view(item, &media, reply_to));
    }
    Ok(shown)
}

/// The conversation and one page of its messages, newest first.
pub async fn thread(
    table: &dyn Table,
    blobs: &dyn Blobs,
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
    let page: Vec<Item> = all.into_iter().skip(skip).take(limit).collect();
    let items = shown_messages(table, blobs, id, &page).await?;
    Ok((
        view(table, vault, church, &conv).await?,
        Listed { items, total },
    ))
}

/// The conversation a phone has with this church, if it has one.
pub async fn of_phone(
    table: &dyn Table,
    church: ChurchId,
    phone_hash: &str,
) -> Result<Option<Item>, TableError> {
    let Some(claim) = table
        .get(&phone_conversation_key(church, phone_hash))
        .await?
    else {
        return Ok(None);
    };
    let id = claim
        .get("conversationId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    table.get(&conversation_key(church, id)).await
}

/// One message of the church's conversation, if it is there.
pub async fn message(
    table: &dyn Table,
    church: ChurchId,
    conversation_id: &str,
    id: MessageId,
) -> Result<Item, ConversationError> {
    conversation(table, church, conversation_id).await?;
    table
        .get(&message_key(conversation_id, id))
        .await?
        .ok_or(ConversationError::MessageNotFound)
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
