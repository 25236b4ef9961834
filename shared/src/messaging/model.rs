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

use std::collections::BTreeMap;

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

/// A member becoming a recipient of a message.
pub struct NewRecipient<'a> {
    pub member: MemberId,
    pub branch: Option<BranchId>,
    pub names: (&'a str, &'a str),
    pub status: Status,
}

/// New recipients (each put if absent) and the message's counters, in one
/// transaction; any recipient already there cancels it all.
pub fn add_recipients(
    church: ChurchId,
    message: MessageId,
    new: &[NewRecipient<'_>],
    now: &str,
) -> Vec<TxOp> {
    let mut ops = Vec::with_capacity(new.len() + 3);
    let mut figures = Figures::default();
    for r in new {
        let key = recipient_key(message, r.member);
        let item = json!({
            "pk": key.pk, "sk": key.sk, "type": "recipient", "churchId": church, "messageId": message, "memberId": r.member,
            "branchId": r.branch, "firstName": r.names.0, "lastName": r.names.1, "status": r.status.as_str(), "attempts": 0, "updatedAt": now,
        });
        ops.push(TxOp::Put {
            item: item.as_object().cloned().unwrap_or_default(),
            cond: Some(Cond::NotExists),
        });
        figures.count("recipients", 1);
        figures.enter(r.status, r.branch);
    }
    ops.extend(figures.into_ops(church, message, now));
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

/// The counters a batch of moves changes, summed so each counter item is
/// written once however many recipients move (a transaction may not name
/// an item twice, and each item written costs a write unit).
#[derive(Default)]
struct Figures {
    message: BTreeMap<&'static str, i64>,
    day: BTreeMap<&'static str, i64>,
    branches: BTreeMap<BranchId, BTreeMap<&'static str, i64>>,
}

impl Figures {
    fn count(&mut self, attr: &'static str, by: i64) {
        *self.message.entry(attr).or_default() += by;
    }

    /// A recipient entering `to`: its message counter, the church's day and the branch.
    fn enter(&mut self, to: Status, branch: Option<BranchId>) {
        self.count(to.counter(), 1);
        if let Some(stat) = stat(to) {
            *self.day.entry(stat).or_default() += 1;
            if let Some(branch) = branch {
                *self
                    .branches
                    .entry(branch)
                    .or_default()
                    .entry(stat)
                    .or_default() += 1;
            }
        }
    }

    fn into_ops(self, church: ChurchId, message: MessageId, now: &str) -> Vec<TxOp> {
        let update = |counters: BTreeMap<&'static str, i64>| {
            counters
                .into_iter()
                .filter(|(_, by)| *by != 0)
                .fold(Update::default(), |u, (attr, by)| u.add(attr, by))
        };
        let mut ops = Vec::new();
        let counters = update(self.message);
        if !counters.is_empty() {
            ops.push(TxOp::Update {
                key: message_key(church, message),
                update: counters,
                cond: Some(Cond::Exists),
            });
        }
        let day = update(self.day);
        if !day.is_empty() {
            ops.push(TxOp::Update {
                key: day_key(church, now.get(..10).unwrap_or(now)),
                update: day,
                cond: None,
            });
        }
        for (branch, counters) in self.branches {
            ops.push(TxOp::Update {
                key: branch_stats_key(church, branch),
                update: update(counters),
                cond: None,
            });
        }
        ops
    }
}

/// One recipient's move from `from` to `to`, with attributes to set on it.
#[derive(Clone)]
pub struct Move<'a> {
    pub member: MemberId,
    pub branch: Option<BranchId>,
    pub from: Status,
    pub to: Status,
    pub set: Vec<(&'a str, Value)>,
}

/// Moves recipients, each only from its `from` state, with the message's
/// counters and the church's daily and branch figures, in one transaction.
pub fn transitions(
    church: ChurchId,
    message: MessageId,
    moves: Vec<Move<'_>>,
    now: &str,
) -> Vec<TxOp> {
    let mut ops = Vec::with_capacity(moves.len() + 3);
    let mut figures = Figures::default();
    for m in moves {
        let mut update = Update::default()
            .set("status", m.to.as_str())
            .set("updatedAt", now);
        for (attr, value) in m.set {
            update = update.set(attr, value);
        }
        ops.push(TxOp::Update {
            key: recipient_key(message, m.member),
            update,
            cond: Some(Cond::eq("status", m.from.as_str())),
        });
        figures.count(m.from.counter(), -1);
        figures.enter(m.to, m.branch);
    }
    ops.extend(figures.into_ops(church, message, now));
    ops
}

/// Moves one recipient from `from` to `to` (see `transitions`).
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
    transitions(
        church,
        message,
        vec![Move {
            member,
            branch,
            from,
            to,
            set,
        }],
        now,
    )
}

pub fn status_of(item: &Item) -> Option<Status> {
    item.get("status")
        .and_then(Value::as_str)
        .and_then(Status::parse)
}
