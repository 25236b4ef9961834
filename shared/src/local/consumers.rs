//! Runs the template's SQS consumers against the embedded queues as Lambda's
//! event source mapping would: batches of `BatchSize`, a real `SqsEvent`,
//! successes deleted, reported failures (or a failed invocation) left to
//! come back after their visibility timeout and, past `maxReceiveCount`,
//! to move to the dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;
use tokio::sync::watch;

use crate::app::App;
use crate::catalog::QueueTrigger;
use crate::ports::{Queue, ReceivedMessage};
use crate::registry::SqsHandler;

const LONG_POLL: Duration = Duration::from_millis(500);

/// The event Lambda would deliver for these messages.
pub fn sqs_event(
    queue_id: &str,
    messages: &[ReceivedMessage],
) -> Result<SqsEvent, serde_json::Error> {
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let records: Vec<_> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at_ms.to_string(),
                    "SenderId": "local",
                    "ApproximateFirstReceiveTimestamp": now,
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:local:000000000000:{queue_id}"),
                "awsRegion": "local",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records }))
}

pub async fn run(
    app: Arc<App>,
    queue: Arc<dyn Queue>,
    trigger: QueueTrigger,
    function_id: String,
    handler: SqsHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch = trigger.batch_size.clamp(1, 10);
    while !*shutdown.borrow() {
        let received = tokio::select! {
            received = queue.receive(batch, LONG_POLL, None) => received,
            _ = shutdown.changed() => return,
        };
        let messages = match received {
            Ok(messages) if messages.is_empty() => continue,
            Ok(messages) => messages,
            Err(e) => {
                tracing::error!(function = %function_id, error = %e, "receive failed");
                tokio::time::sleep(LONG_POLL).await;
                continue;
            }
        };
        let event = match sqs_event(&trigger.queue, &messages) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(function = %function_id, error = %e, "could not build the SQS event");
                continue;
            }
        };
        let failed: HashSet<String> = match handler(&app, event).await {
            // Without ReportBatchItemFailures, Lambda deletes the whole batch
            // when the invocation succeeds, whatever the response says.
            Ok(response) if trigger.reports_batch_item_failures => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Ok(_) => HashSet::new(),
            Err(e) => {
                tracing::error!(function = %function_id, error = %e, "consumer invocation failed; the batch will be retried");
                continue;
            }
        };
        for message in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
            if let Err(e) = queue.delete(&message.receipt_handle).await {
                tracing::error!(function = %function_id, error = %e, "delete after processing failed");
            }
        }
    }
}
