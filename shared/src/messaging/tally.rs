//! What the counts aggregator has counted: for each recipient of a
//! message, the last state (and version) it counted, 256 recipients to an
//! item by their slot.
//!
//! This is what makes counting from the change stream exact. The stream
//! delivers at least once: a batch comes again after a crash, a timeout or
//! a bisect. A recipient's `version` goes up with every write of it, so a
//! change is counted only when it is newer than what its slot holds — a
//! record seen twice, or an old one arriving after a newer, changes
//! nothing — and the tally is written in the same transaction as the
//! counts it moved, so a crash leaves both or neither.

use serde::{Deserialize, Serialize};

use super::model::Status;
use crate::domain::{ChurchId, MessageId};
use crate::keys;
use crate::ports::table::{Cond, Key, TableError, TxOp};

/// Recipients (slots) per tally item: three characters each keeps an item
/// under 1 KiB, one write unit (two in a transaction).
pub const BLOCK: u64 = 256;
const WIDTH: usize = 3;
const EMPTY: &str = "---";
/// Versions are kept in two base-36 digits; one recipient is written a
/// handful of times, far below this.
const MAX_VERSION: u32 = 36 * 36 - 1;

/// What the aggregator last counted of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub status: Status,
    /// The carrier took it (it has a carrier id): it counts as sent.
    pub accepted: bool,
    pub version: u32,
}

fn letter(status: Status) -> char {
    match status {
        Status::Queued => 'q',
        Status::Sending => 'c',
        Status::Sent => 's',
        Status::Delivered => 'd',
        Status::Failed => 'f',
        Status::OptedOut => 'o',
        Status::Uncertain => 'u',
        Status::Cancelled => 'x',
    }
}

fn status_of(letter: char) -> Option<Status> {
    Status::ALL
        .into_iter()
        .find(|s| self::letter(*s) == letter.to_ascii_lowercase())
}

impl Seen {
    fn encode(&self) -> String {
        let l = letter(self.status);
        let l = if self.accepted {
            l.to_ascii_uppercase()
        } else {
            l
        };
        let v = self.version.min(MAX_VERSION);
        let digit = |n: u32| char::from_digit(n, 36).unwrap_or('z');
        format!("{l}{}{}", digit(v / 36), digit(v % 36))
    }

    fn decode(raw: &str) -> Option<Seen> {
        let mut chars = raw.chars();
        let l = chars.next()?;
        let high = chars.next()?.to_digit(36)?;
        let low = chars.next()?.to_digit(36)?;
        Some(Seen {
            status: status_of(l)?,
            accepted: l.is_ascii_uppercase(),
            version: high * 36 + low,
        })
    }
}

/// What a change is to the slot it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Newer than what the slot held (`None`: it held nothing yet).
    Newer(Option<Seen>),
    /// Seen before, or older than what it holds: it counts nothing.
    Stale,
}

/// The tally of one block of a message's slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    #[serde(skip)]
    key: Key,
    pub church_id: ChurchId,
    pub message_id: MessageId,
    pub block: u64,
    /// `WIDTH` characters a slot: its state's letter (upper case once the
    /// carrier took it) and its version in base 36; `---` for none yet.
    slots: String,
    /// One up with every write: the condition that makes two aggregators
    /// (reading two shards) take turns on one tally.
    pub revision: u64,
}

crate::store::keyed_by_its_key!(Tally, Some("tally"));

impl Tally {
    pub fn empty(church: ChurchId, message: MessageId, block: u64) -> Self {
        Self {
            key: keys::tally(message, block),
            church_id: church,
            message_id: message,
            block,
            slots: EMPTY.repeat(BLOCK as usize),
            revision: 0,
        }
    }

    /// Whether its slots read as this code writes them (a tally changed by
    /// hand, or by another version, is refused rather than miscounted).
    pub fn is_sound(&self) -> bool {
        self.slots.len() == BLOCK as usize * WIDTH && self.slots.is_ascii()
    }

    /// The block and the place in it of a slot.
    pub fn place(slot: u64) -> (u64, usize) {
        (slot / BLOCK, (slot % BLOCK) as usize)
    }

    pub fn get(&self, index: usize) -> Option<Seen> {
        self.slots
            .get(index * WIDTH..(index + 1) * WIDTH)
            .and_then(Seen::decode)
    }

    /// Keeps `seen` in its place if it is newer than what is there.
    pub fn observe(&mut self, index: usize, seen: Seen) -> Sighting {
        let before = self.get(index);
        if before.is_some_and(|b| b.version >= seen.version) || index >= BLOCK as usize {
            return Sighting::Stale;
        }
        self.slots
            .replace_range(index * WIDTH..(index + 1) * WIDTH, &seen.encode());
        Sighting::Newer(before)
    }

    /// The write of the changed tally: only over the revision read (or
    /// where none was), so a concurrent aggregator's write is never lost.
    pub fn write(&self) -> Result<TxOp, TableError> {
        let mut next = self.clone();
        next.revision += 1;
        let cond = match self.revision {
            0 => Cond::NotExists,
            read => Cond::eq("revision", read),
        };
        TxOp::put(&next, Some(cond))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: Status, version: u32) -> Seen {
        Seen {
            status,
            accepted: matches!(status, Status::Sent | Status::Delivered),
            version,
        }
    }

    #[test]
    fn a_slot_keeps_the_newest_version_it_saw() {
        let mut t = Tally::empty(ChurchId::generate(), MessageId::generate(), 0);
        assert_eq!(t.observe(7, seen(Status::Queued, 1)), Sighting::Newer(None));
        assert_eq!(
            t.observe(7, seen(Status::Sent, 3)),
            Sighting::Newer(Some(seen(Status::Queued, 1)))
        );
        // Redelivered, or older than what it holds: nothing changes.
        assert_eq!(t.observe(7, seen(Status::Sent, 3)), Sighting::Stale);
        assert_eq!(t.observe(7, seen(Status::Sending, 2)), Sighting::Stale);
        assert_eq!(t.get(7), Some(seen(Status::Sent, 3)));
        assert_eq!(t.get(6), None);
    }

    #[test]
    fn every_state_and_large_versions_survive_the_encoding() {
        for status in Status::ALL {
            for accepted in [false, true] {
                for version in [0, 1, 35, 36, 700, MAX_VERSION] {
                    let s = Seen {
                        status,
                        accepted,
                        version,
                    };
                    assert_eq!(Seen::decode(&s.encode()), Some(s));
                }
            }
        }
    }

    #[test]
    fn a_full_tally_is_one_write_unit() {
        let mut t = Tally::empty(ChurchId::generate(), MessageId::generate(), 12);
        for i in 0..BLOCK as usize {
            assert!(matches!(
                t.observe(i, seen(Status::Delivered, 700)),
                Sighting::Newer(_)
            ));
        }
        let item = crate::store::to_item(&t).unwrap();
        assert!(serde_json::to_vec(&item).unwrap().len() <= 1024);
    }

    #[test]
    fn the_first_write_needs_no_tally_and_later_ones_the_revision_read() {
        let t = Tally::empty(ChurchId::generate(), MessageId::generate(), 0);
        let TxOp::Put { item, cond } = t.write().unwrap() else {
            panic!("a put");
        };
        assert_eq!(cond, Some(Cond::NotExists));
        assert_eq!(item["revision"], 1);
    }
}
