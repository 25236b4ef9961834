//! Koinonia's shared library: every Lambda function and the local stack
//! link it. Domain types and use cases speak to ports; adapters implement
//! the ports on AWS and on an embedded store.

pub mod adapters;
pub mod app;
pub mod auth;
#[cfg(feature = "local")]
pub mod catalog;
pub mod config;
pub mod conversations;
pub mod crypto;
pub mod dead_letters;
pub mod directory;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod http;
pub mod keys;
pub mod lambda;
#[cfg(feature = "local")]
pub mod local;
pub mod messaging;
pub mod metrics;
pub mod ports;
pub mod registry;
pub mod scheduling;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod telnyx;
