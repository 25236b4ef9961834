//! What the broadcast pipeline's queues carry.
//!
//! The fan-out queue carries [`FanoutJob`]s: a page of a broadcast's
//! audience to expand. The send queue carries [`SendJob`]s, of two kinds: a
//! [`RecipientBatch`] of a broadcast, or the [`ConversationReply`] of one
//! thread message.
//!
//! The send queue's wire format is older than the two kinds: one JSON
//! object whose `conversationId` marks a reply. Messages already queued are
//! in it, and during a deploy the previous release's consumers read what
//! this one writes, so both kinds keep writing and reading exactly that
//! shape ([`SendWire`]).

use serde::{Deserialize, Serialize};

use crate::domain::{BranchId, ChurchId, ConversationId, GroupId, MemberId, MessageId};

/// Who a broadcast goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Audience {
    All,
    Branch { id: BranchId },
    Group { id: GroupId },
    Members { ids: Vec<MemberId> },
}

/// A page of fan-out work: which audience part, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutJob {
    pub church_id: ChurchId,
    pub message_id: MessageId,
    pub audiences: Vec<Audience>,
    pub index: usize,
    pub cursor: Option<String>,
}

/// Recipients of a broadcast to send to (one send-queue message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SendWire", into = "SendWire")]
pub struct RecipientBatch {
    pub church_id: ChurchId,
    pub message_id: MessageId,
    pub member_ids: Vec<MemberId>,
}

/// A conversation's outbound text (an admin's reply, a keyword's
/// confirmation): `message_id` is the thread message's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SendWire", into = "SendWire")]
pub struct ConversationReply {
    pub church_id: ChurchId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

/// A job of the send queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SendWire", into = "SendWire")]
pub enum SendJob {
    Recipients(RecipientBatch),
    Reply(ConversationReply),
}

impl SendJob {
    pub fn church_id(&self) -> ChurchId {
        match self {
            SendJob::Recipients(batch) => batch.church_id,
            SendJob::Reply(reply) => reply.church_id,
        }
    }

    /// The broadcast's message, or the thread message of a reply.
    pub fn message_id(&self) -> MessageId {
        match self {
            SendJob::Recipients(batch) => batch.message_id,
            SendJob::Reply(reply) => reply.message_id,
        }
    }
}

/// The send queue's wire format (see the module's comment). `memberIds` is
/// written even for a reply (empty): the previous release requires it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendWire {
    church_id: ChurchId,
    message_id: MessageId,
    member_ids: Vec<MemberId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation_id: Option<ConversationId>,
}

impl From<SendWire> for SendJob {
    fn from(wire: SendWire) -> Self {
        match wire.conversation_id {
            Some(conversation_id) => SendJob::Reply(ConversationReply {
                church_id: wire.church_id,
                conversation_id,
                message_id: wire.message_id,
            }),
            None => SendJob::Recipients(RecipientBatch {
                church_id: wire.church_id,
                message_id: wire.message_id,
                member_ids: wire.member_ids,
            }),
        }
    }
}

impl From<SendJob> for SendWire {
    fn from(job: SendJob) -> Self {
        match job {
            SendJob::Recipients(batch) => batch.into(),
            SendJob::Reply(reply) => reply.into(),
        }
    }
}

impl From<RecipientBatch> for SendWire {
    fn from(batch: RecipientBatch) -> Self {
        Self {
            church_id: batch.church_id,
            message_id: batch.message_id,
            member_ids: batch.member_ids,
            conversation_id: None,
        }
    }
}

impl From<ConversationReply> for SendWire {
    fn from(reply: ConversationReply) -> Self {
        Self {
            church_id: reply.church_id,
            message_id: reply.message_id,
            member_ids: Vec::new(),
            conversation_id: Some(reply.conversation_id),
        }
    }
}

