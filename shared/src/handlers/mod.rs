//! HTTP and event handlers: parse, call one use case, map the result.

pub mod health;
