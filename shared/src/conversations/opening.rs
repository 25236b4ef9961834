//! Opening a phone's conversation with a church: once, however many texts
//! (or welcomes) race to open it.

use super::Deps;
use super::model::{Conversation, ConversationStatus, PhoneConversation, count_move};
use crate::crypto::Field;
use crate::directory::members::MemberRecord;
use crate::domain::{ChurchId, ConversationId, PhoneNumber};
use crate::ports::table::{TableError, TxOp};

/// The phone's conversation at this church, opened if it has none.
pub async fn open_conversation(
    deps: &Deps<'_>,
    church: ChurchId,
    phone: &PhoneNumber,
    phone_hash: &str,
    member: Option<&MemberRecord>,
    now: &str,
) -> Result<Conversation, TableError> {
    for _ in 0..2 {
        if let Some(found) = super::inbox::of_phone(deps.table, church, phone_hash).await? {
            return Ok(found);
        }
        let conversation = Conversation {
            id: ConversationId::generate(),
            church_id: church,
            member_id: member.map(|m| m.id),
            unknown: member.is_none(),
            phone_sealed: deps
                .vault
                .seal(church, Field::ConversationPhone, phone.as_e164()),
            phone_hash: phone_hash.to_owned(),
            status: ConversationStatus::Open,
            unread_count: 0,
            message_count: 0,
            last_message: None,
            last_message_at: now.to_owned(),
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            opt_in_sms: true,
        };
        let claim = PhoneConversation::new(church, phone_hash, conversation.id);
        let ops = vec![
            TxOp::create(&claim)?,
            TxOp::create(&conversation)?,
            count_move(church, None, ConversationStatus::Open),
        ];
        match deps.table.transact(ops).await {
            Ok(()) => return Ok(conversation),
            // Opened meanwhile by a concurrent delivery: read it.
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(TableError::Invalid(
        "the conversation could not be opened".into(),
    ))
}
