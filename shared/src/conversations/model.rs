//! Conversations as stored: one per member (or unknown phone) per church,
//! holding only that phone's texts with the church — never relayed to
//! other members.
//!
//! ```text
//! CHURCH#c / CONV#id           Conversation (GSI2: CONVS#c#status, by last activity)
//! CHURCH#c / CONVPHONE#hmac    PhoneConversation: which conversation a phone has
//! CONV#id  / CMSG#ulid         ThreadMessage: its messages, oldest first
//! INBOUND#telnyx-id / INBOUND  InboundApplied: an inbound text already applied
//! CHURCH#c / CONSENT#hmac#time Consent: every keyword a phone texted
//! CHURCH#c / WELCOME#g#m       WelcomeSent: a group's welcome, sent once
//! CHURCH#c / COUNTERS          conversations_<status>: the inbox's totals
//! ```
//!
//! A conversation carries `messageCount`, so a thread's total is read too.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::directory::model::{Counter, Counters};
use crate::domain::{ChurchId, ConversationId, MemberId, MessageId};
use crate::keys;
use crate::messaging::model::Status;
use crate::ports::table::{Cond, Index, Key, TableError, TxOp, Update};
use crate::store::Entity;

/// Where a conversation is filed in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConversationStatus {
    Open,
    Closed,
    Archived,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 3] = [
        ConversationStatus::Open,
        ConversationStatus::Closed,
        ConversationStatus::Archived,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Closed => "closed",
            ConversationStatus::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The church counter of conversations filed here.
    fn counter(self) -> Counter<'static> {
        Counter::Conversations(self.as_str())
    }
}

/// One phone's texts with one church.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: ConversationId,
    pub church_id: ChurchId,
    /// The member the phone belongs to; `None` for a phone nobody added.
    pub member_id: Option<MemberId>,
    #[serde(default)]
    pub unknown: bool,
    pub phone_sealed: String,
    pub phone_hash: String,
    pub status: ConversationStatus,
    #[serde(default)]
    pub unread_count: i64,
    #[serde(default)]
    pub message_count: i64,
    pub last_message: Option<String>,
    pub last_message_at: String,
    pub created_at: String,
    pub updated_at: String,
    /// The phone's consent at this church (`false` once it texted STOP),
    /// for a phone that is not a member too.
    #[serde(default = "consenting")]
    pub opt_in_sms: bool,
}

fn consenting() -> bool {
    true
}

impl Entity for Conversation {
    const KIND: Option<&'static str> = Some("conversation");
    fn key(&self) -> Key {
        keys::conversation(self.church_id, self.id)
    }
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        vec![(
            Index::Gsi2,
            keys::conversations_by_status(self.church_id, self.status.as_str()),
            keys::conversation_activity(&self.last_message_at, self.id),
        )]
    }
}

impl Conversation {
    /// The phone texted STOP (and not START since) at this church.
    pub fn texted_stop(&self) -> bool {
        !self.opt_in_sms
    }

    /// The conversation is now with `member` (`None`: an unknown phone again).
    pub fn link(church: ChurchId, id: ConversationId, member: Option<MemberId>, now: &str) -> TxOp {
        TxOp::Update {
            key: keys::conversation(church, id),
            update: Update::default()
                .set("memberId", json!(member))
                .set("unknown", member.is_none())
                .set("updatedAt", now),
            cond: Some(Cond::Exists),
        }
    }

    /// A change of the conversation itself, at `now`.
    pub fn changed_at(now: &str) -> Update {
        Update::default().set("updatedAt", now)
    }

    /// The carrier reported the phone's STOP (Telnyx 40300).
    pub fn carrier_opt_out() -> Update {
        Update::default()
            .set("optInSms", false)
            .set("optOutSource", "carrier")
    }

    /// Marks every message read.
    pub fn read() -> Update {
        Update::default().set("unreadCount", 0)
    }

    /// The phone's consent at this church changed (a keyword, or the carrier).
    pub fn consent(update: Update, opt_in: bool) -> Update {
        update.set("optInSms", opt_in)
    }

