//! HTTP and event handlers: parse, call one use case, map the result.

pub mod analytics;
pub mod auth;
pub mod branches;
pub mod co_admins;
pub mod consumers;
pub mod conversations;
pub mod cron;
pub mod dashboard;
pub mod groups;
pub mod health;
pub mod members;
pub mod messages;
pub mod profile;
pub mod recurring;
pub mod templates;
pub mod webhooks;