/// A send-queue message read as the other kind of job than asked for.
#[derive(Debug, thiserror::Error)]
#[error("this send job is a {0}")]
pub struct OtherKind(&'static str);

impl TryFrom<SendWire> for RecipientBatch {
    type Error = OtherKind;
    fn try_from(wire: SendWire) -> Result<Self, OtherKind> {
        match SendJob::from(wire) {
            SendJob::Recipients(batch) => Ok(batch),
            SendJob::Reply(_) => Err(OtherKind("conversation reply")),
        }
    }
}

impl TryFrom<SendWire> for ConversationReply {
    type Error = OtherKind;
    fn try_from(wire: SendWire) -> Result<Self, OtherKind> {
        match SendJob::from(wire) {
            SendJob::Reply(reply) => Ok(reply),
            SendJob::Recipients(_) => Err(OtherKind("recipient batch")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const CHURCH: &str = "01J9Z8Q4M6X2K7R3T5V8W1Y0AB";
    const MESSAGE: &str = "01J9Z8Q4M6X2K7R3T5V8W1Y0AC";
    /// Conversations were always ULIDs (made as message ids before `ConversationId`).
    const CONVERSATION: &str = "01J9Z8Q4M6X2K7R3T5V8W1Y0AD";
    const MEMBER: &str = "01J9Z8Q4M6X2K7R3T5V8W1Y0AD";

    fn parse(body: &str) -> SendJob {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn a_queued_broadcast_job_of_the_old_shape_is_a_recipient_batch() {
        // As the fan-out wrote it before jobs were an enum.
        let body = format!(
            r#"{{"churchId":"{CHURCH}","messageId":"{MESSAGE}","memberIds":["{MEMBER}"]}}"#
        );
        let SendJob::Recipients(batch) = parse(&body) else {
            panic!("a broadcast job read as a reply");
        };
        assert_eq!(batch.church_id.to_string(), CHURCH);
        assert_eq!(batch.message_id.to_string(), MESSAGE);
        assert_eq!(
            batch
                .member_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [MEMBER]
        );
    }

    #[test]
    fn a_queued_reply_job_of_the_old_shape_is_a_conversation_reply() {
        // As conversations/replies wrote it: no recipients, a conversation.
        let body = format!(
            r#"{{"churchId":"{CHURCH}","messageId":"{MESSAGE}","memberIds":[],"conversationId":"{CONVERSATION}"}}"#
        );
        let SendJob::Reply(reply) = parse(&body) else {
            panic!("a reply job read as a broadcast");
        };
        assert_eq!(reply.church_id.to_string(), CHURCH);
        assert_eq!(reply.message_id.to_string(), MESSAGE);
        assert_eq!(reply.conversation_id.to_string(), CONVERSATION);
    }

    #[test]
    fn both_kinds_write_the_shape_the_previous_release_reads() {
        let batch = RecipientBatch {
            church_id: ChurchId::parse(CHURCH).unwrap(),
            message_id: MessageId::parse(MESSAGE).unwrap(),
            member_ids: vec![MemberId::parse(MEMBER).unwrap()],
        };
        let reply = ConversationReply {
            church_id: batch.church_id,
            conversation_id: ConversationId::parse(CONVERSATION).unwrap(),
            message_id: batch.message_id,
        };
        let written = |job: &SendJob| serde_json::to_value(job).unwrap();
        assert_eq!(
            written(&SendJob::Recipients(batch.clone())),
            json!({ "churchId": CHURCH, "messageId": MESSAGE, "memberIds": [MEMBER] })
        );
        assert_eq!(
            written(&SendJob::Reply(reply.clone())),
            json!({ "churchId": CHURCH, "messageId": MESSAGE, "memberIds": [], "conversationId": CONVERSATION })
        );
        // Each kind alone writes the same as inside the enum, and reads back.
        assert_eq!(
            serde_json::to_value(&batch).unwrap(),
            written(&SendJob::Recipients(batch.clone()))
        );
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            written(&SendJob::Reply(reply.clone()))
        );
        let round = |v: Value| serde_json::from_value::<SendJob>(v).unwrap();
        assert_eq!(
            round(written(&SendJob::Reply(reply.clone()))),
            SendJob::Reply(reply.clone())
        );
        assert_eq!(
            round(written(&SendJob::Recipients(batch.clone()))),
            SendJob::Recipients(batch)
        );
    }

    #[test]
    fn a_reply_is_never_read_as_a_recipient_batch_nor_the_reverse() {
        let reply = format!(
            r#"{{"churchId":"{CHURCH}","messageId":"{MESSAGE}","memberIds":[],"conversationId":"{CONVERSATION}"}}"#
        );
        let batch = format!(r#"{{"churchId":"{CHURCH}","messageId":"{MESSAGE}","memberIds":[]}}"#);
        assert!(serde_json::from_str::<RecipientBatch>(&reply).is_err());
        assert!(serde_json::from_str::<ConversationReply>(&batch).is_err());
    }

    #[test]
    fn a_job_without_its_ids_is_unreadable() {
        assert!(serde_json::from_str::<SendJob>(r#"{"memberIds":[]}"#).is_err());
        assert!(serde_json::from_str::<SendJob>("not json").is_err());
    }
}