    /// A new message on the thread: counted, shown as the last, and the
    /// conversation moved to the top of its list.
    pub fn appended(text: &str, at: &str, messages: i64, unread: i64) -> Update {
        let mut update = Update::default()
            .add("messageCount", messages)
            .set("lastMessage", text)
            .set("lastMessageAt", at)
            .set("updatedAt", at);
        if unread != 0 {
            update = update.add("unreadCount", unread);
        }
        update
    }

    /// Files the conversation under `to` with `update`'s other changes,
    /// if it is still under the status it was read with: the conversation's
    /// write, then the counters' move when the status changes. A caller
    /// whose condition fails reads the conversation again.
    pub fn refile(&self, to: ConversationStatus, last_activity: &str, update: Update) -> Vec<TxOp> {
        let mut ops = vec![TxOp::Update {
            key: self.key(),
            update: update
                .set("status", to.as_str())
                .set(
                    "gsi2pk",
                    keys::conversations_by_status(self.church_id, to.as_str()),
                )
                .set(
                    "gsi2sk",
                    keys::conversation_activity(last_activity, self.id),
                ),
            cond: Some(Cond::And(vec![
                Cond::Exists,
                Cond::eq("status", self.status.as_str()),
            ])),
        }];
        if self.status != to {
            ops.push(count_move(self.church_id, Some(self.status), to));
        }
        ops
    }

    /// The update moving the conversation to the top of its list, for an
    /// outbound text (its status unchanged).
    pub fn touched(id: ConversationId, text: &str, at: &str) -> Update {
        Self::appended(text, at, 1, 0).set("gsi2sk", keys::conversation_activity(at, id))
    }
}

/// Moves one conversation between status counters (`from` is `None` for a new one).
pub fn count_move(
    church: ChurchId,
    from: Option<ConversationStatus>,
    to: ConversationStatus,
) -> TxOp {
    let mut counters = Counters::default().add(to.counter(), 1);
    if let Some(from) = from {
        counters = counters.add(from.counter(), -1);
    }
    counters.op(church)
}

/// The error when a conversation's status kept changing under a refile.
pub fn kept_refiling() -> TableError {
    TableError::Invalid("the conversation kept changing status".into())
}

/// Which conversation a phone has with a church (put once with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneConversation {
    #[serde(skip)]
    key: Key,
    pub conversation_id: ConversationId,
}

crate::store::keyed_by_its_key!(PhoneConversation);

impl PhoneConversation {
    pub fn new(church: ChurchId, phone_hash: &str, conversation_id: ConversationId) -> Self {
        Self {
            key: keys::phone_conversation(church, phone_hash),
            conversation_id,
        }
    }
}

/// Which way a thread message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// An inbound text is `received`; an outbound one moves through the
/// recipient state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Delivery {
    Outbound(Status),
    Inbound(Received),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Received {
    Received,
}

impl Delivery {
    pub fn outbound(self) -> Option<Status> {
        match self {
            Delivery::Outbound(s) => Some(s),
            Delivery::Inbound(_) => None,
        }
    }
}

/// Whether an inbound message's files are still being copied into the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaState {
    Copying,
    Done,
}

/// One file of a thread message, in the state its copy reached:
///
/// ```text
/// pending  an inbound file still at Telnyx's link (which expires)
/// stored   in the bucket
/// refused  not a kind the inbox takes, or over the size cap
/// expired  Telnyx's link was gone before the copy
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum MediaFile {
    Pending {
        url: String,
        /// As Telnyx declared them (either may be missing).
        #[serde(default, deserialize_with = "lenient::text")]
        content_type: Option<String>,
        #[serde(default, deserialize_with = "lenient::size")]
        size: Option<u64>,
        name: String,
    },
    Stored {
        key: String,
        content_type: String,
        size: u64,
        name: String,
    },
    Refused {
        /// `type`, `size` or `url`.
        reason: String,
        #[serde(default)]
        name: Option<String>,
    },
    Expired {
        #[serde(default)]
        name: Option<String>,
    },
}

/// Telnyx's own values, kept as it sent them: a text or a number may come
/// either way, and anything else reads as absent rather than losing the file.
pub(crate) mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Option::<Value>::deserialize(d)? {
            Some(Value::String(s)) => Some(s),
            _ => None,
        })
    }

    pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(match Option::<Value>::deserialize(d)? {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        })
    }
}

