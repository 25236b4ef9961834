//! Two-way conversations: inbound texts and keywords, the inbox, and
//! replies sent through the same send queue, pacing and state machine as
//! broadcasts.

pub mod inbound;
pub mod inbox;
pub mod keywords;
pub mod links;
pub mod media;
pub mod model;
pub mod opening;
pub mod reactions;
pub mod replies;
pub mod welcome;

use crate::crypto::Vault;
use crate::ports::Queue;
use crate::ports::blobs::BlobError;
use crate::ports::queue::QueueError;
use crate::ports::table::TableError;
use crate::telnyx::media::FetchError;

/// What applying texts to conversations needs.
pub struct Deps<'a> {
    pub table: &'a dyn crate::ports::table::Table,
    pub send_queue: &'a dyn Queue,
    /// Inbound files to copy into the bucket.
    pub media_queue: &'a dyn Queue,
    pub vault: &'a Vault,
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("no such conversation")]
    NotFound,
    #[error("no such message in this conversation")]
    MessageNotFound,
    /// The phone texted STOP (or the carrier reported it opted out): only
    /// its START lets the church text it again.
    #[error("the member opted out of texts (STOP); only their START re-subscribes")]
    OptedOut,
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl From<ConversationError> for crate::error::ApiError {
    fn from(e: ConversationError) -> Self {
        use crate::error::ApiError;
        match e {
            ConversationError::NotFound => ApiError::NotFound {
                what: "conversation",
            },
            ConversationError::MessageNotFound => ApiError::NotFound { what: "message" },
            ConversationError::OptedOut => ApiError::Unprocessable {
                code: "opted_out",
                message: ConversationError::OptedOut.to_string(),
            },
            other => ApiError::internal(other),
        }
    }
}
