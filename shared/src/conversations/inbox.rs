//! The church's inbox: conversations by last activity, a thread newest
//! first, marking read, and the open / closed / archived status.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{
    Conversation, ConversationStatus, PhoneConversation, ThreadMessage, kept_refiling,
};
use crate::crypto::Field;
use crate::crypto::Vault;
use crate::directory::members::MemberRecord;
use crate::directory::model::ChurchCounters;
use crate::domain::{ChurchId, ConversationId, MemberId, MessageId};
use crate::keys;
use crate::ports::blobs::Blobs;
use crate::ports::table::{Cond, Cursor, Index, Key, Query, Table, TableError, window};
use crate::store::{Entities, TransactionError, all_from};

/// One page of a listing, the total behind it and where the next page starts.
pub struct Listed {
    pub items: Vec<Value>,
    pub total: u64,
    pub next: Option<String>,
}

/// A conversation as the inbox shows it; `member` is who it is with (its
/// phone opened).
fn conversation_view(conv: &Conversation, member: Value) -> Value {
    json!({
        "id": conv.id,
        "memberId": conv.member_id,
        "member": member,
        "status": conv.status,
        "unreadCount": conv.unread_count,
        "lastMessage": conv.last_message,
        "lastMessageAt": conv.last_message_at,
        "createdAt": conv.created_at,
        "updatedAt": conv.updated_at,
        "unknown": conv.unknown,
    })
}

