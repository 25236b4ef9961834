//! Telnyx, the carrier: its messaging API types, the webhook signature
//! check, the client behind the `Carrier` port, and a simulator that speaks
//! the same HTTP API for the local stack and the tests.

pub mod api;
pub mod client;
pub mod events;
pub mod media;
#[cfg(feature = "local")]
pub mod simulator;
pub mod webhook;

pub use client::TelnyxCarrier;
pub use webhook::{WebhookError, WebhookVerifier};
