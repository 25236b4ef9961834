//! The change stream port on DynamoDB Streams: the table's stream, found
//! through `DescribeTable`, read shard by shard with shard iterators.
//!
//! On Lambda the event source mapping reads the stream; this adapter is for
//! the conformance suite and tools that read it directly.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::operation::get_records::{GetRecordsError, GetRecordsOutput};
use aws_sdk_dynamodbstreams::types::{OperationType, Record, ShardIteratorType};
use tokio::sync::OnceCell;

use super::attribute::from_stream_attrs;
use crate::ports::changes::{Change, ChangeKind, Changes, ChangesError, Shard};
use crate::ports::table::Key;

/// The most records one `GetRecords` call returns.
const GET_RECORDS_MAX: i32 = 1000;

/// `GetRecords` calls one `read` makes while pages come back empty. An open
/// shard may answer empty pages before records that are there; following
/// the next iterator a few times gets past them, without spending much of
/// the shard's 5 reads a second when there is truly nothing new.
const PAGES_PER_READ: usize = 3;

#[derive(Debug)]
pub struct AwsChanges {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: Client,
    table: String,
    /// The table's stream, resolved on first use: the stream is created with
    /// the table (template.yaml, `provision::create_table`) and never replaced.
    stream_arn: OnceCell<String>,
    /// Per shard, the iterator where the last read stopped and the record it
    /// stopped after. A read resuming there continues that iterator instead
    /// of asking for a new one, so repeated reads of an open shard get past
    /// empty pages instead of starting over before them.
    resume: Mutex<HashMap<String, Resume>>,
}

#[derive(Debug)]
struct Resume {
    after: Option<String>,
    iterator: String,
}

impl AwsChanges {
    /// The change stream of `table`; `dynamodb` finds the stream, `streams` reads it.
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        streams: Client,
        table: impl Into<String>,
    ) -> Self {
        Self {
            dynamodb,
            streams,
            table: table.into(),
            stream_arn: OnceCell::new(),
            resume: Mutex::new(HashMap::new()),
        }
    }

    async fn stream_arn(&self) -> Result<&str, ChangesError> {
        const ACTION: &str = "find the table's stream";
        self.stream_arn
            .get_or_try_init(|| async {
                let out = self
                    .dynamodb
                    .describe_table()
                    .table_name(&self.table)
                    .send()
                    .await
                    .map_err(|e| ChangesError::backend(ACTION, e))?;
                let table = out.table();
                // A disabled stream may still be named as the latest one.
                let enabled = table
                    .and_then(|t| t.stream_specification())
                    .is_some_and(|s| s.stream_enabled());
                table
                    .and_then(|t| t.latest_stream_arn())
                    .filter(|_| enabled)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ChangesError::backend(
                            ACTION,
                            format!("table `{}` has no stream enabled", self.table),
                        )
                    })
            })
            .await
            .map(String::as_str)
    }

    /// A new iterator at the oldest kept record, or right after `after`.
    async fn new_iterator(&self, shard: &str, after: Option<&str>) -> Result<String, ChangesError> {
        const ACTION: &str = "get a shard iterator";
        let kind = match after {
            None => ShardIteratorType::TrimHorizon,
            Some(_) => ShardIteratorType::AfterSequenceNumber,
        };
        let out = self
            .streams
            .get_shard_iterator()
            .stream_arn(self.stream_arn().await?)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_sequence_number(after.map(str::to_owned))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => {
                    ChangesError::UnknownShard(shard.to_owned())
                }
                Some(s) if s.is_trimmed_data_access_exception() => {
                    ChangesError::UnknownShard(shard.to_owned())
                }
                _ => ChangesError::backend(ACTION, e),
            })?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| ChangesError::backend(ACTION, "DynamoDB Streams returned no iterator"))
    }

    fn resumed(&self, shard: &str, after: Option<&str>) -> Option<String> {
        // The map only saves calls: a panic elsewhere cannot leave it wrong.
        let resume = self.resume.lock().unwrap_or_else(|p| p.into_inner());
        resume
            .get(shard)
            .filter(|r| r.after.as_deref() == after)
            .map(|r| r.iterator.clone())
    }

    fn remember(&self, shard: &str, after: Option<&str>, next: Option<&str>) {
        let mut resume = self.resume.lock().unwrap_or_else(|p| p.into_inner());
        match next {
            Some(iterator) => {
                resume.insert(
                    shard.to_owned(),
                    Resume {
                        after: after.map(str::to_owned),
                        iterator: iterator.to_owned(),
                    },
                );
            }
            // A closed shard's end: nothing to resume.
            None => {
                resume.remove(shard);
            }
        }
    }

    async fn get_records(
        &self,
        iterator: &str,
        limit: i32,
    ) -> Result<GetRecordsOutput, SdkError<GetRecordsError>> {
        self.streams
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
    }
}