/// The conversations as the inbox shows them, with who each is with
/// (their members read in one batch).
async fn views(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    convs: &[Conversation],
) -> Result<Vec<Value>, TableError> {
    let mut ids: Vec<MemberId> = convs.iter().filter_map(|c| c.member_id).collect();
    ids.sort();
    ids.dedup();
    let keys: Vec<Key> = ids.iter().map(|id| keys::member(church, *id)).collect();
    let members: HashMap<MemberId, MemberRecord> = ids
        .into_iter()
        .zip(table.load_many::<MemberRecord>(&keys).await?)
        .filter_map(|(id, member)| member.map(|m| (id, m)))
        .collect();
    Ok(convs
        .iter()
        .map(|conv| {
            let member = conv.member_id.and_then(|id| members.get(&id));
            let shown = json!({
                "id": conv.member_id,
                "firstName": member.map_or("Unknown", |m| m.first_name.as_str()),
                "lastName": member.map_or("", |m| m.last_name.as_str()),
                "phone": vault
                    .open(conv.church_id, Field::ConversationPhone, &conv.phone_sealed)
                    .ok(),
            });
            conversation_view(conv, shown)
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
    status: ConversationStatus,
    page: Window,
) -> Result<Listed, TableError> {
    let counters: Option<ChurchCounters> = table.load(&ChurchCounters::key_of(church)).await?;
    let total = counters.map_or(0, |c| {
        c.get(crate::directory::model::Counter::Conversations(
            status.as_str(),
        ))
    });
    let query = Query::partition(keys::conversations_by_status(church, status.as_str()))
        .index(Index::Gsi2)
        .keys_only()
        .descending()
        .after(page.cursor.clone().map(Cursor));
    let skip = if page.cursor.is_some() { 0 } else { page.skip };
    let (found, next) = window(table, query, skip, page.limit).await?;
    let keys = found.iter().map(Key::of).collect::<Result<Vec<_>, _>>()?;
    let convs: Vec<Conversation> = table
        .load_many::<Conversation>(&keys)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let items = views(table, vault, church, &convs).await?;
    Ok(Listed {
        items,
        total: total.max(0) as u64,
        next,
    })
}

/// Which part of a list to read.
pub struct Window {
    pub skip: usize,
    pub limit: usize,
    /// The table cursor of an earlier page's `nextCursor` (already verified).
    pub cursor: Option<String>,
}

/// The church's conversation `id`.
pub async fn get(
    table: &dyn Table,
    church: ChurchId,
    id: ConversationId,
) -> Result<Conversation, ConversationError> {
    table
        .load(&keys::conversation(church, id))
        .await?
        .ok_or(ConversationError::NotFound)
}

/// A page of thread messages as the inbox shows them: media through
/// presigned links, and the preview of each replied-to message.
pub async fn shown_messages(
    table: &dyn Table,
    blobs: &dyn Blobs,
    messages: &[ThreadMessage],
) -> Result<Vec<Value>, ConversationError> {
    let mut shown = Vec::with_capacity(messages.len());
    for message in messages {
        let media = super::media::shown(blobs, message).await?;
        let reply_to = match message.reply_to_id {
            Some(id) => table
                .load::<ThreadMessage>(&keys::thread_message(message.conversation_id, id))
                .await?
                .map_or(Value::Null, |m| m.preview()),
            None => Value::Null,
        };
        shown.push(message.view(&media, reply_to));
    }
    Ok(shown)
}

/// The conversation and one page of its messages, newest first.
pub async fn thread(
    table: &dyn Table,
    blobs: &dyn Blobs,
    vault: &Vault,
    church: ChurchId,
    id: ConversationId,
    skip: usize,
    limit: usize,
) -> Result<(Value, Listed), ConversationError> {
    let conv = get(table, church, id).await?;
    let query = Query::partition(keys::thread(id)).descending();
    let (page, _) = window(table, query, skip, limit).await?;
    let items = shown_messages(table, blobs, &all_from(page)?).await?;
    let shown = views(table, vault, church, std::slice::from_ref(&conv)).await?;
    Ok((
        shown.into_iter().next().unwrap_or_default(),
        Listed {
            items,
            total: conv.message_count.max(0) as u64,
            next: None,
        },
    ))
}

/// The conversation a phone has with this church, if it has one.
pub async fn of_phone(
    table: &dyn Table,
    church: ChurchId,
    phone_hash: &str,
) -> Result<Option<Conversation>, TableError> {
    let claim: Option<PhoneConversation> = table
        .load(&keys::phone_conversation(church, phone_hash))
        .await?;
    match claim {
        Some(claim) => {
            table
                .load(&keys::conversation(church, claim.conversation_id))
                .await
        }
        None => Ok(None),
    }
}

/// One message of the church's conversation, if it is there.
pub async fn message(
    table: &dyn Table,
    church: ChurchId,
    conversation: ConversationId,
    id: MessageId,
) -> Result<ThreadMessage, ConversationError> {
    get(table, church, conversation).await?;
    table
        .load(&keys::thread_message(conversation, id))
        .await?
        .ok_or(ConversationError::MessageNotFound)
}

/// Marks every message of the conversation read.
pub async fn read(
    table: &dyn Table,
    church: ChurchId,
    id: ConversationId,
) -> Result<(), ConversationError> {
    let key = keys::conversation(church, id);
    match table
        .update(&key, Conversation::read(), Some(Cond::Exists))
        .await
    {
        Ok(_) => Ok(()),
        Err(TableError::ConditionFailed) => Err(ConversationError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Moves the conversation to `status`, and one conversation between the
/// status counters.
pub async fn set_status(
    table: &dyn Table,
    church: ChurchId,
    id: ConversationId,
    status: ConversationStatus,
    now: &str,
) -> Result<(), ConversationError> {
    for _ in 0..3 {
        let conv = get(table, church, id).await?;
        let ops = conv.refile(status, &conv.last_message_at, Conversation::changed_at(now));
        match table.transact(ops).await {
            Ok(()) => return Ok(()),
            // A text reopened it meanwhile: read it again.
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(kept_refiling().into())
}

/// The conversation as the inbox shows it, with who it is with.
pub async fn shown(
    table: &dyn Table,
    vault: &Vault,
    church: ChurchId,
    id: ConversationId,
) -> Result<Value, ConversationError> {
    let conv = get(table, church, id).await?;
    let shown = views(table, vault, church, std::slice::from_ref(&conv)).await?;
    Ok(shown.into_iter().next().unwrap_or_default())
}

/// A refile's cancellation: the conversation moved under it.
impl<P: std::fmt::Debug> From<TransactionError<P>> for ConversationError {
    fn from(e: TransactionError<P>) -> Self {
        ConversationError::Table(e.into())
    }
}
