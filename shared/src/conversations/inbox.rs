//! The church's inbox: conversations by last activity, a thread newest
//! first, marking read, and the open / closed / archived status.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{
    STATUSES, by_status, conversation_key, conversation_view, kept_refiling, message_key,
    message_view, messages_partition, phone_conversation_key, refile, reply_preview,
    status_counter,
};
use crate::crypto::Vault;
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::blobs::Blobs;
use crate::ports::table::{
    Cond, Cursor, Index, Item, Key, Query, Table, TableError, Update, window,
};

/// One page of a listing, the total behind it and where the next page starts.
pub struct Listed {
    pub items: Vec<Value>,
    pub total: u64,
    pub next: Option<String>,
}

/// The conversations as the inbox shows them, with who each is with
/// (their members read in one batch).
async fn views(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    convs: &[Item],
) -> Result<Vec<Value>, TableError> {
    let member_id = |conv: &Item| {
        conv.get("memberId")
            .and_then(Value::as_str)
            .and_then(|m| MemberId::parse(m).ok())
    };
    let mut ids: Vec<MemberId> = convs.iter().filter_map(member_id).collect();
    ids.sort();
    ids.dedup();
    let keys: Vec<Key> = ids.iter().map(|id| keys::member(church, *id)).collect();
    let members: std::collections::HashMap<MemberId, Item> = ids
        .into_iter()
        .zip(table.get_many(&keys).await?)
        .filter_map(|(id, item)| item.map(|item| (id, item)))
        .collect();
    Ok(convs
        .iter()
        .map(|conv| {
            let id = member_id(conv);
            let member = id.and_then(|id| members.get(&id));
            let name = |attr: &str| member.and_then(|m| m.get(attr)).cloned();
            let phone = conv
                .get("phoneSealed")
                .and_then(Value::as_str)
                .and_then(|s| vault.open(s).ok());
            let shown = json!({
                "id": id,
                "firstName": name("firstName").unwrap_or_else(|| json!("Unknown")),
                "lastName": name("lastName").unwrap_or_else(|| json!("")),
                "phone": phone,
            });
            let mut view = conversation_view(conv, shown);
            view["unknown"] = conv.get("unknown").cloned().unwrap_or(json!(false));
            view
        })
        .collect())
}

/// Conversations in `status`, most recent activity first: `skip` then
/// `limit`, or `limit` after a cursor from an earlier page. The total is
/// the church's counter for that status.
pub async fn list(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    status: &str,
    page: Window,
) -> Result<Listed, TableError> {
    let total = table
        .get(&keys::church_counters(church))
        .await?
        .and_then(|c| c.get(&status_counter(status)).and_then(Value::as_u64))
        .unwrap_or(0);
    let query = Query::partition(by_status(church, status))
        .index(Index::Gsi2)
        .keys_only()
        .descending()
        .after(page.cursor.clone().map(Cursor));
    let skip = if page.cursor.is_some() { 0 } else { page.skip };
    let (found, next) = window(table, query, skip, page.limit).await?;
    let keys = found.iter().map(Key::of).collect::<Result<Vec<_>, _>>()?;
    let convs: Vec<Item> = table.get_many(&keys).await?.into_iter().flatten().collect();
    let items = views(table, vault, church, &convs).await?;
    Ok(Listed { items, total, next })
}

/// Which part of a list to read.
pub struct Window {
    pub skip: usize,
    pub limit: usize,
    /// The table cursor of an earlier page's `nextCursor` (already verified).
    pub cursor: Option<String>,
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
    let total = conv
        .get("messageCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let query = Query::partition(messages_partition(id)).descending();
    let (page, _) = window(table, query, skip, limit).await?;
    let items = shown_messages(table, blobs, id, &page).await?;
    let shown = views(table, vault, church, std::slice::from_ref(&conv)).await?;
    Ok((
        shown.into_iter().next().unwrap_or_default(),
        Listed {
            items,
            total,
            next: None,
        },
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

/// Moves the conversation to `status` (one of `STATUSES`, checked by the
/// caller), and one conversation between the status counters.
pub async fn set_status(
    table: &dyn Table,
    church: ChurchId,
    id: &str,
    status: &str,
    now: &str,
) -> Result<(), ConversationError> {
    debug_assert!(STATUSES.contains(&status));
    for _ in 0..3 {
        let conv = conversation(table, church, id).await?;
        let was = conv
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("open")
            .to_owned();
        let last = conv
            .get("lastMessageAt")
            .and_then(Value::as_str)
            .unwrap_or(now);
        let ops = refile(
            church,
            id,
            &was,
            status,
            last,
            Update::default().set("updatedAt", now),
        );
        match table.transact(ops).await {
            Ok(()) => return Ok(()),
            // A text reopened it meanwhile: read it again.
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(kept_refiling().into())
}

/// The conversation as the inbox shows it (for a reply's answer).
pub async fn get(table: &dyn Table, church: ChurchId, id: &str) -> Result<Item, ConversationError> {
    conversation(table, church, id).await
}
