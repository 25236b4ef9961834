//! Conversations as stored: one per member (or unknown phone) per church,
//! holding only that phone's texts with the church — never relayed to
//! other members.
//!
//! ```text
//! CHURCH#c / CONV#id           the conversation (GSI2: CONVS#c#status, by last activity)
//! CHURCH#c / CONVPHONE#hmac    which conversation a phone has (created once)
//! CONV#id  / CMSG#ulid         its messages, oldest first
//! INBOUND#telnyx-id / INBOUND  an inbound text already applied (Telnyx retries)
//! CHURCH#c / CONSENT#hmac#time every keyword a phone texted: proof of consent
//! CHURCH#c / COUNTERS          conversations_<status>: the inbox's totals
//! ```
//!
//! A conversation carries `messageCount`, so a thread's total is read too.

use serde_json::{Value, json};

use crate::domain::{ChurchId, MessageId};
use crate::keys;
use crate::messaging::model::Status;
use crate::ports::table::{Item, Key};

pub const STATUSES: [&str; 3] = ["open", "closed", "archived"];

/// The church counter holding how many conversations are in `status`, so
/// the inbox's `total` is read, never counted.
pub fn status_counter(status: &str) -> String {
    format!("conversations_{status}")
}

/// Moves one conversation between status counters (`from` is `None` for a new one).
pub fn count_move(church: ChurchId, from: Option<&str>, to: &str) -> crate::ports::table::TxOp {
    let mut update = crate::ports::table::Update::default().add(&status_counter(to), 1);
    if let Some(from) = from {
        update = update.add(&status_counter(from), -1);
    }
    crate::ports::table::TxOp::Update {
        key: keys::church_counters(church),
        update,
        cond: None,
    }
}

/// Files conversation `id` under `to`, with `update`'s other changes, if
/// it is still under `was` (the status just read): the conversation's
/// write first, then the counters' move when the status changes. A caller
/// whose condition fails reads the conversation again.
pub fn refile(
    church: ChurchId,
    id: &str,
    was: &str,
    to: &str,
    last_activity: &str,
    update: crate::ports::table::Update,
) -> Vec<crate::ports::table::TxOp> {
    use crate::ports::table::{Cond, TxOp};
    let mut ops = vec![TxOp::Update {
        key: conversation_key(church, id),
        update: update
            .set("status", to)
            .set("gsi2pk", by_status(church, to))
            .set("gsi2sk", activity(last_activity, id)),
        cond: Some(Cond::And(vec![Cond::Exists, Cond::eq("status", was)])),
    }];
    if was != to {
        ops.push(count_move(church, Some(was), to));
    }
    ops
}

/// The error when a conversation's status kept changing under a refile.
pub fn kept_refiling() -> crate::ports::table::TableError {
    crate::ports::table::TableError::Invalid("the conversation kept changing status".into())
}

pub fn conversation_key(church: ChurchId, id: &str) -> Key {
    Key::new(keys::church(church), format!("CONV#{id}"))
}

pub fn phone_conversation_key(church: ChurchId, phone_hash: &str) -> Key {
    Key::new(keys::church(church), format!("CONVPHONE#{phone_hash}"))
}

pub fn messages_partition(conversation: &str) -> String {
    format!("CONV#{conversation}")
}

pub fn message_key(conversation: &str, message: MessageId) -> Key {
    Key::new(messages_partition(conversation), format!("CMSG#{message}"))
}

pub fn inbound_key(carrier_id: &str) -> Key {
    Key::new(format!("INBOUND#{carrier_id}"), "INBOUND")
}

pub fn consent_key(church: ChurchId, phone_hash: &str, at: &str, id: MessageId) -> Key {
    Key::new(
        keys::church(church),
        format!("CONSENT#{phone_hash}#{at}#{id}"),
    )
}

/// GSI2 partition listing a church's conversations in one status.
pub fn by_status(church: ChurchId, status: &str) -> String {
    format!("CONVS#{church}#{status}")
}

/// GSI2 sort key: newest activity last (lists read it backwards).
pub fn activity(at: &str, id: &str) -> String {
    format!("{at}#{id}")
}

fn text(item: &Item, attr: &str) -> Value {
    item.get(attr).cloned().unwrap_or(Value::Null)
}

/// A conversation as the inbox shows it; `phone` is already opened.
pub fn conversation_view(item: &Item, member: Value) -> Value {
    json!({
        "id": text(item, "id"),
        "memberId": text(item, "memberId"),
        "member": member,
        "status": text(item, "status"),
        "unreadCount": item.get("unreadCount").and_then(Value::as_i64).unwrap_or(0),
        "lastMessage": text(item, "lastMessage"),
        "lastMessageAt": text(item, "lastMessageAt"),
        "createdAt": text(item, "createdAt"),
        "updatedAt": text(item, "updatedAt"),
    })
}

/// A conversation message as the thread shows it. `media` is what
/// [`super::media::shown`] answers (the first file fills the frontend's
/// single `mediaUrl`; *(ext)* `media` lists them all); `reply_to` is the
/// preview of the message it answers, or null.
pub fn message_view(item: &Item, media: &[Value], reply_to: Value) -> Value {
    let first = |attr: &str| {
        media
            .first()
            .map(|m| m[attr].clone())
            .unwrap_or(Value::Null)
    };
    json!({
        "id": text(item, "id"),
        "conversationId": text(item, "conversationId"),
        "content": text(item, "content"),
        "direction": text(item, "direction"),
        "memberName": text(item, "memberName"),
        "deliveryStatus": delivery_status(item),
        "deliveryState": text(item, "deliveryStatus"),
        "mediaUrl": first("url"),
        "mediaType": first("type"),
        "mediaName": first("name"),
        "mediaSizeBytes": first("sizeBytes"),
        "media": media,
        "channel": if media.is_empty() { "sms" } else { "mms" },
        "replyToId": text(item, "replyToId"),
        "replyTo": reply_to,
        "reactions": item.get("reactions").cloned().unwrap_or(json!([])),
        "createdAt": text(item, "createdAt"),
    })
}

/// An outbound message's state in the frontend's words (`pending`,
/// `delivered`, `failed`); an inbound one has none. The precise state
/// (`queued` … `opted_out`, `uncertain`) is *(ext)* `deliveryState`.
fn delivery_status(item: &Item) -> Value {
    let state = item.get("deliveryStatus").and_then(Value::as_str);
    match state.and_then(Status::parse) {
        Some(Status::Delivered) => json!("delivered"),
        Some(Status::Failed | Status::OptedOut) => json!("failed"),
        Some(Status::Queued | Status::Sending | Status::Sent | Status::Uncertain) => {
            json!("pending")
        }
        None => Value::Null,
    }
}

/// The preview of a replied-to message, as `replyTo` shows it.
pub fn reply_preview(item: &Item) -> Value {
    json!({
        "id": text(item, "id"),
        "content": text(item, "content"),
        "direction": text(item, "direction"),
    })
}
