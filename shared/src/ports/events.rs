//! The events port: domain events (`message.completed`, `member.opted_out`, …)
//! published for other consumers, such as a mail sender.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BackendError;

/// EventBridge takes at most 10 entries per PutEvents and 256 KiB per entry.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The `source` of every event this system publishes.
pub const SOURCE: &str = "koinonia";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// e.g. `message.completed`
    pub detail_type: String,
    pub detail: Value,
}

impl DomainEvent {
    pub fn new(detail_type: impl Into<String>, detail: Value) -> Self {
        Self {
            detail_type: detail_type.into(),
            detail,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("{failed} of the events were not accepted: {reason}")]
    Rejected { failed: usize, reason: String },
    #[error("event bus backend failed while trying to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: BackendError,
    },
}

impl EventsError {
    pub fn backend(action: &'static str, source: impl Into<BackendError>) -> Self {
        EventsError::Backend {
            action,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait Events: Send + Sync {
    /// Publishes every event (10 per request); fails if any is not accepted.
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), EventsError>;
}

pub fn check_event(event: &DomainEvent) -> Result<(), EventsError> {
    if event.detail_type.is_empty() || event.detail_type.len() > 128 {
        return Err(EventsError::Invalid(
            "detail type must be 1 to 128 characters".into(),
        ));
    }
    if !event.detail.is_object() {
        return Err(EventsError::Invalid("detail must be a JSON object".into()));
    }
    let size = event.detail.to_string().len() + event.detail_type.len() + SOURCE.len();
    if size > MAX_ENTRY_BYTES {
        return Err(EventsError::Invalid(format!(
            "event is {size} bytes; the limit is {MAX_ENTRY_BYTES}"
        )));
    }
    Ok(())
}
