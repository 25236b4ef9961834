//! Messages and recipients as stored, and the recipient state machine.
//!
//! ```text
//! queued → sending → sent → delivered | failed
//!    ↘ opted_out        ↘ failed (permanent carrier error)
//! sending ─(redelivered after a crash)→ uncertain   (reported, never resent)
//! ```
//! Every transition is a conditional write naming the states it may leave,
//! in one transaction with the message's per-status counters, so a retried
//! or duplicated job can never send twice and counts always add up.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::table::{Cond, Item, Key, TxOp, Update};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Delivered,
    Failed,
    OptedOut,
    Uncertain,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::Delivered,
        Status::Failed,
        Status::OptedOut,
        Status::Uncertain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::OptedOut => "opted_out",
            Status::Uncertain => "uncertain",
        }
    }

    /// The message attribute counting recipients in this state.
    pub fn counter(self) -> &'static str {
        match self {
            Status::Queued => "queuedCount",
            Status::Sending => "sendingCount",
            Status::Sent => "sentCount",
            Status::Delivered => "deliveredCount",
            Status::Failed => "failedCount",
            Status::OptedOut => "optedOutCount",
            Status::Uncertain => "uncertainCount",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Failed | Status::OptedOut | Status::Uncertain
        )
    }

    pub fn parse(raw: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

pub fn message_key(church: ChurchId, message: MessageId) -> Key {
    Key::new(keys::church(church), format!("MSG#{message}"))
}

pub fn recipients_partition(message: MessageId) -> String {
    format!("MSG#{message}")
}

pub fn recipient_key(message: MessageId, member: MemberId) -> Key {
    Key::new(recipients_partition(message), format!("RCPT#{member}"))
}

/// GSI1 entry that finds a recipient from the carrier's message id.
pub fn carrier_index(carrier_id: &str) -> String {
    format!("CARRIER#{carrier_id}")
}

/// A new recipient (put if absent) and the message's counters.
pub fn add_recipient(
    church: ChurchId,
    message: MessageId,
    member: MemberId,
    names: (&str, &str),
    status: Status,
    now: &str,
) -> [TxOp; 2] {
    let key = recipient_key(message, member);
    let item = json!({
        "pk": key.pk, "sk": key.sk, "type": "recipient", "churchId": church, "messageId": message, "memberId": member,
        "firstName": names.0, "lastName": names.1, "status": status.as_str(), "attempts": 0, "updatedAt": now,
    });
    [
        TxOp::Put {
            item: item.as_object().cloned().unwrap_or_default(),
            cond: Some(Cond::NotExists),
        },
        TxOp::Update {
            key: message_key(church, message),
            update: Update::default()
                .add("recipients", 1)
                .add(status.counter(), 1),
            cond: Some(Cond::Exists),
        },
    ]
}

/// Moves a recipient from one of `from` to `to`, with the counters, plus
/// any attributes to set on the recipient.
pub fn transition(
    church: ChurchId,
    message: MessageId,
    member: MemberId,
    from: Status,
    to: Status,
    set: Vec<(&str, Value)>,
    now: &str,
) -> [TxOp; 2] {
    let mut update = Update::default()
        .set("status", to.as_str())
        .set("updatedAt", now);
    for (attr, value) in set {
        update = update.set(attr, value);
    }
    [
        TxOp::Update {
            key: recipient_key(message, member),
            update,
            cond: Some(Cond::eq("status", from.as_str())),
        },
        TxOp::Update {
            key: message_key(church, message),
            update: Update::default()
                .add(from.counter(), -1)
                .add(to.counter(), 1),
            cond: Some(Cond::Exists),
        },
    ]
}

pub fn status_of(item: &Item) -> Option<Status> {
    item.get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
}
