//! The SQS consumers of the broadcast pipeline: each record is one job;
//! failed jobs are reported (`ReportBatchItemFailures`) so only they come
//! back after their visibility timeout, and poison ends in the DLQ.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::app::App;
use crate::messaging::fanout::{self, SendJob};
use crate::messaging::send::FanoutJob;
use crate::messaging::sender::{SendStepError, Sender};
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

/// The fan-out consumer.
pub async fn fanout(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, EventError> {
    let mut failures = Vec::new();
    for record in &event.records {
        let job: FanoutJob = match serde_json::from_str(record.body.as_deref().unwrap_or_default())
        {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "unreadable fan-out job; it will reach the DLQ");
                failures.push(failure(record));
                continue;
            }
        };
        let span =
            tracing::info_span!("fanout", church_id = %job.church_id, message_id = %job.message_id);
        let _entered = span.enter();
        let now = app.clock.now().to_rfc3339();
        if let Err(e) = fanout::step(
            app.table.as_ref(),
            app.send_queue.as_ref(),
            app.fanout_queue.as_ref(),
            job,
            &now,
        )
        .await
        {
            tracing::error!(error = %e, "fan-out step failed; retried");
            failures.push(failure(record));
        }
    }
    Ok(respond(failures))
}

/// The send consumer.
pub async fn send(app: &App, event: SqsEvent) -> Result<SqsBatchResponse, EventError> {
    let (Some(carrier), Ok(vault)) = (app.carrier.as_deref(), app.vault()) else {
        return Err("the send consumer needs TELNYX_API_KEY, DATA_KEY and PHONE_HASH_KEY".into());
    };
    let sender = Sender {
        table: app.table.as_ref(),
        carrier,
        vault,
        webhook_url: app
            .config
            .public_url
            .as_ref()
            .map(|u| format!("{u}/api/webhooks/telnyx/status")),
        now: app.clock.now(),
    };
    let mut failures = Vec::new();
    for record in &event.records {
        let job: SendJob = match serde_json::from_str(record.body.as_deref().unwrap_or_default()) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "unreadable send job; it will reach the DLQ");
                failures.push(failure(record));
                continue;
            }
        };
        let attempt = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        match sender.step(&job, attempt).await {
            Ok(()) => {}
            Err(SendStepError::Retry { count, after }) => {
                let delay = crate::messaging::sender::backoff(attempt, after);
                tracing::warn!(message_id = %job.message_id, recipients = count, attempt, delay_ms = delay.as_millis() as u64, "retryable carrier errors; the job comes back");
                // Sooner than the queue's visibility timeout, with backoff and jitter.
                if let Some(receipt) = record.receipt_handle.as_deref()
                    && let Err(e) = app.send_queue.change_visibility(receipt, delay).await
                {
                    tracing::warn!(error = %e, "could not shorten the retry delay; the visibility timeout applies");
                }
                failures.push(failure(record));
            }
            Err(e) => {
                tracing::error!(message_id = %job.message_id, error = %e, "send step failed; retried");
                failures.push(failure(record));
            }
        }
    }
    Ok(respond(failures))
}
