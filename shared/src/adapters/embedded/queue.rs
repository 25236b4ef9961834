//! The queue port on SQLite, with SQS's semantics: a received message is
//! hidden for its visibility timeout and comes back unless deleted; past
//! `max_receive_count` receives it moves to the dead-letter queue.
//! Messages live in the same file as the table, so a crash loses none.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::store::{Store, StoreError, now_ms};
use crate::ports::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage, limits};

/// How often a long poll looks again for messages.
const POLL_EVERY: Duration = Duration::from_millis(25);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub visibility_timeout: Duration,
    /// Receives after which a message moves to `dead_letter` (SQS's redrive policy).
    pub max_receive_count: Option<u32>,
    pub dead_letter: Option<String>,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: None,
            dead_letter: None,
        }
    }

    pub fn visibility(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    pub fn dead_letter_after(mut self, receives: u32, queue: impl Into<String>) -> Self {
        self.max_receive_count = Some(receives);
        self.dead_letter = Some(queue.into());
        self
    }
}

#[derive(Clone)]
pub struct EmbeddedQueue {
    store: Store,
    spec: QueueSpec,
}

impl EmbeddedQueue {
    pub fn new(store: Store, spec: QueueSpec) -> Self {
        Self { store, spec }
    }

    pub fn spec(&self) -> &QueueSpec {
        &self.spec
    }

    /// One receive attempt without waiting.
    async fn receive_now(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let spec = self.spec.clone();
        self.store
            .run(move |conn| {
                let now = now_ms();
                let tx = conn.transaction()?;
                let mut received = Vec::new();
                {
                    let mut ready = tx.prepare(
                        "SELECT id, body, receive_count, sent_at_ms FROM queue_messages
                         WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, seq LIMIT ?3",
                    )?;
                    // Read a few extra: some may move to the dead-letter queue instead.
                    let rows = ready
                        .query_map(params![spec.name, now, i64::from(max) * 2], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?, r.get::<_, i64>(3)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()?;
                    for (id, body, count, sent_at_ms) in rows {
                        if received.len() == max as usize {
                            break;
                        }
                        let count = count + 1;
                        if let (Some(limit), Some(dlq)) = (spec.max_receive_count, &spec.dead_letter)
                            && count > limit
                        {
                            tx.execute(
                                "UPDATE queue_messages SET queue = ?1, receive_count = 0, receipt = NULL,
                                 visible_at_ms = ?2 WHERE id = ?3",
                                params![dlq, now, id],
                            )?;
                            continue;
                        }
                        let receipt = format!("{id}.{}", ulid::Ulid::new());
                        let visible_at = now + i64::try_from(visibility.as_millis()).unwrap_or(i64::MAX / 2);
                        tx.execute(
                            "UPDATE queue_messages SET receive_count = ?1, receipt = ?2, visible_at_ms = ?3 WHERE id = ?4",
                            params![count, receipt, visible_at, id],
                        )?;
                        received.push(ReceivedMessage {
                            message_id: id,
                            receipt_handle: receipt,
                            body,
                            receive_count: count,
                            sent_at_ms,
                        });
                    }
                }
                tx.commit()?;
                Ok(received)
            })
            .await
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::backend("use the embedded store", e)
    }
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::backend("query the embedded queue", e)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        let batches = limits::batches(messages)?;
        let queue = self.spec.name.clone();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let now = now_ms();
                for message in batches.into_iter().flatten() {
                    tx.execute(
                        "INSERT INTO queue_messages (id, queue, body, visible_at_ms, sent_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![ulid::Ulid::new().to_string(), queue, message.body, now + millis(message.delay), now],
                    )?;
                }
                Ok(tx.commit()?)
            })
            .await
    }

    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        limits::check_receive(max, wait, visibility)?;
        let visibility = visibility.unwrap_or(self.spec.visibility_timeout);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let received = self.receive_now(max, visibility).await?;
            if !received.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(received);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        limits::check_visibility(timeout)?;
        let receipt = receipt_handle.to_owned();
        let changed = self
            .store
            .run(move |conn| {
                Ok::<_, QueueError>(conn.execute(
                    "UPDATE queue_messages SET visible_at_ms = ?1 WHERE receipt = ?2",
                    params![now_ms() + millis(timeout), receipt],
                )?)
            })
            .await?;
        if changed == 0 {
            return Err(QueueError::StaleReceipt);
        }
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let receipt = receipt_handle.to_owned();
        // Like SQS, deleting an already-deleted message succeeds.
        self.store
            .run(move |conn| {
                conn.execute("DELETE FROM queue_messages WHERE receipt = ?1", [receipt])?;
                Ok(())
            })
            .await
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        let queue = self.spec.name.clone();
        self.store
            .run(move |conn| {
                let n: Option<i64> = conn
                    .query_row(
                        "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                        [queue],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(n.unwrap_or(0).max(0) as u64)
            })
            .await
    }
}
