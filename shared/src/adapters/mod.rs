//! Adapters: the ports implemented on AWS and on an embedded store.

pub mod aws;
#[cfg(feature = "local")]
pub mod embedded;
pub mod metered;
