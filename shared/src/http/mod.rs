//! HTTP plumbing shared by every API function and the local stack: the
//! request pipeline (request id, logging, CORS, error rendering) and the
//! response envelopes of API.md.

pub mod cors;
pub mod list;
pub mod pipeline;
pub mod request;
pub mod response;

pub use lambda_http::{Body, Request, Response};
pub use pipeline::{HttpFuture, HttpHandler, HttpResult, handle};
