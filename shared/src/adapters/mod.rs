//! Adapters: the ports implemented on AWS and on an embedded store.

pub mod aws;
pub mod embedded;
pub mod metered;
