//! The embedded adapters: every port on one SQLite file (plus a folder of
//! media files), so the local stack and the use-case tests run with no AWS
//! account, no Docker and no configuration — and survive a `kill -9`.

mod blobs;
mod changes;
mod condition;
mod events;
mod queue;
mod store;
mod table;

pub use blobs::{EmbeddedBlobs, PresignedRequest};

/// Where the local stack serves presigned blob URLs.
pub mod blobs_route {
    pub use super::blobs::BLOB_ROUTE_PREFIX;
}
pub use changes::EmbeddedChanges;
pub use events::{EmbeddedEvents, PublishedEvent};
pub use queue::{EmbeddedQueue, QueueSpec};
pub use store::{Store, StoreError};
pub use table::EmbeddedTable;
