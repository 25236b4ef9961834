//! Which member a conversation is with. A conversation belongs to a phone;
//! when an admin adds that phone as a member, changes a member's phone or
//! deletes a member, the directory's transaction carries the matching link
//! or unlink from here — so the inbox never names the wrong person, and a
//! STOP the phone texted before it was a member still holds.

use serde_json::{Value, json};

use crate::domain::{ChurchId, MemberId};
use crate::ports::table::{Cond, Key, Table, TableError, TxOp, Update};

/// A phone's conversation with the church.
pub struct PhoneConversation {
    key: Key,
    /// The phone texted STOP (and not START since) at this church.
    pub texted_stop: bool,
}

/// The conversation `phone_hash` has with `church`, if it ever texted or was texted.
pub async fn find(
    table: &dyn Table,
    church: ChurchId,
    phone_hash: &str,
) -> Result<Option<PhoneConversation>, TableError> {
    let Some(conversation) = super::inbox::of_phone(table, church, phone_hash).await? else {
        return Ok(None);
    };
    Ok(Some(PhoneConversation {
        key: Key::of(&conversation)?,
        texted_stop: conversation.get("optInSms").and_then(Value::as_bool) == Some(false),
    }))
}

impl PhoneConversation {
    /// The conversation is now with `member`.
    pub fn link(&self, member: MemberId, now: &str) -> TxOp {
        self.set(json!(member), now)
    }

    /// The conversation's member is gone: it is with an unknown phone again.
    pub fn unlink(&self, now: &str) -> TxOp {
        self.set(Value::Null, now)
    }

    fn set(&self, member: Value, now: &str) -> TxOp {
        let unknown = member.is_null();
        TxOp::Update {
            key: self.key.clone(),
            update: Update::default()
                .set("memberId", member)
                .set("unknown", unknown)
                .set("updatedAt", now),
            cond: Some(Cond::Exists),
        }
    }
}
