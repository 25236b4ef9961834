//! The counts aggregator: turns the change stream's recipient records into
//! the counts every read shows — a message's recipients per state, and the
//! church's figures per day and per branch. The sender and the receipts
//! write only their recipient; this writes each counter once per batch,
//! however many recipients moved.
//!
//! Exact under at-least-once delivery (`tally`): for each message of a
//! batch, the sightings newer than its tallies, the tallies and the counts
//! they move go in one transaction (or a few, within DynamoDB's 100
//! items, each with its own share of the counts). A batch delivered again
//! finds its sightings stale and writes nothing; a crash between two
//! transactions leaves the committed ones counted and recounts the rest.
//! Two aggregators (two shards) on one message take turns through the
//! tallies' revisions: a cancelled transaction is read again and recounted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::entities::{Figures, MessageCounts, Recipient};
use super::model::Status;
use super::tally::{Seen, Sighting, Tally};
use crate::domain::{BranchId, ChurchId, MessageId};
use crate::keys;
use crate::ports::changes::Change;
use crate::ports::table::{MAX_TRANSACTION_OPS, Table, TableError, TxOp};
use crate::store::{Entities, Entity, KIND, from_item};

/// Reads and recounts of one message before the batch is given back to
/// the stream (which delivers it again).
const ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(
        "message {message}: other aggregators kept changing its tallies; the batch comes again"
    )]
    Contended { message: MessageId },
    #[error("message {message}: its tally of block {block} does not read; nothing counted")]
    UnsoundTally { message: MessageId, block: u64 },
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// Recipient records newer than their tallies: counted now.
    pub counted: usize,
    /// Recipient records counted before (a redelivery) or older than what
    /// was counted: nothing changed.
    pub stale: usize,
    /// Records of other things (and recipients from before tallies).
    pub ignored: usize,
    /// Transactions cancelled by a concurrent aggregator, then redone.
    pub retried: u32,
}

/// One recipient record, as the tallies count it.
struct Sighted {
    church: ChurchId,
    message: MessageId,
    branch: Option<BranchId>,
    slot: u64,
    seen: Seen,
    /// The UTC day of the write (its figures' day).
    day: String,
}

fn sighted(change: &Change) -> Option<Sighted> {
    let new = change.new.as_ref()?;
    if new.get(KIND).and_then(serde_json::Value::as_str) != Recipient::KIND {
        return None;
    }
    let recipient: Recipient = match from_item(new.clone()) {
        Ok(recipient) => recipient,
        Err(e) => {
            // Its key and the attribute only: never a name or a phone.
            tracing::error!(error = %e, "a recipient's change does not read; left uncounted");
            return None;
        }
    };
    Some(Sighted {
        church: recipient.church_id,
        message: recipient.message_id,
        branch: recipient.branch_id,
        slot: recipient.slot?,
        seen: Seen {
            status: recipient.status,
            accepted: recipient.carrier_id.is_some(),
            version: recipient.version,
        },
        day: recipient.updated_at.get(..10)?.to_owned(),
    })
}

/// The figures a recipient moving from `before` to `now` enters: `sent`
/// once the carrier took it (whether its receipt said sent, delivered or
/// failed first), the others on entering their state; `refused` on failing
/// without the carrier having taken it.
fn entered(before: Option<Seen>, now: Seen) -> Figures {
    let was = |s: Status| before.is_some_and(|b| b.status == s);
    let into = |s: Status| i64::from(now.status == s && !was(s));
    Figures {
        messages: 0,
        sent: i64::from(now.accepted && !before.is_some_and(|b| b.accepted)),
        delivered: into(Status::Delivered),
        failed: into(Status::Failed),
        refused: into(Status::Failed) * i64::from(!now.accepted),
        opted_out: into(Status::OptedOut),
        cancelled: into(Status::Cancelled),
    }
}

/// What a set of sightings moves: one message's counts, and the church's
/// figures per day and per branch.
#[derive(Debug, Clone, Default)]
struct Moved {
    counts: BTreeMap<&'static str, i64>,
    days: BTreeMap<String, Figures>,
    branches: BTreeMap<BranchId, Figures>,
}

impl Moved {
    fn count(&mut self, before: Option<Seen>, s: &Sighted) {
        let from = before.map_or(MessageCounts::RECIPIENTS, |b| b.status.counter());
        let delta = if before.is_some() { -1 } else { 1 };
        *self.counts.entry(from).or_default() += delta;
        *self.counts.entry(s.seen.status.counter()).or_default() += 1;
        let figures = entered(before, s.seen);
        if !figures.is_zero() {
            let day = self.days.entry(s.day.clone()).or_default();
            *day = day.plus(figures);
            if let Some(branch) = s.branch {
                let b = self.branches.entry(branch).or_default();
                *b = b.plus(figures);
            }
        }
    }

    fn merge(&mut self, other: &Moved) {
        for (attr, by) in &other.counts {
            *self.counts.entry(attr).or_default() += by;
        }
        for (day, f) in &other.days {
            let d = self.days.entry(day.clone()).or_default();
            *d = d.plus(*f);
        }
        for (branch, f) in &other.branches {
            let b = self.branches.entry(*branch).or_default();
            *b = b.plus(*f);
        }
    }

    /// Counter items it writes.
    fn items(&self) -> usize {
        1 + self.days.len() + self.branches.len()
    }

