//! Broadcasts: the send use case (O(1) whatever the audience), the jobs
//! its queues carry, the fan-out that expands an audience a page at a time,
//! the sender that moves each recipient (and each conversation reply)
//! through its state machine, delivery receipts, an admin's pause, resume
//! and cancel, and the aggregator that counts them all from the table's
//! change stream; message templates and how often each text was sent.

pub mod aggregate;
pub mod analytics;
pub mod control;
pub mod entities;
pub mod fanout;
pub mod history;
pub mod jobs;
pub mod media;
pub mod model;
pub mod pacing;
pub mod rate;
pub mod receipts;
pub mod send;
pub mod send_request;
pub mod sender;
pub mod tally;
pub mod templates;
pub mod uploads;
