//! Which member a conversation is with. A conversation belongs to a phone;
//! when an admin adds that phone as a member, changes a member's phone or
//! deletes a member, the directory's transaction carries the matching link
//! or unlink from here — so the inbox never names the wrong person, and a
//! STOP the phone texted before it was a member still holds.

use super::model::Conversation;
use crate::domain::{ChurchId, ConversationId, MemberId};
use crate::ports::table::{Table, TableError, TxOp};

/// A phone's conversation with the church.
pub struct PhoneConversation {
    id: ConversationId,
    church: ChurchId,
    /// The phone texted STOP (and not START since) at this church.
    pub texted_stop: bool,
}

/// The conversation `phone_hash` has with `church`, if it ever texted or was texted.
pub async fn find(
    table: &dyn Table,
    church: ChurchId,
    phone_hash: &str,
) -> Result<Option<PhoneConversation>, TableError> {
    let found = super::inbox::of_phone(table, church, phone_hash).await?;
    Ok(found.map(|conversation| PhoneConversation {
        id: conversation.id,
        church,
        texted_stop: conversation.texted_stop(),
    }))
}

impl PhoneConversation {
    /// The conversation is now with `member`.
    pub fn link(&self, member: MemberId, now: &str) -> TxOp {
        Conversation::link(self.church, self.id, Some(member), now)
    }

    /// The conversation's member is gone: it is with an unknown phone again.
    pub fn unlink(&self, now: &str) -> TxOp {
        Conversation::link(self.church, self.id, None, now)
    }
}
