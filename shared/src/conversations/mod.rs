//! Two-way conversations: inbound texts and keywords, the inbox, and
//! replies sent through the same send queue, pacing and state machine as
//! broadcasts.

pub mod inbound;
pub mod inbox;
pub mod keywords;
pub mod model;
pub mod replies;
pub mod welcome;

use crate::ports::queue::QueueError;
use crate::ports::table::TableError;

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("no such conversation")]
    NotFound,
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}
