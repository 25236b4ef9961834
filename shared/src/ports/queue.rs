//! The queue port: one SQS-style queue with visibility timeouts and a
//! dead-letter queue after a number of receives.

use std::time::Duration;

use async_trait::async_trait;

use super::BackendError;

/// SQS's limits, enforced here for both adapters.
pub const MAX_BATCH: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
pub const MAX_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    /// Held back this long before it can be received (backoff).
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Names this receive; delete and change-visibility take it.
    pub receipt_handle: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// When it was first sent, in Unix milliseconds.
    pub sent_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("invalid queue request: {0}")]
    Invalid(String),
    #[error("receipt handle is unknown or no longer valid")]
    StaleReceipt,
    #[error("queue backend failed while trying to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: BackendError,
    },
}

impl QueueError {
    pub fn backend(action: &'static str, source: impl Into<BackendError>) -> Self {
        QueueError::Backend {
            action,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Sends any number of messages, 10 (and at most 256 KiB) per request.
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError>;
    /// Up to `max` (1–10) messages, waiting up to `wait` (long poll) for the first.
    /// Each is hidden from other receivers for `visibility`, or the queue's default.
    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Hides a received message for `timeout` from now (0 = visible at once).
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError>;
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Messages waiting (visible or delayed), for health checks and tests.
    async fn approximate_depth(&self) -> Result<u64, QueueError>;
}

/// Checks shared by both adapters.
pub mod limits {
    use super::*;

    /// Validates messages and groups them into SQS-sized batches.
    pub fn batches(
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<Vec<OutgoingMessage>>, QueueError> {
        let mut batches: Vec<Vec<OutgoingMessage>> = Vec::new();
        let mut bytes = 0;
        for message in messages {
            let size = message.body.len();
            if message.body.is_empty() {
                return Err(QueueError::Invalid("message body is empty".into()));
            }
            if size > MAX_BATCH_BYTES {
                return Err(QueueError::Invalid(format!(
                    "message is {size} bytes; the limit is {MAX_BATCH_BYTES}"
                )));
            }
            if message.delay > MAX_DELAY {
                return Err(QueueError::Invalid("delay is over 15 minutes".into()));
            }
            match batches.last_mut() {
                Some(batch) if batch.len() < MAX_BATCH && bytes + size <= MAX_BATCH_BYTES => {
                    bytes += size;
                    batch.push(message);
                }
                _ => {
                    bytes = size;
                    batches.push(vec![message]);
                }
            }
        }
        Ok(batches)
    }

    pub fn check_receive(
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<(), QueueError> {
        if !(1..=MAX_BATCH as u32).contains(&max) {
            return Err(QueueError::Invalid("receive takes 1 to 10 messages".into()));
        }
        if wait > MAX_WAIT {
            return Err(QueueError::Invalid("wait is over 20 seconds".into()));
        }
        check_visibility(visibility.unwrap_or_default())
    }

    pub fn check_visibility(timeout: Duration) -> Result<(), QueueError> {
        if timeout > MAX_VISIBILITY {
            return Err(QueueError::Invalid(
                "visibility timeout is over 12 hours".into(),
            ));
        }
        Ok(())
    }
}
