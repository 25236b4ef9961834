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

use super::entities::{Figures, Recipient};
use crate::domain::{BranchId, ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::table::{Cond, TableError, TxOp, Update};

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

/// What a move records on a text (a recipient or a thread message) besides
/// its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// The carrier's (or our own) reason it failed.
    ErrorCode(String),
    /// Claimed for sending on the `attempt`-th receive of its job, `at` then.
    Claimed { attempt: u32, at: String },
    /// The carrier accepted it under `id`; its receipts find it through the
    /// carrier index, whose sort key says what it is (`RCPT` or `CMSG`).
    Carrier { id: String, kind: &'static str },
}

impl Mark {
    fn onto(&self, update: Update) -> Update {
        match self {
            Mark::ErrorCode(code) => update.set("errorCode", code.as_str()),
            Mark::Claimed { attempt, at } => update
                .set("attempts", *attempt)
                .set("claimedAt", at.as_str()),
            Mark::Carrier { id, kind } => update
                .set("carrierId", id.as_str())
                .set("gsi1pk", keys::carrier_message(id))
                .set("gsi1sk", *kind),
        }
    }

    /// The update recording `marks` on a text.
    pub fn all_onto(marks: &[Mark], update: Update) -> Update {
        marks.iter().fold(update, |u, m| m.onto(u))
    }
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
) -> Result<Vec<TxOp>, TableError> {
    let mut ops = Vec::with_capacity(new.len() + 3);
    let mut changes = Changes::default();
    for r in new {
        let recipient = Recipient {
            church_id: church,
            message_id: message,
            member_id: r.member,
            branch_id: r.branch,
            first_name: r.names.0.to_owned(),
            last_name: r.names.1.to_owned(),
            status: r.status,
            attempts: 0,
            updated_at: now.to_owned(),
            error_code: None,
            carrier_id: None,
            claimed_at: None,
        };
        ops.push(TxOp::create(&recipient)?);
        changes.count("recipients", 1);
        changes.enter(r.status, r.branch);
    }
    ops.extend(changes.into_ops(church, message, now));
    Ok(ops)
}

/// The counters a batch of moves changes, summed so each counter item is
/// written once however many recipients move (a transaction may not name
/// an item twice, and each item written costs a write unit).
#[derive(Default)]
struct Changes {
    message: BTreeMap<&'static str, i64>,
    day: BTreeMap<&'static str, i64>,
    branches: BTreeMap<BranchId, BTreeMap<&'static str, i64>>,
}

impl Changes {
    fn count(&mut self, attr: &'static str, by: i64) {
        *self.message.entry(attr).or_default() += by;
    }

    /// A recipient entering `to`: its message counter, the church's day and the branch.
    fn enter(&mut self, to: Status, branch: Option<BranchId>) {
        self.count(to.counter(), 1);
        if let Some(stat) = Figures::attribute(to) {
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
                key: keys::message(church, message),
                update: counters,
                cond: Some(Cond::Exists),
            });
        }
        let day = update(self.day);
        if !day.is_empty() {
            ops.push(TxOp::Update {
                key: keys::day(church, now.get(..10).unwrap_or(now)),
                update: day,
                cond: None,
            });
        }
        for (branch, counters) in self.branches {
            ops.push(TxOp::Update {
                key: keys::branch_stats(church, branch),
                update: update(counters),
                cond: None,
            });
        }
        ops
    }
}

/// One recipient's move from `from` to `to`, with what to record on it.
#[derive(Clone)]
pub struct Move {
    pub member: MemberId,
    pub branch: Option<BranchId>,
    pub from: Status,
    pub to: Status,
    pub marks: Vec<Mark>,
}

/// Moves recipients, each only from its `from` state, with the message's
/// counters and the church's daily and branch figures, in one transaction.
pub fn transitions(church: ChurchId, message: MessageId, moves: Vec<Move>, now: &str) -> Vec<TxOp> {
    let mut ops = Vec::with_capacity(moves.len() + 3);
    let mut changes = Changes::default();
    for m in moves {
        let update = Update::default()
            .set("status", m.to.as_str())
            .set("updatedAt", now);
        ops.push(TxOp::Update {
            key: keys::recipient(message, m.member),
            update: Mark::all_onto(&m.marks, update),
            cond: Some(Cond::eq("status", m.from.as_str())),
        });
        changes.count(m.from.counter(), -1);
        changes.enter(m.to, m.branch);
    }
    ops.extend(changes.into_ops(church, message, now));
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
    marks: Vec<Mark>,
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
            marks,
        }],
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_text_is_indexed_by_its_carrier_id_for_its_receipts() {
        let marked = Mark::all_onto(
            &[Mark::Carrier {
                id: "b0c7e8cb".into(),
                kind: "RCPT",
            }],
            Update::default(),
        );
        assert!(
            marked
                .set
                .contains(&("carrierId".into(), "b0c7e8cb".into()))
        );
        assert!(
            marked
                .set
                .contains(&("gsi1pk".into(), "CARRIER#b0c7e8cb".into()))
        );
        assert!(marked.set.contains(&("gsi1sk".into(), "RCPT".into())));
    }

    #[test]
    fn moving_recipients_counts_each_counter_item_once() {
        let church = ChurchId::generate();
        let message = MessageId::generate();
        let branch = BranchId::generate();
        let moves = (0..3)
            .map(|_| Move {
                member: MemberId::generate(),
                branch: Some(branch),
                from: Status::Sending,
                to: Status::Delivered,
                marks: vec![],
            })
            .collect();
        let ops = transitions(church, message, moves, "2026-12-01T10:00:00Z");
        // Three recipients, then the message, the day and the branch once each.
        assert_eq!(ops.len(), 6);
        let counters: Vec<_> = ops[3..].iter().map(|op| op.key().unwrap()).collect();
        assert_eq!(
            counters,
            vec![
                keys::message(church, message),
                keys::day(church, "2026-12-01"),
                keys::branch_stats(church, branch),
            ]
        );
        let TxOp::Update { update, .. } = &ops[3] else {
            panic!("the message's counters are an update");
        };
        assert!(update.add.contains(&("deliveredCount".into(), 3)));
        assert!(update.add.contains(&("sendingCount".into(), -3)));
    }
}
