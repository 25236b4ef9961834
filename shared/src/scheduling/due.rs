//! The due index: where the cron finds what is due with key queries, so a
//! run's cost follows what is due, never what exists.
//!
//! An active recurring message, or a scheduled send not yet fired, carries
//! GSI1 keys `DUE#shard` / `time#kind#church#id`; nothing else does (the
//! index is sparse). A run asks each shard for `gsi1sk <= now`. Four
//! shards keep a Sunday-morning rush of re-schedulings (every recurring
//! message moving a week on in the same minute) to a quarter of the
//! 1,000 write units a second one index partition takes; a run with
//! nothing due costs four queries.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::ports::table::{Index, Key, Query, SortCond, Update};

pub const SHARDS: u32 = 4;
/// The sort key's time: fixed-width UTC, so text order is time order.
const FORMAT: SecondsFormat = SecondsFormat::Secs;
/// Keys read per query page.
pub const PAGE: u32 = 250;

/// What a due entry fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueKind {
    Recurring,
    Scheduled,
}

impl DueKind {
    fn tag(self) -> &'static str {
        match self {
            DueKind::Recurring => "RECUR",
            DueKind::Scheduled => "MSG",
        }
    }
}

/// The shard of a thing's entries: fixed by its key, spread evenly.
fn shard_of(item: &Key) -> u32 {
    let digest = Sha256::digest(format!("{}/{}", item.pk, item.sk).as_bytes());
    u32::from(digest[0]) % SHARDS
}

fn partition(shard: u32) -> String {
    format!("DUE#{shard}")
}

/// An instant as the due index sorts it, and as the times it is keyed by
/// (`nextSendAt`, `scheduledAt`) are stored: fixed-width UTC seconds.
pub fn utc_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(FORMAT, true)
}

/// The GSI1 keys placing `item` (stored under that key) due at `at`.
pub fn entry(item: &Key, kind: DueKind, at: DateTime<Utc>) -> (Index, String, String) {
    (
        Index::Gsi1,
        partition(shard_of(item)),
        format!("{}#{}#{}#{}", utc_text(at), kind.tag(), item.pk, item.sk),
    )
}

/// An update's part that (re)places `item` due at `at`.
pub fn place(update: Update, item: &Key, kind: DueKind, at: DateTime<Utc>) -> Update {
    let (index, pk, sk) = entry(item, kind, at);
    let (pk_attr, sk_attr) = index.key_attributes();
    update.set(pk_attr, pk).set(sk_attr, sk)
}

/// An update's part that takes `item` out of the index.
pub fn unplace(update: Update) -> Update {
    let (pk_attr, sk_attr) = Index::Gsi1.key_attributes();
    update.remove(pk_attr).remove(sk_attr)
}

/// The keys due by `now` in `shard`, oldest first (the base table's keys
/// only: the items themselves are read consistently after).
pub fn query(shard: u32, now: DateTime<Utc>) -> Query {
    // `~` sorts after every character of a key, so entries at `now` count.
    Query::partition(partition(shard))
        .index(Index::Gsi1)
        .sort(SortCond::Le(format!("{}#~", utc_text(now))))
        .limit(PAGE)
        .keys_only()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn entries_sort_by_time_and_spread_over_the_shards() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 14, 0, 0).unwrap();
        let key = Key::new("CHURCH#c", "RECUR#r");
        let (index, pk, sk) = entry(&key, DueKind::Recurring, at);
        assert_eq!(index, Index::Gsi1);
        assert!(pk.starts_with("DUE#"));
        assert_eq!(sk, "2026-12-06T14:00:00Z#RECUR#CHURCH#c#RECUR#r");
        let Some(SortCond::Le(bound)) = query(0, at).sort else {
            panic!("a due query bounds the sort key");
        };
        assert!(sk.as_str() <= bound.as_str());
        let later = entry(&key, DueKind::Recurring, at + chrono::Duration::seconds(1)).2;
        assert!(later.as_str() > bound.as_str());
        let shards: std::collections::HashSet<_> = (0..200)
            .map(|i| shard_of(&Key::new("CHURCH#c", format!("RECUR#{i}"))))
            .collect();
        assert_eq!(shards.len(), SHARDS as usize);
    }
}
