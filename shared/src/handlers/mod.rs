//! HTTP and event handlers: parse, call one use case, map the result.

pub mod auth;
pub mod health;
