//! The success envelopes of API.md: `W` (`{"success": true, "data"}`), `bare`
//! and `list` (with pagination).

use http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

use crate::error::{ApiError, During};

/// Any JSON body with a status.
pub fn json(status: StatusCode, body: &impl Serialize) -> Result<Response<Body>, ApiError> {
    let bytes = serde_json::to_vec(body).during("encode the answer")?;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .during("build the answer")
}

/// `W`: `{"success": true, "data": …}`.
pub fn wrapped(status: StatusCode, data: &impl Serialize) -> Result<Response<Body>, ApiError> {
    json(status, &json!({ "success": true, "data": data }))
}

/// `bare`: the object itself.
pub fn bare(status: StatusCode, data: &impl Serialize) -> Result<Response<Body>, ApiError> {
    json(status, data)
}