/// One stream record as a change.
fn change(record: &Record) -> Result<Change, ChangesError> {
    const ACTION: &str = "read a stream record";
    let missing = |what: &str| ChangesError::backend(ACTION, format!("the record has no {what}"));
    let kind = match record.event_name() {
        Some(OperationType::Insert) => ChangeKind::Insert,
        Some(OperationType::Modify) => ChangeKind::Modify,
        Some(OperationType::Remove) => ChangeKind::Remove,
        other => {
            return Err(ChangesError::backend(
                ACTION,
                format!("unknown event name {other:?}"),
            ));
        }
    };
    let data = record.dynamodb().ok_or_else(|| missing("dynamodb"))?;
    let sequence = data
        .sequence_number()
        .ok_or_else(|| missing("SequenceNumber"))?
        .to_owned();
    let keys = from_stream_attrs(data.keys().ok_or_else(|| missing("Keys"))?)
        .map_err(|e| ChangesError::backend(ACTION, e))?;
    let image = |attrs: Option<&HashMap<_, _>>| {
        attrs
            .map(from_stream_attrs)
            .transpose()
            .map_err(|e| ChangesError::backend(ACTION, e))
    };
    Ok(Change {
        sequence,
        kind,
        key: Key::of(&keys).map_err(|e| ChangesError::backend(ACTION, e))?,
        old: image(data.old_image())?,
        new: image(data.new_image())?,
        at_unix: data
            .approximate_creation_date_time()
            .ok_or_else(|| missing("ApproximateCreationDateTime"))?
            .secs(),
    })
}

/// Orders shards so every parent comes before its children, keeping
/// DescribeStream's order otherwise. A parent no longer listed (trimmed)
/// does not hold its child back.
fn parents_first(mut pending: Vec<Shard>) -> Vec<Shard> {
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let waiting: HashSet<String> = pending.iter().map(|s| s.id.clone()).collect();
        let (ready, rest): (Vec<Shard>, Vec<Shard>) = pending
            .into_iter()
            .partition(|s| s.parent.as_ref().is_none_or(|p| !waiting.contains(p)));
        if ready.is_empty() {
            // A lineage cycle, which DynamoDB never reports: keep them as listed.
            ordered.extend(rest);
            break;
        }
        ordered.extend(ready);
        pending = rest;
    }
    ordered
}

#[async_trait]
impl Changes for AwsChanges {
    async fn shards(&self) -> Result<Vec<Shard>, ChangesError> {
        const ACTION: &str = "describe the stream";
        let arn = self.stream_arn().await?;
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| ChangesError::backend(ACTION, e))?;
            let description = out.stream_description().ok_or_else(|| {
                ChangesError::backend(ACTION, "DynamoDB Streams returned no description")
            })?;
            for shard in description.shards() {
                let id = shard.shard_id().ok_or_else(|| {
                    ChangesError::backend(ACTION, "DynamoDB Streams listed a shard with no id")
                })?;
                shards.push(Shard {
                    id: id.to_owned(),
                    parent: shard.parent_shard_id().map(str::to_owned),
                });
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(parents_first(shards))
    }

    async fn read(
        &self,
        shard: &str,
        after: Option<&str>,
        max: u32,
    ) -> Result<Vec<Change>, ChangesError> {
        const ACTION: &str = "read stream records";
        if max == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(max).map_or(GET_RECORDS_MAX, |m| m.min(GET_RECORDS_MAX));
        let (mut iterator, mut fresh) = match self.resumed(shard, after) {
            Some(iterator) => (iterator, false),
            None => (self.new_iterator(shard, after).await?, true),
        };
        for _ in 0..PAGES_PER_READ {
            let out = match self.get_records(&iterator, limit).await {
                Ok(out) => out,
                // A remembered iterator may have outlived its 15 minutes, or
                // the records it pointed at: ask anew from `after`, which
                // answers as a first read there would.
                Err(e)
                    if !fresh
                        && e.as_service_error().is_some_and(|s| {
                            s.is_expired_iterator_exception()
                                || s.is_trimmed_data_access_exception()
                        }) =>
                {
                    iterator = self.new_iterator(shard, after).await?;
                    fresh = true;
                    continue;
                }
                Err(e) => {
                    return Err(match e.as_service_error() {
                        Some(s)
                            if s.is_resource_not_found_exception()
                                || s.is_trimmed_data_access_exception() =>
                        {
                            ChangesError::UnknownShard(shard.to_owned())
                        }
                        _ => ChangesError::backend(ACTION, e),
                    });
                }
            };
            let changes = out
                .records()
                .iter()
                .map(change)
                .collect::<Result<Vec<_>, _>>()?;
            let next = out.next_shard_iterator();
            let last = changes.last().map(|c| c.sequence.as_str()).or(after);
            self.remember(shard, last, next);
            match next {
                Some(next) if changes.is_empty() => iterator = next.to_owned(),
                _ => return Ok(changes),
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>) -> Shard {
        Shard {
            id: id.into(),
            parent: parent.map(Into::into),
        }
    }

    #[test]
    fn parents_come_before_their_children() {
        let listed = vec![
            shard("c", Some("b")),
            shard("b", Some("a")),
            shard("x", Some("trimmed")),
            shard("a", None),
        ];
        let ids: Vec<String> = parents_first(listed).into_iter().map(|s| s.id).collect();
        assert_eq!(ids, ["x", "a", "b", "c"]);
    }

    #[test]
    fn a_lineage_cycle_keeps_every_shard() {
        let listed = vec![shard("a", Some("b")), shard("b", Some("a"))];
        assert_eq!(parents_first(listed).len(), 2);
    }
}
