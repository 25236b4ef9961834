//! Outbound texts of a conversation (an admin's reply, a keyword's
//! confirmation): stored `queued` on the thread, then sent by the send
//! consumer like any broadcast recipient — paced on the church's number,
//! claimed with a conditional write, never twice — and moved forward by
//! Telnyx's receipts.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::{activity, conversation_key, message_key};
use crate::domain::{ChurchId, MessageId};
use crate::messaging::fanout::SendJob;
use crate::ports::queue::{OutgoingMessage, Queue};
use crate::ports::table::{Cond, Item, Table, TableError, TxOp, Update};

/// Stores an outbound text on the conversation and queues its send job.
/// `compliance` texts (a STOP confirmation) go out even to an opted-out phone.
pub async fn queue(
    table: &dyn Table,
    send_queue: &dyn Queue,
    church: ChurchId,
    conversation: &str,
    content: &str,
    compliance: bool,
    now: &str,
) -> Result<Item, ConversationError> {
    let id = MessageId::generate();
    let key = message_key(conversation, id);
    let item = json!({
        "pk": key.pk, "sk": key.sk, "type": "conversation_message", "id": id, "conversationId": conversation,
        "churchId": church, "content": content, "direction": "outbound", "memberName": null,
        "deliveryStatus": "queued", "compliance": compliance, "createdAt": now,
    });
    let mut update = Update::default()
        .set("lastMessage", content)
        .set("lastMessageAt", now)
        .set("updatedAt", now);
    if let Some(current) = table.get(&conversation_key(church, conversation)).await? {
        let status = current
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("open");
        update = update
            .set("gsi2sk", activity(now, conversation))
            .set("status", status);
    }
    let ops = vec![
        TxOp::put_new(item.clone()),
        TxOp::Update {
            key: conversation_key(church, conversation),
            update,
            cond: Some(Cond::Exists),
        },
    ];
    match table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCancelled { .. }) => return Err(ConversationError::NotFound),
        Err(e) => return Err(e.into()),
    }
    let job = SendJob {
        church_id: church,
        message_id: id,
        member_ids: vec![],
        conversation_id: Some(conversation.to_owned()),
    };
    let body =
        serde_json::to_string(&job).map_err(|e| TableError::backend("encode a send job", e))?;
    send_queue
        .send_batch(vec![OutgoingMessage::new(body)])
        .await?;
    Ok(item.as_object().cloned().unwrap_or_default())
}
