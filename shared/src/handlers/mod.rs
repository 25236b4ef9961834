//! HTTP and event handlers: parse, call one use case, map the result.

pub mod auth;
pub mod branches;
pub mod health;
pub mod members;
