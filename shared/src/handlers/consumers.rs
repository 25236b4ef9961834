//! The SQS consumers of the broadcast pipeline: each record is one job;
//! failed jobs are reported (`ReportBatchItemFailures`) so only they come
//! back after their visibility timeout, and poison ends in the DLQ.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::app::App;
use crate::conversations::media::{self, CopyDeps, MediaJob};
use crate::directory::cleanup::{self, CleanupJob, Scope};
use crate::messaging::fanout::{self, SendJob};
use crate::messaging::send::FanoutJob;
use crate::messaging::sender::{Outcome, Sender, backoff};
use crate::metrics::{Tally, Timing};
use crate::ports::queue::{MAX_DELAY, OutgoingMessage};
use crate::registry::EventError;

fn failure(record: &SqsMessage) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = record.message_id.clone().unwrap_or_default();
    failure
}

fn respond(failures: Vec<BatchItemFailure>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// The record's job, or `None` (logged) when it is unreadable: it fails
/// every receive and ends in the dead-letter queue.
fn job_of<T: serde::de::DeserializeOwned>(record: &SqsMessage, kind: &str) -> Option<T> {
    match serde_json::from_str(record.body.as_deref().unwrap_or_default()) {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::error!(error = %e, kind, "unreadable job; it will reach the DLQ");
            None
        }
    }
}

/// What the fan-out queue carries: pages of a broadcast's audience, and
/// pages of what a branch or group delete left to do.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum FanoutQueueJob {
    Cleanup(CleanupJob),
    Broadcast(FanoutJob),
}

/// The fan-out consumer.
pub async fn fanout(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, EventError> {
    let mut failures = Vec::new();
    for record in &event.records {
        let Some(job) = job_of::<FanoutQueueJob>(record, "fan-out") else {
            failures.push(failure(record));
            continue;
        };
        let failed = match job {
            FanoutQueueJob::Broadcast(job) => {
                let span = tracing::info_span!("fanout", church_id = %job.church_id, message_id = %job.message_id);
                let now = app.clock.now().to_rfc3339();
                fanout::step(
                    app.table.as_ref(),
                    app.send_queue.as_ref(),
                    app.fanout_queue.as_ref(),
                    job,
                    &now,
                )
                .instrument(span)
                .await
                .map_err(|e| e.to_string())
            }
            FanoutQueueJob::Cleanup(job) => {
                let span = tracing::info_span!("cleanup", church_id = %job.church_id);
                let scope = Scope {
                    table: app.table.as_ref(),
                    church: job.church_id,
                    now: app.clock.now(),
                };
                cleanup::step(&scope, app.fanout_queue.as_ref(), &job)
                    .instrument(span)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(e) = failed {
            tracing::error!(error = %e, "fan-out queue job failed; retried");
            failures.push(failure(record));
        }
    }
    Ok(respond(failures))
}

/// The media consumer: copies inbound MMS files into the bucket.
pub async fn media(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, EventError> {
    let deps = CopyDeps {
        table: app.table.as_ref(),
        blobs: app.blobs.as_ref(),
        http: &app.http,
    };
    let mut failures = Vec::new();
    for record in &event.records {
        let Some(job) = job_of::<MediaJob>(record, "media") else {
            failures.push(failure(record));
            continue;
        };
        let span =
            tracing::info_span!("media", church_id = %job.church_id, message_id = %job.message_id);
        if let Err(e) = media::copy(&deps, &job).instrument(span).await {
            tracing::warn!(church_id = %job.church_id, message_id = %job.message_id, error = %e, "media copy failed; retried");
            failures.push(failure(record));
        }
    }
    Ok(respond(failures))
}

/// The send consumer: the batch's jobs run at once, sharing one cap on
/// carrier requests in flight.
pub async fn send(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, EventError> {
    let (Some(carrier), Ok(vault)) = (app.carrier.as_deref(), app.vault()) else {
        return Err("the send consumer needs TELNYX_API_KEY, DATA_KEY and PHONE_HASH_KEY".into());
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
    let failures = futures_util::future::join_all(
        event
            .records
            .iter()
            .map(|record| send_record(app, &sender, record)),
    )
    .await;
    metrics.flush(app.emits_metrics);
    Ok(respond(failures.into_iter().flatten().collect()))
}

/// One send job; `Some` when it must come back.
async fn send_record(
    app: &App,
    sender: &Sender<'_>,
    record: &SqsMessage,
) -> Option<BatchItemFailure> {
    let body = record.body.as_deref().unwrap_or_default();
    let Some(job) = job_of::<SendJob>(record, "send") else {
        return Some(failure(record));
    };
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
    let span =
        tracing::info_span!("send", church_id = %job.church_id, message_id = %job.message_id);
    match sender.step(&job, attempt).instrument(span).await {
        Ok(Outcome::Done) => None,
        Ok(Outcome::Retry { count, after }) => {
            let delay = backoff(attempt, after);
            tracing::warn!(church_id = %job.church_id, message_id = %job.message_id, recipients = count, attempt, delay_ms = delay.as_millis() as u64, "retryable carrier errors; the job comes back");
            // Sooner than the queue's visibility timeout, with backoff and jitter.
            if let Some(receipt) = record.receipt_handle.as_deref()
                && let Err(e) = app.send_queue.change_visibility(receipt, delay).await
            {
                tracing::warn!(error = %e, "could not shorten the retry delay; the visibility timeout applies");
            }
            Some(failure(record))
        }
        Ok(Outcome::Later(wait)) => {
            // The number is booked ahead: a fresh copy comes back when it is
            // free (so waiting never counts towards the DLQ), and this
            // consumer moves on to other churches' work.
            let jitter = std::time::Duration::from_millis(rand::random_range(0..1_000));
            let copy = OutgoingMessage::new(body).delayed((wait + jitter).min(MAX_DELAY));
            match app.send_queue.send_batch(vec![copy]).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "could not defer the job; it comes back after its visibility timeout");
                    Some(failure(record))
                }
            }
        }
        Err(e) => {
            tracing::error!(church_id = %job.church_id, message_id = %job.message_id, error = %e, "send step failed; retried");
            Some(failure(record))
        }
    }
}
