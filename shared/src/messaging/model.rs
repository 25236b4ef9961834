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

use crate::domain::{BranchId, ChurchId, MemberId, MessageId};
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
    branch: Option<BranchId>,
    names: (&str, &str),
    status: Status,
    now: &str,
) -> Vec<TxOp> {
    let key = recipient_key(message, member);
    let item = json!({
        "pk": key.pk, "sk": key.sk, "type": "recipient", "churchId": church, "messageId": message, "memberId": member,
        "branchId": branch, "firstName": names.0, "lastName": names.1, "status": status.as_str(), "attempts": 0, "updatedAt": now,
    });
    let mut ops = vec![
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
    ];
    ops.extend(stats(church, branch, status, now));
    ops
}

/// The church's figures for one UTC day (`DAY#2026-11-25`): what the
/// analytics routes read instead of scanning recipients.
pub fn day_key(church: ChurchId, day: &str) -> Key {
    Key::new(keys::church(church), format!("DAY#{day}"))
}

/// A branch's delivery figures, apart from the branch item so a deleted
/// branch is never brought back by a late receipt.
pub fn branch_stats_key(church: ChurchId, branch: BranchId) -> Key {
    Key::new(keys::church(church), format!("BRANCHSTATS#{branch}"))
}

/// The daily and branch counter a move into `to` bumps, if any.
fn stat(to: Status) -> Option<&'static str> {
    match to {
        Status::Sent => Some("sent"),
        Status::Delivered => Some("delivered"),
        Status::Failed => Some("failed"),
        Status::OptedOut => Some("optedOut"),
        _ => None,
    }
}

/// Bumps the church's day (and the member's branch) for a recipient entering `to`.
pub fn stats(church: ChurchId, branch: Option<BranchId>, to: Status, now: &str) -> Vec<TxOp> {
    let Some(stat) = stat(to) else {
        return Vec::new();
    };
    let day = now.get(..10).unwrap_or(now);
    let mut ops = vec![TxOp::Update {
        key: day_key(church, day),
        update: Update::default().add(stat, 1),
        cond: None,
    }];
    if let Some(branch) = branch {
        ops.push(TxOp::Update {
            key: branch_stats_key(church, branch),
            update: Update::default().add(stat, 1),
            cond: None,
        });
    }
    ops
}

/// Moves a recipient from `from` to `to`, with the message's counters and
/// the church's daily figures, plus any attributes to set on the recipient.
#[allow(clippy::too_many_arguments)]
pub fn transition(
    church: ChurchId,
    message: MessageId,
    member: MemberId,
    branch: Option<BranchId>,
    from: Status,
    to: Status,
    set: Vec<(&str, Value)>,
    now: &str,
) -> Vec<TxOp> {
    let mut update = Update::default()
        .set("status", to.as_str())
        .set("updatedAt", now);
    for (attr, value) in set {
        update = update.set(attr, value);
    }
    let mut ops = vec![
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
    ];
    ops.extend(stats(church, branch, to, now));
    ops
}

pub fn status_of(item: &Item) -> Option<Status> {
    item.get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
}
