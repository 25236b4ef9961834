//! Outbound texts of a conversation (an admin's reply, a keyword's
//! confirmation): stored `queued` on the thread, then sent by the send
//! consumer like any broadcast recipient — paced on the church's number,
//! claimed with a conditional write, never twice — and moved forward by
//! Telnyx's receipts.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{activity, conversation_key, message_key};
use crate::domain::{ChurchId, MessageId};
use crate::messaging::jobs::ConversationReply;
use crate::ports::queue::{OutgoingMessage, Queue};
use crate::ports::table::{Cond, Item, Table, TableError, TxOp, Update};

/// An outbound text before it is stored: its thread item and its send job.
pub struct Outbound {
    pub item: Value,
    pub job: ConversationReply,
}

impl Outbound {
    /// `compliance` texts (a STOP confirmation) go out even to an opted-out
    /// phone; `media` is the message's `media` list (files already stored).
    pub fn new(
        church: ChurchId,
        conversation: &str,
        id: MessageId,
        content: &str,
        compliance: bool,
        media: Vec<Value>,
        now: &str,
    ) -> Self {
        let key = message_key(conversation, id);
        let mut item = json!({
            "pk": key.pk, "sk": key.sk, "type": "conversation_message", "id": id, "conversationId": conversation,
            "churchId": church, "content": content, "direction": "outbound", "memberName": null,
            "deliveryStatus": "queued", "compliance": compliance, "createdAt": now,
        });
        if !media.is_empty() {
            item["media"] = Value::Array(media);
        }
        Self {
            item,
            job: job(church, conversation, id),
        }
    }

    /// The write that stores it (in the caller's transaction).
    pub fn put(&self) -> TxOp {
        TxOp::put_new(self.item.clone())
    }

    pub fn into_item(self) -> Item {
        self.item.as_object().cloned().unwrap_or_default()
    }
}

/// The send job of a conversation's outbound text `id`.
pub fn job(church: ChurchId, conversation: &str, id: MessageId) -> ConversationReply {
    ConversationReply {
        church_id: church,
        conversation_id: conversation.to_owned(),
        message_id: id,
    }
}

/// Queues a stored outbound text's send job.
pub async fn enqueue(
    send_queue: &dyn Queue,
    job: &ConversationReply,
) -> Result<(), ConversationError> {
    let body =
        serde_json::to_string(job).map_err(|e| TableError::backend("encode a send job", e))?;
    send_queue
        .send_batch(vec![OutgoingMessage::new(body)])
        .await?;
    Ok(())
}

/// Stores an outbound text on the conversation (moving the conversation to
/// the top of its list) and queues its send job.
pub async fn queue(
    table: &dyn Table,
    send_queue: &dyn Queue,
    outbound: Outbound,
) -> Result<Item, ConversationError> {
    let church = outbound.job.church_id;
    let conversation = outbound.job.conversation_id.clone();
    let content = outbound.item["content"].as_str().unwrap_or_default();
    let now = outbound.item["createdAt"].as_str().unwrap_or_default();
    let update = Update::default()
        .add("messageCount", 1)
        .set("lastMessage", content)
        .set("lastMessageAt", now)
        .set("updatedAt", now)
        .set("gsi2sk", activity(now, &conversation));
    let ops = vec![
        outbound.put(),
        TxOp::Update {
            key: conversation_key(church, &conversation),
            update,
            cond: Some(Cond::Exists),
        },
    ];
    match table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCancelled { .. }) => return Err(ConversationError::NotFound),
        Err(e) => return Err(e.into()),
    }
    enqueue(send_queue, &outbound.job).await?;
    Ok(outbound.into_item())
}
