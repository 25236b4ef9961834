//! The SQS consumers of the broadcast pipeline: each record is one job,
//! run through the one batch loop ([`batch::each_record`]); what each
//! consumer counts as a retry is its own. And the counts aggregator, on
//! the table's change stream.

mod batch;
mod stream_event;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::conversations::media::{self, CopyDeps, MediaJob};
use crate::directory::cleanup::{self, CleanupJob, Scope};
use crate::messaging::fanout;
use crate::messaging::jobs::{FanoutJob, SendJob};
use crate::messaging::sender::{Outcome, Sender, backoff};
use crate::metrics::{Tally, Timing};
use crate::ports::queue::{MAX_DELAY, OutgoingMessage};
pub use batch::RECORDS_IN_FLIGHT;
use batch::{Handled, Job, each_record};
pub use stream_event::{changes_of, event_of};

pub type CountsError = crate::messaging::aggregate::AggregateError;

/// The counts aggregator: one batch of the table's change stream, counted
/// once however often it comes (`messaging::aggregate`). An error gives
/// the batch back to the stream.
pub async fn counts(
    app: &App,
    event: aws_lambda_events::event::dynamodb::Event,
) -> Result<(), CountsError> {
    let changes = changes_of(event);
    let oldest = changes.iter().map(|c| c.at_unix).min();
    let counted = crate::messaging::aggregate::apply(app.table.as_ref(), &changes).await?;
    let lag_s = oldest.map(|at| (app.clock.now().timestamp() - at).max(0));
    tracing::info!(
        records = changes.len(),
        counted = counted.counted,
        stale = counted.stale,
        ignored = counted.ignored,
        retried = counted.retried,
        lag_s,
        "counted a stream batch"
    );
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// On Lambda the init already refuses to start without them (`App::require`).
    #[error("the send consumer needs TELNYX_API_KEY, DATA_KEY and PHONE_HASH_KEY")]
    SenderUnconfigured,
}

/// What the fan-out queue carries: pages of a broadcast's audience, and
/// pages of what a branch or group delete left to do.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FanoutQueueJob {
    Cleanup(CleanupJob),
    Broadcast(FanoutJob),
}

impl Job for FanoutQueueJob {
    const KIND: &'static str = "fan-out";
    fn span(&self) -> tracing::Span {
        match self {
            FanoutQueueJob::Broadcast(job) => {
                tracing::info_span!("fanout", church_id = %job.church_id, message_id = %job.message_id)
            }
            FanoutQueueJob::Cleanup(job) => {
                tracing::info_span!("cleanup", church_id = %job.church_id)
            }
        }
    }
}

impl Job for MediaJob {
    const KIND: &'static str = "media";
    fn span(&self) -> tracing::Span {
        tracing::info_span!("media", church_id = %self.church_id, message_id = %self.message_id)
    }
}

impl Job for SendJob {
    const KIND: &'static str = "send";
    fn span(&self) -> tracing::Span {
        tracing::info_span!("send", church_id = %self.church_id(), message_id = %self.message_id())
    }
}

