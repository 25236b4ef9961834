//! One suite per port; each runs against both adapters.

mod blobs;
mod events;
mod queue;
mod table;
