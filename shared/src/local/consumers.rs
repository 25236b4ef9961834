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
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

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

/// One poller per queue, as Lambda's event source mapping: it receives a
/// batch whenever an invocation slot is free (at most the trigger's
/// `MaximumConcurrency` at once) and runs each batch as its own invocation.
/// (Idle pollers per slot would each hit the store every 25 ms.)
pub async fn run(
    app: Arc<App>,
    queue: Arc<dyn Queue>,
    trigger: QueueTrigger,
    function_id: String,
    handler: SqsHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let batch = trigger.batch_size.clamp(1, 10);
    let slots = Arc::new(Semaphore::new(trigger.maximum_concurrency.max(1) as usize));
    let mut invocations = JoinSet::new();
    while !*shutdown.borrow() {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.changed() => break,
        };
        // Reap finished invocations so the set does not grow.
        while invocations.try_join_next().is_some() {}
        let received = tokio::select! {
            received = queue.receive(batch, LONG_POLL, None) => received,
            _ = shutdown.changed() => break,
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
        let (app, queue, trigger, function_id) = (
            Arc::clone(&app),
            Arc::clone(&queue),
            trigger.clone(),
            function_id.clone(),
        );
        invocations.spawn(async move {
            invoke(
                &app,
                queue.as_ref(),
                &trigger,
                &function_id,
                handler,
                messages,
            )
            .await;
            drop(permit);
        });
    }
    // Like the loop before it, stopping lets running invocations finish.
    while invocations.join_next().await.is_some() {}
}

/// One invocation: the handler on a batch, then the deletes Lambda makes.
async fn invoke(
    app: &App,
    queue: &dyn Queue,
    trigger: &QueueTrigger,
    function_id: &str,
    handler: SqsHandler,
    messages: Vec<ReceivedMessage>,
) {
    let event = match sqs_event(&trigger.queue, &messages) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(function = %function_id, error = %e, "could not build the SQS event");
            return;
        }
    };
    let failed: HashSet<String> = match handler(app, event).await {
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
            return;
        }
    };
    for message in messages.iter().filter(|m| !failed.contains(&m.message_id)) {
        if let Err(e) = queue.delete(&message.receipt_handle).await {
            tracing::error!(function = %function_id, error = %e, "delete after processing failed");
        }
    }
}