    fn ops(&self, church: ChurchId, message: MessageId) -> Vec<TxOp> {
        let mut ops = Vec::with_capacity(self.items());
        let counts = MessageCounts::add(self.counts.iter().map(|(a, by)| (*a, *by)));
        if !counts.is_empty() {
            ops.push(TxOp::Update {
                key: keys::message_counts(church, message),
                update: counts,
                cond: None,
            });
        }
        let figures = |key, f: &Figures| TxOp::Update {
            key,
            update: f.added(),
            cond: None,
        };
        ops.extend(
            self.days
                .iter()
                .map(|(day, f)| figures(keys::day(church, day), f)),
        );
        ops.extend(
            self.branches
                .iter()
                .map(|(b, f)| figures(keys::branch_stats(church, *b), f)),
        );
        ops
    }
}

/// Counts a batch of the change stream.
pub async fn apply(table: &dyn Table, changes: &[Change]) -> Result<Counted, AggregateError> {
    let mut outcome = Counted::default();
    let mut by_message: BTreeMap<(ChurchId, MessageId), Vec<Sighted>> = BTreeMap::new();
    for change in changes {
        match sighted(change) {
            Some(s) => by_message.entry((s.church, s.message)).or_default().push(s),
            None => outcome.ignored += 1,
        }
    }
    for ((church, message), sightings) in by_message {
        count_message(table, church, message, &sightings, &mut outcome).await?;
    }
    Ok(outcome)
}

async fn count_message(
    table: &dyn Table,
    church: ChurchId,
    message: MessageId,
    sightings: &[Sighted],
    outcome: &mut Counted,
) -> Result<(), AggregateError> {
    let blocks: Vec<u64> = sightings
        .iter()
        .map(|s| Tally::place(s.slot).0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tally_keys: Vec<_> = blocks.iter().map(|b| keys::tally(message, *b)).collect();
    for attempt in 0..ATTEMPTS {
        let loaded = table.load_many::<Tally>(&tally_keys).await?;
        let mut tallies: BTreeMap<u64, Tally> = blocks
            .iter()
            .zip(loaded)
            .map(|(b, t)| (*b, t.unwrap_or_else(|| Tally::empty(church, message, *b))))
            .collect();
        if let Some(bad) = tallies.values().find(|t| !t.is_sound()) {
            return Err(AggregateError::UnsoundTally {
                message,
                block: bad.block,
            });
        }
        let mut moved: BTreeMap<u64, Moved> = BTreeMap::new();
        let mut stale = 0;
        for s in sightings {
            let (block, index) = Tally::place(s.slot);
            let Some(tally) = tallies.get_mut(&block) else {
                continue;
            };
            match tally.observe(index, s.seen) {
                Sighting::Newer(before) => moved.entry(block).or_default().count(before, s),
                Sighting::Stale => stale += 1,
            }
        }
        if commit(table, church, message, &tallies, &moved).await? {
            outcome.counted += sightings.len() - stale;
            outcome.stale += stale;
            return Ok(());
        }
        outcome.retried += 1;
        // Another aggregator wrote one of these items: read them again after
        // a random pause, so two contenders do not collide again in step.
        let most = 5u64 << attempt.min(6);
        tokio::time::sleep(Duration::from_millis(rand::random_range(most / 2..=most))).await;
    }
    Err(AggregateError::Contended { message })
}

/// Writes the changed tallies with what they moved; `false` when a
/// concurrent aggregator got to one of them first (this attempt's later
/// transactions are then not written: a recount redoes them).
async fn commit(
    table: &dyn Table,
    church: ChurchId,
    message: MessageId,
    tallies: &BTreeMap<u64, Tally>,
    moved: &BTreeMap<u64, Moved>,
) -> Result<bool, TableError> {
    // Blocks and their counts, grouped within DynamoDB's 100 items a transaction.
    let mut groups: Vec<(Vec<u64>, Moved)> = Vec::new();
    for (block, m) in moved {
        if let Some((blocks, together)) = groups.last_mut() {
            let mut merged = together.clone();
            merged.merge(m);
            if blocks.len() + 1 + merged.items() <= MAX_TRANSACTION_OPS {
                blocks.push(*block);
                *together = merged;
                continue;
            }
        }
        groups.push((vec![*block], m.clone()));
    }
    for (blocks, together) in groups {
        let mut ops = blocks
            .iter()
            .filter_map(|b| tallies.get(b))
            .map(Tally::write)
            .collect::<Result<Vec<_>, _>>()?;
        ops.extend(together.ops(church, message));
        match table.transact(ops).await {
            Ok(()) => {}
            Err(TableError::TransactionCancelled { .. } | TableError::Conflict) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: Status, accepted: bool, version: u32) -> Seen {
        Seen {
            status,
            accepted,
            version,
        }
    }

    #[test]
    fn a_text_counts_as_sent_once_the_carrier_took_it_whatever_its_first_receipt() {
        // An early receipt moves it from sending straight to delivered.
        let f = entered(
            Some(seen(Status::Sending, false, 2)),
            seen(Status::Delivered, true, 3),
        );
        assert_eq!((f.sent, f.delivered), (1, 1));
        let f = entered(
            Some(seen(Status::Sent, true, 3)),
            seen(Status::Delivered, true, 4),
        );
        assert_eq!((f.sent, f.delivered), (0, 1));
        // Refused by the carrier: failed, never sent.
        let f = entered(
            Some(seen(Status::Sending, false, 2)),
            seen(Status::Failed, false, 3),
        );
        assert_eq!((f.sent, f.failed, f.refused), (0, 1, 1));
        // Taken, then failed: sent and failed, not refused.
        let f = entered(
            Some(seen(Status::Sent, true, 3)),
            seen(Status::Failed, true, 4),
        );
        assert_eq!((f.sent, f.failed, f.refused), (0, 1, 0));
    }
}
