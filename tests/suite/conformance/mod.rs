//! One suite per port; each runs against both adapters.

mod blobs;
mod changes;
mod dead_letters;
mod events;
mod queue;
mod table;
