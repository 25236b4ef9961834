//! Ports: what the use cases need from the outside world, cut to capability
//! size. Each has an AWS adapter and an embedded one (`crate::adapters`), and
//! one conformance suite (`tests/conformance`) runs against both.

pub mod blobs;
pub mod carrier;
pub mod changes;
pub mod clock;
pub mod events;
pub mod queue;
pub mod table;

pub use blobs::{Blob, BlobError, BlobKey, Blobs};
pub use carrier::{AccountNumber, Carrier, CarrierError, OutboundMessage, SentMessage};
pub use changes::{Change, ChangeKind, Changes, ChangesError, Shard};
pub use clock::{Clock, FixedClock, ShiftedClock, SystemClock};
pub use events::{DomainEvent, Events, EventsError};
pub use queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage};
pub use table::{
    Cond, Cursor, Index, Item, Key, Page, Query, SortCond, Table, TableError, TxOp, Update, WriteOp,
};

/// Errors from a backend (SDK, SQLite, I/O) that the caller can only report.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;