/// The fan-out consumer.
pub async fn fanout(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, ConsumerError> {
    Ok(each_record(&event, |_, job| fanout_record(app, job)).await)
}

async fn fanout_record(app: &App, job: FanoutQueueJob) -> Handled {
    let failed = match job {
        FanoutQueueJob::Broadcast(job) => {
            let now = app.clock.now().to_rfc3339();
            fanout::step(
                app.table.as_ref(),
                app.send_queue.as_ref(),
                app.fanout_queue.as_ref(),
                job,
                &now,
            )
            .await
            .map_err(|e| e.to_string())
        }
        FanoutQueueJob::Cleanup(job) => {
            let scope = Scope {
                table: app.table.as_ref(),
                church: job.church_id,
                now: app.clock.now(),
            };
            cleanup::step(&scope, app.fanout_queue.as_ref(), &job)
                .await
                .map_err(|e| e.to_string())
        }
    };
    match failed {
        Ok(()) => Handled::Done,
        Err(e) => {
            tracing::error!(error = %e, "fan-out queue job failed; retried");
            Handled::Retry
        }
    }
}

/// The media consumer: copies inbound MMS files into the bucket.
pub async fn media(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, ConsumerError> {
    let deps = CopyDeps {
        table: app.table.as_ref(),
        blobs: app.blobs.as_ref(),
        http: &app.http,
    };
    let deps = &deps;
    Ok(each_record(&event, |_, job: MediaJob| async move {
        match media::copy(deps, &job).await {
            Ok(_) => Handled::Done,
            Err(e) => {
                tracing::warn!(church_id = %job.church_id, message_id = %job.message_id, error = %e, "media copy failed; retried");
                Handled::Retry
            }
        }
    })
    .await)
}

/// The send consumer: the batch's jobs run at once, sharing one cap on
/// carrier requests in flight.
pub async fn send(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, ConsumerError> {
    let (Some(carrier), Ok(vault)) = (app.carrier.as_deref(), app.vault()) else {
        return Err(ConsumerError::SenderUnconfigured);
    };
    let in_flight = Semaphore::new(app.config.send_concurrency);
    let booking = tokio::sync::Mutex::new(());
    let metrics = Tally::default();
    let sender = Sender {
        table: app.table.as_ref(),
        carrier,
        blobs: app.blobs.as_ref(),
        vault,
        clock: app.clock.as_ref(),
        webhook_url: app
            .config
            .public_url
            .as_ref()
            .map(|u| format!("{u}/api/webhooks/telnyx/status")),
        in_flight: &in_flight,
        booking: &booking,
        metrics: &metrics,
    };
    let response = each_record(&event, |record, job| send_record(app, &sender, record, job)).await;
    metrics.flush(app.emits_metrics);
    Ok(response)
}

/// One send job.
async fn send_record(app: &App, sender: &Sender<'_>, record: &SqsMessage, job: SendJob) -> Handled {
    let attempt = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    // First receives only (a retry's wait is its backoff); a deferred job's
    // fresh copy counts its deferral too.
    let sent_at = record
        .attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok());
    if let (1, Some(sent_at)) = (attempt, sent_at) {
        let lag = app.clock.now().timestamp_millis() - sent_at;
        sender.metrics.time(
            Timing::QueueLag,
            std::time::Duration::from_millis(lag.max(0) as u64),
        );
    }
    let (church_id, message_id) = (job.church_id(), job.message_id());
    match sender.run(&job, attempt).await {
        Ok(Outcome::Done) => Handled::Done,
        Ok(Outcome::Retry { count, after }) => {
            let delay = backoff(attempt, after);
            tracing::warn!(%church_id, %message_id, recipients = count, attempt, delay_ms = delay.as_millis() as u64, "retryable carrier errors; the job comes back");
            // Sooner than the queue's visibility timeout, with backoff and jitter.
            if let Some(receipt) = record.receipt_handle.as_deref()
                && let Err(e) = app.send_queue.change_visibility(receipt, delay).await
            {
                tracing::warn!(error = %e, "could not shorten the retry delay; the visibility timeout applies");
            }
            Handled::Retry
        }
        Ok(Outcome::Later(wait)) => {
            // The number is booked ahead: a fresh copy comes back when it is
            // free (so waiting never counts towards the DLQ), and this
            // consumer moves on to other churches' work.
            let jitter = std::time::Duration::from_millis(rand::random_range(0..1_000));
            let body = record.body.as_deref().unwrap_or_default();
            let copy = OutgoingMessage::new(body).delayed((wait + jitter).min(MAX_DELAY));
            match app.send_queue.send_batch(vec![copy]).await {
                Ok(()) => Handled::Done,
                Err(e) => {
                    tracing::warn!(error = %e, "could not defer the job; it comes back after its visibility timeout");
                    Handled::Retry
                }
            }
        }
        Err(e) => {
            tracing::error!(%church_id, %message_id, error = %e, "send step failed; retried");
            Handled::Retry
        }
    }
}
