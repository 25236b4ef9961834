//! What the directory's use cases can refuse, mapped once to HTTP answers.

use crate::crypto::VaultError;
use crate::error::ApiError;
use crate::ports::table::TableError;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    #[error("the plan's {limit} limit is reached")]
    PlanLimit { limit: &'static str },
    #[error("{message}")]
    NotAllowed {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// The caller's role may not change `field` (403 naming it).
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The carrier could not be asked (a number's ownership, say).
    #[error("the carrier did not answer: {0}")]
    CarrierUnavailable(#[source] crate::ports::carrier::CarrierError),
}

impl<P: std::fmt::Debug> From<crate::store::TransactionError<P>> for DirectoryError {
    fn from(e: crate::store::TransactionError<P>) -> Self {
        DirectoryError::Table(e.into())
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(what) => ApiError::NotFound { what },
            DirectoryError::Conflict { code, message, .. } => ApiError::Conflict { code, message },
            DirectoryError::PlanLimit { limit } => ApiError::Unprocessable {
                code: "plan_limit",
                message: format!("your plan's {limit} limit is reached; upgrade to add more"),
            },
            DirectoryError::Forbidden { code, message, .. } => {
                ApiError::Forbidden { code, message }
            }
            DirectoryError::NotAllowed { code, message, .. } => {
                ApiError::Unprocessable { code, message }
            }
            DirectoryError::CarrierUnavailable(e) => {
                tracing::warn!(error = %e, "the carrier did not answer");
                ApiError::Unavailable
            }
            other => ApiError::internal(other),
        }
    }
}
