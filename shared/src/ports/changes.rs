//! The change stream port: every write to the table, as DynamoDB Streams
//! records it with `NEW_AND_OLD_IMAGES` — the item before and after, in
//! order per item, at least once to whoever reads it.
//!
//! On AWS, Lambda's event source mapping reads the stream and hands the
//! aggregator batches; the local stack's poller reads this port to do the
//! same. The conformance suite (`tests/suite/conformance/changes.rs`) holds
//! both adapters to what DynamoDB Streams promises: every write appears
//! once in its shard, a shard's records come oldest first, and reading
//! after a sequence number resumes exactly there.

use async_trait::async_trait;

use super::BackendError;
use super::table::{Item, Key};

/// What a write did to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    /// DynamoDB Streams' `eventName` for it.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Modify => "MODIFY",
            ChangeKind::Remove => "REMOVE",
        }
    }

    pub fn from_name(name: &str) -> Option<ChangeKind> {
        [ChangeKind::Insert, ChangeKind::Modify, ChangeKind::Remove]
            .into_iter()
            .find(|k| k.name() == name)
    }

    /// What a write did, from whether the item was there before and after.
    pub fn of(before: bool, after: bool) -> ChangeKind {
        match (before, after) {
            (false, _) => ChangeKind::Insert,
            (true, true) => ChangeKind::Modify,
            (true, false) => ChangeKind::Remove,
        }
    }
}

/// One write, as the stream recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The record's place in its shard: increasing, never reused. Digits
    /// only, as DynamoDB's; compare them as numbers, not as text.
    pub sequence: String,
    pub kind: ChangeKind,
    pub key: Key,
    /// The item before the write (`None` for an insert).
    pub old: Option<Item>,
    /// The item after the write (`None` for a remove).
    pub new: Option<Item>,
    /// When the write happened, in Unix seconds (DynamoDB's
    /// `ApproximateCreationDateTime`).
    pub at_unix: i64,
}

/// One shard of the stream; a closed shard has no more records to come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    /// Read the parent to its end before this one (DynamoDB's lineage).
    pub parent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// The shard is not (or no longer) in the stream.
    #[error("no shard `{0}` in the stream")]
    UnknownShard(String),
    #[error("change stream backend failed while trying to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: BackendError,
    },
}

impl ChangesError {
    pub fn backend(action: &'static str, source: impl Into<BackendError>) -> Self {
        ChangesError::Backend {
            action,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait Changes: Send + Sync {
    /// The stream's shards, parents before their children.
    async fn shards(&self) -> Result<Vec<Shard>, ChangesError>;

    /// Up to `max` records of `shard` after the record `after` (from the
    /// oldest kept record when `None`), oldest first; empty when there are
    /// none yet.
    async fn read(
        &self,
        shard: &str,
        after: Option<&str>,
        max: u32,
    ) -> Result<Vec<Change>, ChangesError>;
}

/// Orders two sequence numbers of one shard (digits of any length).
pub fn compare_sequences(a: &str, b: &str) -> std::cmp::Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}
