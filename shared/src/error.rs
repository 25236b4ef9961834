//! The one error type at the HTTP edge.
//!
//! Every failure a handler can meet becomes an `ApiError`, rendered as the
//! envelope of API.md: `{"success": false, "error", "code", "details"?}`.
//! Internal causes are logged with their whole chain and never shown; a 5xx
//! carries only the request id, so support can find the log line. Each
//! internal cause names the step that failed (`.during("read the message
//! history")`), so the log of a 500 says where, not only what.

use http::StatusCode;
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub code: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: code.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", validation_message(.0))]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized { code: &'static str },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// One field (an uploaded file) is over its limit: 413 naming it.
    #[error("{}: {}", .0.field, .0.message)]
    FieldTooLarge(FieldError),
    #[error("content type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A well-formed field the church's rules refuse (a time inside its
    /// quiet hours): 422 naming it.
    #[error("{}: {}", .0.field, .0.message)]
    RefusedField(FieldError),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// The local stack: the path is routed, not for this method.
    #[error("method {method} is not allowed on this path")]
    MethodNotAllowed { method: String },
    #[error("{route} is not available yet")]
    NotImplemented { route: String },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// One invalid field, as domain parsers (`SendBody::parse`) report it.
impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(vec![e])
    }
}

fn validation_message(details: &[FieldError]) -> String {
    match details {
        [only] => format!("{}: {}", only.field, only.message),
        _ => format!("{} fields are invalid", details.len()),
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub success: bool,
    pub error: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    /// An internal failure at `step` (what the handler was doing): the step
    /// heads the logged cause chain and never reaches the client.
    pub fn internal_at(step: &'static str, e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into().context(step))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } | ApiError::FieldTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } | ApiError::RefusedField(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_error",
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::RefusedField(_) => "refused",
            ApiError::PayloadTooLarge { .. } | ApiError::FieldTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::NotImplemented { .. } => "not_implemented",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The body to send; 5xx answers name the request id and nothing else.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        let server_side = self.status().is_server_error();
        ErrorBody {
            success: false,
            error: self.to_string(),
            code: self.code().to_owned(),
            details: match self {
                ApiError::Validation(details) => details.clone(),
                ApiError::FieldTooLarge(detail) | ApiError::RefusedField(detail) => {
                    vec![detail.clone()]
                }
                _ => Vec::new(),
            },
            request_id: server_side.then(|| request_id.to_owned()),
        }
    }
}

/// Failures that are never the client's doing: only these can become a 500
/// through [`During`], so a refusal (an `ApiError` itself, a validation) is
/// never turned into one by mistake.
pub trait Unexpected: Into<anyhow::Error> {}

impl Unexpected for anyhow::Error {}
impl Unexpected for crate::ports::table::TableError {}
impl Unexpected for crate::ports::events::EventsError {}
impl Unexpected for crate::ports::blobs::BlobError {}
impl Unexpected for crate::ports::blobs::BadBlobKey {}
impl Unexpected for crate::ports::queue::QueueError {}
impl Unexpected for crate::crypto::VaultError {}
impl Unexpected for crate::auth::passwords::HashError {}
impl Unexpected for crate::auth::sessions::SessionError {}
impl Unexpected for tokio::task::JoinError {}
impl Unexpected for serde_json::Error {}
impl Unexpected for http::Error {}
impl<P: std::fmt::Debug + Send + Sync + 'static> Unexpected for crate::store::TransactionError<P> {}

/// Names the step a fallible call is, for the log of a 500:
/// `table.load(&key).await.during("read the message")?`.
pub trait During<T> {
    fn during(self, step: &'static str) -> Result<T, ApiError>;
}

impl<T, E: Unexpected> During<T> for Result<T, E> {
    fn during(self, step: &'static str) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::internal_at(step, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let e = ApiError::field(
            "phone",
            "invalid_phone",
            "phone number is not a valid, dialable number",
        );
        let body = serde_json::to_value(e.body("req-1")).unwrap();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body["success"], false);
        assert_eq!(body["code"], "validation_error");
        assert_eq!(body["details"][0]["field"], "phone");
        assert!(body["error"].as_str().unwrap().starts_with("phone:"));
        assert!(body.get("requestId").is_none());
    }

    #[test]
    fn internal_errors_hide_their_cause_and_name_the_request() {
        let e = ApiError::internal(anyhow::anyhow!("dynamodb exploded at arn:aws:secret"));
        let body = serde_json::to_string(&e.body("req-42")).unwrap();
        assert!(!body.contains("dynamodb"));
        assert!(body.contains("req-42"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn the_failing_step_reaches_the_log_but_never_the_body() {
        let failed: Result<(), _> = Err(crate::ports::table::TableError::Invalid(
            "dynamodb exploded".into(),
        ));
        let e = failed.during("read the message history").unwrap_err();
        let logged = match &e {
            ApiError::Internal(cause) => format!("{cause:#}"),
            other => panic!("not internal: {other:?}"),
        };
        assert!(logged.starts_with("read the message history: "), "{logged}");
        assert!(logged.contains("dynamodb exploded"), "{logged}");
        assert!(format!("{e:?}").contains("read the message history"));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("read the message history"));
        let body = serde_json::to_string(&e.body("req-7")).unwrap();
        assert!(!body.contains("message history"), "{body}");
        assert!(!body.contains("dynamodb"), "{body}");
        assert_eq!(e.to_string(), "internal error");
        assert!(body.contains("req-7"));
    }
}
