//! The one loop of every SQS consumer: each record's body read as the
//! queue's job, handled in its own span, a bounded number at once, and the
//! records to retry reported (`ReportBatchItemFailures`), so only they come
//! back after their visibility timeout and poison ends in the DLQ.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use tracing::Instrument;

/// Records of one batch handled at once. The send consumer always ran its
/// whole batch together (its trigger's `BatchSize` is 10, SQS's most
/// without a batching window), its carrier requests capped by its own
/// semaphore, not here; the other consumers take smaller batches.
pub const RECORDS_IN_FLIGHT: usize = 10;

/// A job one queue carries.
pub trait Job: serde::de::DeserializeOwned {
    /// What the logs call it.
    const KIND: &'static str;

    /// The span its work runs in, naming what it works on.
    fn span(&self) -> tracing::Span;
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done with (Lambda deletes it).
    Done,
    /// Comes back after its visibility timeout (or sooner when the consumer
    /// shortened it), and past `maxReceiveCount` moves to the DLQ.
    Retry,
}

/// Runs `handle` on each record's job, at most [`RECORDS_IN_FLIGHT`] at a
/// time; the response names the records to retry. An unreadable body is
/// logged and reported every time, so it ends in the dead-letter queue.
pub async fn each_record<'e, J, F, Fut>(event: &'e SqsEvent, handle: F) -> SqsBatchResponse
where
    J: Job,
    F: Fn(&'e SqsMessage, J) -> Fut,
    Fut: Future<Output = Handled>,
{
    // The futures are made up front: a stream's own closures would leave
    // the Lambda handler's future not `Send` (higher-ranked lifetimes).
    let records: Vec<_> = event
        .records
        .iter()
        .map(|record| {
            let span = tracing::info_span!(
                "sqs_record",
                queue = J::KIND,
                sqs_message_id = record.message_id.as_deref().unwrap_or_default()
            );
            one(record, &handle).instrument(span)
        })
        .collect();
    let failures: Vec<Option<BatchItemFailure>> = futures_util::stream::iter(records)
        .buffer_unordered(RECORDS_IN_FLIGHT)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures.into_iter().flatten().collect();
    response
}

/// One record; the failure to report when it must come back.
async fn one<'e, J, F, Fut>(record: &'e SqsMessage, handle: &F) -> Option<BatchItemFailure>
where
    J: Job,
    F: Fn(&'e SqsMessage, J) -> Fut,
    Fut: Future<Output = Handled>,
{
    let job = match serde_json::from_str::<J>(record.body.as_deref().unwrap_or_default()) {
        Ok(job) => job,
        Err(e) => {
            tracing::error!(error = %e, kind = J::KIND, "unreadable job; it will reach the DLQ");
            return Some(failure(record));
        }
    };
    let span = job.span();
    match handle(record, job).instrument(span).await {
        Handled::Done => None,
        Handled::Retry => Some(failure(record)),
    }
}

fn failure(record: &SqsMessage) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = record.message_id.clone().unwrap_or_default();
    failure
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    #[derive(serde::Deserialize)]
    struct Numbered {
        n: u32,
    }

    impl Job for Numbered {
        const KIND: &'static str = "test";
        fn span(&self) -> tracing::Span {
            tracing::info_span!("numbered", n = self.n)
        }
    }

    fn event(bodies: &[&str]) -> SqsEvent {
        let records: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| json!({ "messageId": format!("m{i}"), "body": body }))
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        let mut ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    #[tokio::test]
    async fn reports_the_records_to_retry_and_the_unreadable_ones() {
        let event = event(&[r#"{"n":1}"#, r#"{"n":2}"#, "not json", r#"{"n":4}"#]);
        let response = each_record(&event, |_, job: Numbered| async move {
            if job.n.is_multiple_of(2) {
                Handled::Retry
            } else {
                Handled::Done
            }
        })
        .await;
        assert_eq!(failed(&response), ["m1", "m2", "m3"]);
    }

    #[tokio::test]
    async fn runs_records_at_once_but_never_more_than_the_bound() {
        let bodies: Vec<String> = (0..25).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
        let event = event(&bodies.iter().map(String::as_str).collect::<Vec<_>>());
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let response = each_record(&event, |_, _: Numbered| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            Handled::Done
        })
        .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(most.load(Ordering::SeqCst), RECORDS_IN_FLIGHT);
    }
}
