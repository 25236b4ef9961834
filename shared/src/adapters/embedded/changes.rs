//! The change stream on SQLite: the embedded table records every write
//! that changed an item (`record`, in the write's own SQLite transaction),
//! and `EmbeddedChanges` reads them back as DynamoDB Streams would.
//!
//! Like DynamoDB, the stream is cut into shards by partition key, so one
//! item's records stay in order in one shard while shards are read (and
//! aggregated) independently; and records are kept for 24 hours.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use super::store::{Store, StoreError};
use crate::ports::changes::{Change, ChangeKind, Changes, ChangesError, Shard};
use crate::ports::table::{Item, Key, TableError};

/// How long the stream keeps a record (DynamoDB Streams: 24 hours).
pub const RETENTION_SECS: i64 = 24 * 60 * 60;
/// Shards of the embedded stream: enough that the aggregator meets the
/// concurrency DynamoDB's many shards bring (two of them writing one counter).
pub const SHARDS: u32 = 4;
/// Sequence numbers are zero-padded to DynamoDB's shortest (21 digits).
const SEQUENCE_DIGITS: usize = 21;

fn shard_of(pk: &str) -> u32 {
    let digest = Sha256::digest(pk.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % SHARDS
}

fn shard_id(n: u32) -> String {
    format!("shardId-embedded-{n:04}")
}

fn shard_number(id: &str) -> Option<u32> {
    id.strip_prefix("shardId-embedded-")?
        .parse()
        .ok()
        .filter(|n| *n < SHARDS)
}

fn encode(item: Option<&Item>) -> Result<Option<String>, TableError> {
    item.map(serde_json::to_string)
        .transpose()
        .map_err(|e| TableError::backend("encode a change", e))
}

/// Records the write of `key` from `old` to `new` on the stream.
pub(super) fn record(
    tx: &Transaction<'_>,
    key: &Key,
    old: Option<&Item>,
    new: Option<&Item>,
    at_unix: i64,
) -> Result<(), TableError> {
    let kind = ChangeKind::of(old.is_some(), new.is_some()).name();
    tx.prepare_cached(
        "INSERT INTO changes (shard, kind, pk, sk, old, new, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        shard_of(&key.pk),
        kind,
        key.pk,
        key.sk,
        encode(old)?,
        encode(new)?,
        at_unix
    ])?;
    Ok(())
}

/// Drops records older than `cutoff_unix` (past the stream's retention).
pub(super) fn forget_before(tx: &Transaction<'_>, cutoff_unix: i64) -> Result<(), TableError> {
    tx.execute("DELETE FROM changes WHERE at < ?1", [cutoff_unix])?;
    Ok(())
}

impl From<StoreError> for ChangesError {
    fn from(e: StoreError) -> Self {
        ChangesError::backend("use the embedded store", e)
    }
}

impl From<rusqlite::Error> for ChangesError {
    fn from(e: rusqlite::Error) -> Self {
        ChangesError::backend("read the embedded change stream", e)
    }
}

fn decode(raw: Option<String>) -> Result<Option<Item>, ChangesError> {
    raw.map(|body| serde_json::from_str(&body))
        .transpose()
        .map_err(|e| ChangesError::backend("decode a change", e))
}

#[derive(Clone)]
pub struct EmbeddedChanges {
    store: Store,
}

impl EmbeddedChanges {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Where `consumer` has read `shard` to (the local event source
    /// mapping's checkpoint, kept across restarts as Lambda keeps its own).
    pub async fn checkpoint(
        &self,
        consumer: &str,
        shard: &str,
    ) -> Result<Option<String>, ChangesError> {
        let (consumer, shard) = (consumer.to_owned(), shard.to_owned());
        self.store
            .run(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT seq FROM change_checkpoints WHERE consumer = ?1 AND shard = ?2",
                    )?
                    .query_row(params![consumer, shard], |row| row.get(0))
                    .optional()?)
            })
            .await
    }

    pub async fn set_checkpoint(
        &self,
        consumer: &str,
        shard: &str,
        sequence: &str,
    ) -> Result<(), ChangesError> {
        let (consumer, shard, sequence) =
            (consumer.to_owned(), shard.to_owned(), sequence.to_owned());
        self.store
            .run(move |conn| {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO change_checkpoints (consumer, shard, seq) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![consumer, shard, sequence])?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl Changes for EmbeddedChanges {
    async fn shards(&self) -> Result<Vec<Shard>, ChangesError> {
        Ok((0..SHARDS)
            .map(|n| Shard {
                id: shard_id(n),
                parent: None,
            })
            .collect())
    }

    async fn read(
        &self,
        shard: &str,
        after: Option<&str>,
        max: u32,
    ) -> Result<Vec<Change>, ChangesError> {
        let number = shard_number(shard).ok_or_else(|| ChangesError::UnknownShard(shard.into()))?;
        let after: i64 = match after {
            None => 0,
            Some(seq) => seq
                .parse()
                .map_err(|_| ChangesError::UnknownShard(format!("{shard} at {seq}")))?,
        };
        // Only the rows are read on the store's thread; the images are
        // parsed here, so a reader never holds up the writers.
        let rows = self
            .store
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, kind, pk, sk, old, new, at FROM changes
                     WHERE shard = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?;
                let rows = stmt.query_map(params![number, after, max], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                })?;
                Ok::<_, ChangesError>(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        rows.into_iter()
            .map(|(seq, kind, pk, sk, old, new, at_unix)| {
                Ok(Change {
                    sequence: format!("{seq:0w$}", w = SEQUENCE_DIGITS),
                    // Written by `record`, so always a name it knows.
                    kind: ChangeKind::from_name(&kind).unwrap_or(ChangeKind::Remove),
                    key: Key::new(pk, sk),
                    old: decode(old)?,
                    new: decode(new)?,
                    at_unix,
                })
            })
            .collect()
    }
}