/// One text of a conversation, either way. Its files (`media`) are the
/// entries `media.rs` owns; its reactions are the list `reactions.rs` owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub church_id: ChurchId,
    pub content: String,
    pub direction: Direction,
    pub member_name: Option<String>,
    pub delivery_status: Delivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// A compliance text (a STOP confirmation) reaches an opted-out phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<bool>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_state: Option<MediaState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactions_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
}

impl Entity for ThreadMessage {
    const KIND: Option<&'static str> = Some("conversation_message");
    fn key(&self) -> Key {
        keys::thread_message(self.conversation_id, self.id)
    }
}

impl ThreadMessage {
    /// The update moving an outbound text to `to`, if it is still `from`.
    pub fn moved(from: Status, to: Status, now: &str) -> (Update, Cond) {
        (
            Update::default()
                .set("deliveryStatus", to.as_str())
                .set("updatedAt", now),
            Cond::eq("deliveryStatus", from.as_str()),
        )
    }

    /// Its files after a copy, and whether any is still to be copied.
    pub fn media_copied(media: &[MediaFile], state: MediaState) -> Result<Update, TableError> {
        let encode = |e: serde_json::Error| {
            TableError::Invalid(format!("a message's files do not encode: {e}"))
        };
        Ok(Update::default()
            .set("media", serde_json::to_value(media).map_err(encode)?)
            .set("mediaState", serde_json::to_value(state).map_err(encode)?))
    }

    /// Its reactions, if nobody changed them since `version` was read.
    pub fn react(reactions: Vec<Value>, version: Option<i64>) -> (Update, Cond) {
        let version = version.unwrap_or(0);
        let unchanged = if version == 0 {
            Cond::AttrNotExists("reactionsVersion".into())
        } else {
            Cond::eq("reactionsVersion", version)
        };
        (
            Update::default()
                .set("reactions", Value::Array(reactions))
                .set("reactionsVersion", version + 1),
            Cond::And(vec![Cond::Exists, unchanged]),
        )
    }

    /// An outbound message's state in the frontend's words (`pending`,
    /// `delivered`, `failed`); an inbound one has none. The precise state
    /// (`queued` … `opted_out`, `uncertain`) is *(ext)* `deliveryState`.
    fn frontend_status(&self) -> Value {
        match self.delivery_status.outbound() {
            Some(Status::Delivered) => json!("delivered"),
            // A thread message is never cancelled; were it, it was not sent.
            Some(Status::Failed | Status::OptedOut | Status::Cancelled) => json!("failed"),
            Some(Status::Queued | Status::Sending | Status::Sent | Status::Uncertain) => {
                json!("pending")
            }
            None => Value::Null,
        }
    }

    /// As the thread shows it. `media` is what [`super::media::shown`]
    /// answers (the first file fills the frontend's single `mediaUrl`;
    /// *(ext)* `media` lists them all); `reply_to` is the preview of the
    /// message it answers, or null.
    pub fn view(&self, media: &[Value], reply_to: Value) -> Value {
        let first = |attr: &str| {
            media
                .first()
                .map(|m| m[attr].clone())
                .unwrap_or(Value::Null)
        };
        json!({
            "id": self.id,
            "conversationId": self.conversation_id,
            "content": self.content,
            "direction": self.direction,
            "memberName": self.member_name,
            "deliveryStatus": self.frontend_status(),
            "deliveryState": self.delivery_status,
            "mediaUrl": first("url"),
            "mediaType": first("type"),
            "mediaName": first("name"),
            "mediaSizeBytes": first("sizeBytes"),
            "media": media,
            "channel": if media.is_empty() { "sms" } else { "mms" },
            "replyToId": self.reply_to_id,
            "replyTo": reply_to,
            "reactions": self.reactions,
            "createdAt": self.created_at,
        })
    }

    /// The preview of a replied-to message, as `replyTo` shows it.
    pub fn preview(&self) -> Value {
        json!({
            "id": self.id,
            "content": self.content,
            "direction": self.direction,
        })
    }
}

