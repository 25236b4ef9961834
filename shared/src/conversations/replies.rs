//! Outbound texts of a conversation (an admin's reply, a keyword's
//! confirmation, a welcome): stored `queued` on the thread, then sent by
//! the send consumer like any broadcast recipient — paced on the church's
//! number, claimed with a conditional write, never twice — and moved
//! forward by Telnyx's receipts.

use super::ConversationError;
use super::model::{Conversation, Delivery, Direction, MediaFile, ThreadMessage};
use crate::domain::{ChurchId, ConversationId, MessageId};
use crate::keys;
use crate::messaging::jobs::ConversationReply;
use crate::messaging::model::Status;
use crate::ports::blobs::{Blob, Blobs};
use crate::ports::queue::{OutgoingMessage, Queue};
use crate::ports::table::{Cond, Table, TableError, TxOp};

/// An outbound text before it is stored: its thread message and its send job.
pub struct Outbound {
    pub message: ThreadMessage,
    pub job: ConversationReply,
}

impl Outbound {
    /// `compliance` texts (a STOP confirmation) go out even to an opted-out
    /// phone; `media` is the message's `media` list (files already stored).
    pub fn new(
        church: ChurchId,
        conversation: ConversationId,
        id: MessageId,
        content: &str,
        compliance: bool,
        media: Vec<MediaFile>,
        now: &str,
    ) -> Self {
        let message = ThreadMessage {
            id,
            conversation_id: conversation,
            church_id: church,
            content: content.to_owned(),
            direction: Direction::Outbound,
            member_name: None,
            delivery_status: Delivery::Outbound(Status::Queued),
            carrier_id: None,
            compliance: Some(compliance),
            created_at: now.to_owned(),
            media,
            media_state: None,
            reply_to_id: None,
            reactions: Vec::new(),
            reactions_version: None,
            claimed_at: None,
        };
        Self {
            message,
            job: job(church, conversation, id),
        }
    }

    /// The write that stores it (in the caller's transaction).
    pub fn put(&self) -> Result<TxOp, TableError> {
        TxOp::create(&self.message)
    }
}

/// The send job of a conversation's outbound text `id`.
pub fn job(church: ChurchId, conversation: ConversationId, id: MessageId) -> ConversationReply {
    ConversationReply {
        church_id: church,
        conversation_id: conversation,
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
) -> Result<ThreadMessage, ConversationError> {
    queue_if(table, send_queue, outbound, Cond::Exists).await
}

/// The conversation exists and its phone has not texted STOP (or been
/// reported opted out by the carrier) since its last START.
fn consenting() -> Cond {
    Cond::And(vec![
        Cond::Exists,
        Cond::Or(vec![
            Cond::AttrNotExists("optInSms".into()),
            Cond::eq("optInSms", true),
        ]),
    ])
}

/// An admin's text: queued only while the phone consents, in the same
/// write that stores it. A refusal reads the conversation to say why.
async fn queue_consented(
    table: &dyn Table,
    send_queue: &dyn Queue,
    outbound: Outbound,
) -> Result<ThreadMessage, ConversationError> {
    let (church, conversation) = (outbound.message.church_id, outbound.message.conversation_id);
    match queue_if(table, send_queue, outbound, consenting()).await {
        Err(ConversationError::NotFound) => {
            let found = super::inbox::get(table, church, conversation).await?;
            Err(if found.texted_stop() {
                ConversationError::OptedOut
            } else {
                ConversationError::NotFound
            })
        }
        other => other,
    }
}

async fn queue_if(
    table: &dyn Table,
    send_queue: &dyn Queue,
    outbound: Outbound,
    cond: Cond,
) -> Result<ThreadMessage, ConversationError> {
    let message = &outbound.message;
    let ops = vec![
        outbound.put()?,
        TxOp::Update {
            key: keys::conversation(message.church_id, message.conversation_id),
            update: Conversation::touched(
                message.conversation_id,
                &message.content,
                &message.created_at,
            ),
            cond: Some(cond),
        },
    ];
    match table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCancelled { .. }) => return Err(ConversationError::NotFound),
        Err(e) => return Err(e.into()),
    }
    enqueue(send_queue, &outbound.job).await?;
    Ok(outbound.message)
}

/// The conversation an admin replies in.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTarget {
    pub church: ChurchId,
    pub conversation: ConversationId,
}

/// An admin's reply, answering `reply_to` (a message of this conversation)
/// if given.
pub async fn reply(
    table: &dyn Table,
    send_queue: &dyn Queue,
    ReplyTarget {
        church,
        conversation,
    }: ReplyTarget,
    content: &str,
    reply_to: Option<MessageId>,
    now: &str,
) -> Result<ThreadMessage, ConversationError> {
    // Another church's (or no) conversation is a 404 from this check or
    // from the store's conditional write: nothing to read first.
    if let Some(id) = reply_to {
        super::inbox::message(table, church, conversation, id).await?;
    }
    let mut outbound = Outbound::new(
        church,
        conversation,
        MessageId::generate(),
        content,
        false,
        vec![],
        now,
    );
    outbound.message.reply_to_id = reply_to;
    queue_consented(table, send_queue, outbound).await
}

/// A file an admin sends in a reply, already checked.
pub struct ReplyFile {
    pub blob: Blob,
    pub name: String,
}

/// An admin's reply with a file: the file is stored in the bucket first,
/// then the text is queued like any reply.
pub async fn reply_with_file(
    table: &dyn Table,
    blobs: &dyn Blobs,
    send_queue: &dyn Queue,
    ReplyTarget {
        church,
        conversation,
    }: ReplyTarget,
    content: &str,
    file: ReplyFile,
    now: &str,
) -> Result<ThreadMessage, ConversationError> {
    // Refused before the file is stored: an opted-out phone gets nothing.
    if super::inbox::get(table, church, conversation)
        .await?
        .texted_stop()
    {
        return Err(ConversationError::OptedOut);
    }
    let message = MessageId::generate();
    let key = super::media::blob_key(church, conversation, message, 0)?;
    let size = file.blob.bytes.len() as u64;
    let content_type = file.blob.content_type.clone();
    blobs.put(&key, file.blob).await?;
    let media = vec![super::media::stored(&key, &content_type, size, &file.name)];
    let outbound = Outbound::new(church, conversation, message, content, false, media, now);
    queue_consented(table, send_queue, outbound).await
}
