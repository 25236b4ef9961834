//! The dead-letter queues, for the on-call engineer: list what gave up,
//! show one, send some or all back to their queue, or purge them.
//!
//! Works on the queue port, so the same code runs against SQS and the local
//! stack's embedded queues. What it prints of a job is its ids (church,
//! message, conversation) and its recipient count — never a phone, a name
//! or a text, which jobs do not carry and the output could not leak.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::ports::{OutgoingMessage, Queue, QueueError, ReceivedMessage};

/// How long a received dead letter stays hidden while the command works;
/// what it does not take is made visible again as soon as it is done.
const HOLD: Duration = Duration::from_secs(300);

/// The ids a job carries (every job of the three queues has a church and a message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobIds {
    pub church_id: Option<String>,
    pub message_id: Option<String>,
    pub conversation_id: Option<String>,
    #[serde(default)]
    member_ids: Vec<String>,
}

impl JobIds {
    fn of(body: &str) -> Self {
        serde_json::from_str(body).unwrap_or_default()
    }

    /// Recipients of a send job (0 for other jobs).
    pub fn recipients(&self) -> usize {
        self.member_ids.len()
    }
}

/// One dead letter, as the ops command shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    /// Receives before it gave up (counted in the dead-letter queue too).
    pub receive_count: u32,
    /// When it was first sent, Unix milliseconds.
    pub sent_at_ms: i64,
    pub job: JobIds,
}

impl DeadLetter {
    fn of(message: &ReceivedMessage) -> Self {
        Self {
            message_id: message.message_id.clone(),
            receive_count: message.receive_count,
            sent_at_ms: message.sent_at_ms,
            job: JobIds::of(&message.body),
        }
    }
}

/// Which dead letters a redrive takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// Queue message ids, as `list` shows them.
    Only(BTreeSet<String>),
}

impl Selection {
    fn takes(&self, message_id: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Only(ids) => ids.contains(message_id),
        }
    }
}

/// Receives every message of `queue` once, up to `limit`, each hidden
/// from other receivers while the command works on it.
async fn receive_all(queue: &dyn Queue, limit: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
    let mut received = Vec::new();
    while received.len() < limit {
        let batch = queue.receive(10, Duration::ZERO, Some(HOLD)).await?;
        if batch.is_empty() {
            break;
        }
        received.extend(batch);
    }
    Ok(received)
}

/// Makes messages the command did not take visible again at once.
async fn release(queue: &dyn Queue, messages: &[ReceivedMessage]) -> Result<(), QueueError> {
    for message in messages {
        queue
            .change_visibility(&message.receipt_handle, Duration::ZERO)
            .await?;
    }
    Ok(())
}

/// Up to `limit` dead letters, oldest first; they stay in the queue.
pub async fn list(queue: &dyn Queue, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
    let received = receive_all(queue, limit).await?;
    release(queue, &received).await?;
    let mut letters: Vec<DeadLetter> = received.iter().map(DeadLetter::of).collect();
    letters.sort_by_key(|l| l.sent_at_ms);
    Ok(letters)
}

/// Sends the selected dead letters back to `target` (their queue) and
/// removes them from `dead_letters`; returns how many moved. Each is sent
/// before it is deleted, so a crash between the two repeats a job (which
/// every consumer tolerates) rather than losing one.
pub async fn redrive(
    dead_letters: &dyn Queue,
    target: &dyn Queue,
    selection: &Selection,
) -> Result<usize, QueueError> {
    let (taken, kept): (Vec<_>, Vec<_>) = receive_all(dead_letters, usize::MAX)
        .await?
        .into_iter()
        .partition(|m| selection.takes(&m.message_id));
    release(dead_letters, &kept).await?;
    for (moved, message) in taken.iter().enumerate() {
        let sent = target
            .send_batch(vec![OutgoingMessage::new(message.body.clone())])
            .await;
        if let Err(e) = sent.and(dead_letters.delete(&message.receipt_handle).await) {
            // What was not moved is made visible again, for the next try.
            release(dead_letters, &taken[moved..]).await.ok();
            return Err(e);
        }
    }
    Ok(taken.len())
}

/// Deletes every dead letter; returns how many.
pub async fn purge(dead_letters: &dyn Queue) -> Result<usize, QueueError> {
    let received = receive_all(dead_letters, usize::MAX).await?;
    for message in &received {
        dead_letters.delete(&message.receipt_handle).await?;
    }
    Ok(received.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_shows_its_ids_and_recipient_count_only() {
        let job = JobIds::of(
            r#"{"churchId":"c1","messageId":"m1","memberIds":["a","b"],"text":"secret"}"#,
        );
        assert_eq!(job.church_id.as_deref(), Some("c1"));
        assert_eq!(job.message_id.as_deref(), Some("m1"));
        assert_eq!(job.recipients(), 2);
        assert!(!format!("{job:?}").contains("secret"));
    }

    #[test]
    fn a_body_that_is_not_a_job_shows_no_ids() {
        assert_eq!(JobIds::of("not json"), JobIds::default());
    }
}
