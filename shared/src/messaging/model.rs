//! Recipients as they move, and the recipient state machine.
//!
//! ```text
//! queued → sending → sent → delivered | failed
//!    ↘ opted_out   ↘ queued (a carrier error worth retrying)
//!                  ↘ failed (permanent carrier error)
//! sending ─(redelivered after a crash)→ uncertain   (reported, never resent)
//! queued → cancelled   (its message was cancelled before it was claimed)
//! ```
//! Every transition is one conditional write of the recipient alone,
//! naming the state it may leave (so a retried or duplicated job can never
//! send twice) and bumping its `version`. No counter is written beside it:
//! the counts aggregator counts from the change stream (`aggregate`), so a
//! fast number makes no item or partition hot and no two writes contend.

use serde::{Deserialize, Serialize};

use super::entities::Recipient;
use crate::domain::{BranchId, ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::table::{Cond, Key, Table, TableError, Update};
use crate::store::to_item;

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
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::Delivered,
        Status::Failed,
        Status::OptedOut,
        Status::Uncertain,
        Status::Cancelled,
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
            Status::Cancelled => "cancelled",
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
            Status::Cancelled => "cancelledCount",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Delivered
                | Status::Failed
                | Status::OptedOut
                | Status::Uncertain
                | Status::Cancelled
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

/// Where a message's new recipients go: its lanes, and the slots the
/// fan-out took for them.
pub struct Placement {
    pub church: ChurchId,
    pub message: MessageId,
    pub lanes: u32,
    /// The first slot taken for this page.
    pub first_slot: u64,
}

impl Placement {
    /// The `n`-th new recipient of the page, as stored.
    pub fn recipient(&self, n: usize, new: &NewRecipient<'_>, now: &str) -> Recipient {
        Recipient {
            church_id: self.church,
            message_id: self.message,
            member_id: new.member,
            branch_id: new.branch,
            first_name: new.names.0.to_owned(),
            last_name: new.names.1.to_owned(),
            status: new.status,
            attempts: 0,
            updated_at: now.to_owned(),
            error_code: None,
            carrier_id: None,
            claimed_at: None,
            lane: keys::lane_of(new.member, self.lanes),
            slot: Some(self.first_slot + n as u64),
            version: 1,
        }
    }
}

/// Writes of one recipient in flight at once (each is its own request).
const WRITES_AT_ONCE: usize = 25;

/// Puts each recipient unless it is one already; which were put.
pub async fn create(table: &dyn Table, recipients: &[Recipient]) -> Result<Vec<bool>, TableError> {
    let mut created = Vec::with_capacity(recipients.len());
    for chunk in recipients.chunks(WRITES_AT_ONCE) {
        let puts = chunk.iter().map(|r| async move {
            match table.put(to_item(r)?, Some(Cond::NotExists)).await {
                Ok(()) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e),
            }
        });
        for put in futures_util::future::join_all(puts).await {
            created.push(put?);
        }
    }
    Ok(created)
}

/// One recipient's move from `from` to `to`, with what to record on it.
#[derive(Clone)]
pub struct Move {
    pub recipient: Key,
    pub from: Status,
    pub to: Status,
    pub marks: Vec<Mark>,
}

impl Move {
    /// The write: the new state and marks, only from `from`, one version on.
    fn write(&self, now: &str) -> (Update, Cond) {
        let update = Update::default()
            .set("status", self.to.as_str())
            .set("updatedAt", now)
            .add("version", 1);
        (
            Mark::all_onto(&self.marks, update),
            Cond::eq("status", self.from.as_str()),
        )
    }
}

/// Applies `moves`, each alone; which held (a move whose recipient left
/// its `from` state, to a racing run or a receipt, fails alone).
pub async fn apply(table: &dyn Table, moves: &[Move], now: &str) -> Result<Vec<bool>, TableError> {
    let mut held = Vec::with_capacity(moves.len());
    for chunk in moves.chunks(WRITES_AT_ONCE) {
        let writes = chunk.iter().map(|m| async move {
            let (update, cond) = m.write(now);
            match table.update(&m.recipient, update, Some(cond)).await {
                Ok(_) => Ok(true),
                Err(TableError::ConditionFailed) => Ok(false),
                Err(e) => Err(e),
            }
        });
        for write in futures_util::future::join_all(writes).await {
            held.push(write?);
        }
    }
    Ok(held)
}

/// Applies one move; whether it held.
pub async fn apply_one(table: &dyn Table, one: Move, now: &str) -> Result<bool, TableError> {
    Ok(apply(table, &[one], now).await?.first() == Some(&true))
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
    fn a_move_writes_the_recipient_alone_from_its_state_one_version_on() {
        let m = Move {
            recipient: keys::recipient(MessageId::generate(), 3, MemberId::generate()),
            from: Status::Sending,
            to: Status::Delivered,
            marks: vec![],
        };
        let (update, cond) = m.write("2026-12-01T10:00:00Z");
        assert_eq!(cond, Cond::eq("status", "sending"));
        assert!(update.set.contains(&("status".into(), "delivered".into())));
        assert_eq!(update.add, vec![("version".to_owned(), 1)]);
    }

    #[test]
    fn a_fast_number_spreads_a_big_message_over_lanes_and_a_small_one_stays_in_one() {
        use crate::messaging::entities::lanes_for;
        assert_eq!(lanes_for(1_000, 25_000), 32);
        assert_eq!(lanes_for(75, 25_000), 3);
        assert_eq!(lanes_for(1_000, 150), 1);
        assert_eq!(lanes_for(10_000, 1_000_000), 32);
    }
}