/// An inbound text already applied (Telnyx delivers at least once), with
/// the follow-ups a retry re-queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundApplied {
    #[serde(skip)]
    key: Key,
    pub ttl: i64,
    pub church_id: ChurchId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    #[serde(default)]
    pub has_media: bool,
    pub confirmation_id: Option<MessageId>,
}

crate::store::keyed_by_its_key!(InboundApplied);

impl InboundApplied {
    pub fn new(
        carrier_id: &str,
        ttl: i64,
        conversation: &Conversation,
        message_id: MessageId,
        has_media: bool,
        confirmation_id: Option<MessageId>,
    ) -> Self {
        Self {
            key: keys::inbound(carrier_id),
            ttl,
            church_id: conversation.church_id,
            conversation_id: conversation.id,
            message_id,
            has_media,
            confirmation_id,
        }
    }
}

/// A keyword a phone texted (STOP, START, HELP): the proof of consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    #[serde(skip)]
    key: Key,
    pub action: String,
    pub keyword: String,
    pub source: String,
    pub at: String,
    pub carrier_id: String,
    pub member_id: Option<MemberId>,
    pub conversation_id: ConversationId,
}

crate::store::keyed_by_its_key!(Consent, Some("consent"));

impl Consent {
    /// `action` (`opt_out`, `opt_in`, `help`) texted as `keyword` by the phone.
    #[allow(clippy::too_many_arguments)]
    pub fn texted(
        church: ChurchId,
        phone_hash: &str,
        message: MessageId,
        action: &str,
        keyword: &str,
        at: &str,
        carrier_id: &str,
        member_id: Option<MemberId>,
        conversation_id: ConversationId,
    ) -> Self {
        Self {
            key: keys::consent(church, phone_hash, at, message),
            action: action.to_owned(),
            keyword: keyword.to_owned(),
            source: "sms".into(),
            at: at.to_owned(),
            carrier_id: carrier_id.to_owned(),
            member_id,
            conversation_id,
        }
    }
}

/// A group's welcome sent to a member: put once, so it is sent once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WelcomeSent {
    #[serde(skip)]
    key: Key,
    pub at: String,
}

crate::store::keyed_by_its_key!(WelcomeSent);

impl WelcomeSent {
    pub fn new(
        church: ChurchId,
        group: crate::domain::GroupId,
        member: MemberId,
        at: &str,
    ) -> Self {
        Self {
            key: keys::welcome_sent(church, group, member),
            at: at.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_stored_in_the_shape_the_thread_always_had() {
        let stored = MediaFile::Stored {
            key: "churches/c/conversations/v/m-0".into(),
            content_type: "image/png".into(),
            size: 12,
            name: "photo.png".into(),
        };
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            json!({"state": "stored", "key": "churches/c/conversations/v/m-0",
                   "contentType": "image/png", "size": 12, "name": "photo.png"})
        );
        let refused: MediaFile =
            serde_json::from_value(json!({"state": "refused", "reason": "size", "name": null}))
                .unwrap();
        assert_eq!(
            refused,
            MediaFile::Refused {
                reason: "size".into(),
                name: None
            }
        );
    }

    #[test]
    fn a_pending_file_keeps_what_telnyx_declared_however_it_was_typed() {
        let pending: MediaFile = serde_json::from_value(json!({
            "state": "pending", "url": "https://media.telnyx.com/a.jpg",
            "contentType": 42, "size": "2048", "name": "a.jpg",
        }))
        .unwrap();
        assert_eq!(
            pending,
            MediaFile::Pending {
                url: "https://media.telnyx.com/a.jpg".into(),
                content_type: None,
                size: Some(2048),
                name: "a.jpg".into(),
            }
        );
    }

    #[test]
    fn a_thread_message_reads_its_delivery_either_way() {
        let inbound: Delivery = serde_json::from_value(json!("received")).unwrap();
        assert_eq!(inbound.outbound(), None);
        let outbound: Delivery = serde_json::from_value(json!("opted_out")).unwrap();
        assert_eq!(outbound.outbound(), Some(Status::OptedOut));
        assert!(serde_json::from_value::<Delivery>(json!("lost")).is_err());
    }
}
