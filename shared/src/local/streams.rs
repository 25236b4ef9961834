//! Runs the template's change-stream consumers against the embedded stream
//! as Lambda's event source mapping would: one poller per shard, batches of
//! up to `BatchSize` gathered for up to the batching window, a real
//! DynamoDB stream event, the checkpoint moved only past a batch that
//! succeeded — so a failed or crashed invocation's batch comes again
//! (at least once) — bisected on error, and given up to the on-failure
//! destination after the retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use crate::adapters::embedded::EmbeddedChanges;
use crate::app::App;
use crate::handlers::consumers::event_of;
use crate::ports::changes::{Change, Changes};
use crate::ports::{OutgoingMessage, Queue};
use crate::registry::StreamHandler;

/// How often an idle shard is read again.
const POLL: Duration = Duration::from_millis(50);
const STREAM_ARN: &str = "arn:aws:dynamodb:local:000000000000:table/koinonia/stream/local";

/// What the template's event source mapping asks of the poller.
#[derive(Clone)]
pub struct Mapping {
    pub function_id: String,
    pub handler: StreamHandler,
    pub batch_size: u32,
    pub batching_window: Duration,
    pub bisect_on_error: bool,
    pub maximum_retry_attempts: u32,
    /// The item `type`s its filter lets through (empty: all).
    pub item_types: Vec<String>,
    /// Where a batch given up on is reported.
    pub on_failure: Option<Arc<dyn Queue>>,
}

impl Mapping {
    fn passes(&self, change: &Change) -> bool {
        self.item_types.is_empty()
            || [&change.new, &change.old]
                .into_iter()
                .flatten()
                .any(|image| {
                    image
                        .get(crate::store::KIND)
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|t| self.item_types.iter().any(|w| w == t))
                })
    }
}

/// Polls every shard of the stream until `shutdown`.
pub async fn run(
    app: Arc<App>,
    changes: EmbeddedChanges,
    mapping: Mapping,
    shutdown: watch::Receiver<bool>,
) {
    let shards = match changes.shards().await {
        Ok(shards) => shards,
        Err(e) => {
            tracing::error!(function = %mapping.function_id, error = %e, "cannot list the stream's shards");
            return;
        }
    };
    let mut pollers = tokio::task::JoinSet::new();
    for shard in shards {
        pollers.spawn(poll_shard(
            Arc::clone(&app),
            changes.clone(),
            mapping.clone(),
            shard.id,
            shutdown.clone(),
        ));
    }
    while pollers.join_next().await.is_some() {}
}

/// One shard's poller. Like Lambda, it gathers a batch of up to
/// `BatchSize` records for up to the batching window, reading each record
/// once (kept in memory meanwhile), and moves the checkpoint past a batch
/// only once it is delivered — so a stopped stack reads it again.
async fn poll_shard(
    app: Arc<App>,
    changes: EmbeddedChanges,
    mapping: Mapping,
    shard: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut position = match changes.checkpoint(&mapping.function_id, &shard).await {
        Ok(position) => position,
        Err(e) => {
            tracing::error!(function = %mapping.function_id, shard, error = %e, "cannot read the stream checkpoint");
            return;
        }
    };
    let mut batch: Vec<Change> = Vec::new();
    let mut gathering_since: Option<Instant> = None;
    while !*shutdown.borrow() {
        let room = (mapping.batch_size as usize).saturating_sub(batch.len());
        let read = changes.read(&shard, position.as_deref(), room as u32);
        let records = tokio::select! {
            read = read => read,
            _ = shutdown.changed() => break,
        };
        match records {
            Ok(records) => {
                if let Some(last) = records.last() {
                    position = Some(last.sequence.clone());
                    gathering_since.get_or_insert_with(Instant::now);
                }
                batch.extend(records.into_iter().filter(|c| mapping.passes(c)));
            }
            Err(e) => {
                tracing::error!(function = %mapping.function_id, shard, error = %e, "cannot read the stream");
            }
        }
        let full = batch.len() >= mapping.batch_size as usize;
        let waited = gathering_since.is_some_and(|t| t.elapsed() >= mapping.batching_window);
        if full || waited {
            if !batch.is_empty() {
                deliver(&app, &mapping, &shard, std::mem::take(&mut batch)).await;
            }
            gathering_since = None;
            if let Some(done) = &position
                && let Err(e) = changes
                    .set_checkpoint(&mapping.function_id, &shard, done)
                    .await
            {
                tracing::error!(function = %mapping.function_id, shard, error = %e, "cannot move the stream checkpoint");
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Invokes the handler on `batch` until it succeeds, bisecting on error if
/// asked; past the retries, reports the batch to the on-failure
/// destination and goes on (as Lambda does).
async fn deliver(app: &App, mapping: &Mapping, shard: &str, batch: Vec<Change>) {
    let mut pending = vec![(batch, 0u32)];
    while let Some((batch, attempt)) = pending.pop() {
        let event = event_of(&batch, STREAM_ARN);
        let Err(e) = (mapping.handler)(app, event).await else {
            continue;
        };
        tracing::error!(function = %mapping.function_id, shard, records = batch.len(), attempt, error = %e, "stream invocation failed; the batch comes again");
        if attempt >= mapping.maximum_retry_attempts {
            give_up(mapping, shard, &batch).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(4))).await;
        if mapping.bisect_on_error && batch.len() > 1 {
            let mut first = batch;
            let second = first.split_off(first.len() / 2);
            // Popped last first: the first half goes before the second.
            pending.push((second, attempt + 1));
            pending.push((first, attempt + 1));
        } else {
            pending.push((batch, attempt + 1));
        }
    }
}

async fn give_up(mapping: &Mapping, shard: &str, batch: &[Change]) {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return;
    };
    tracing::error!(function = %mapping.function_id, shard, records = batch.len(), "stream batch given up after its retries");
    let Some(queue) = &mapping.on_failure else {
        return;
    };
    // What Lambda sends an on-failure destination: where the batch was, not its records.
    let info = json!({
        "requestContext": { "condition": "RetryAttemptsExhausted", "functionArn": mapping.function_id },
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "batchSize": batch.len(),
            "streamArn": STREAM_ARN,
        },
    });
    if let Err(e) = queue
        .send_batch(vec![OutgoingMessage::new(info.to_string())])
        .await
    {
        tracing::error!(function = %mapping.function_id, error = %e, "cannot report the batch given up");
    }
}
