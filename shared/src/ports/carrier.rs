//! The carrier port: send one SMS or MMS to one recipient, and say which
//! numbers the platform's carrier account holds and for whom.
//!
//! Only the contract lives here; the Telnyx adapter and the Telnyx simulator
//! are in `telnyx`.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::PhoneNumber;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    /// Public (presigned) URLs of media; non-empty makes it an MMS.
    pub media_urls: Vec<String>,
    /// Where the carrier reports delivery for this message.
    pub webhook_url: Option<String>,
}

/// The carrier accepted the message for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The carrier's message id, which its delivery receipts name.
    pub carrier_id: String,
    pub parts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// Worth trying again later (rate limits, carrier faults, timeouts).
    #[error("carrier asked to retry (code {code}), after {retry_after:?}")]
    Retryable {
        code: String,
        retry_after: Option<Duration>,
    },
    /// The recipient opted out with the carrier (Telnyx 40300).
    #[error("recipient has opted out with the carrier")]
    OptedOut,
    /// Will never succeed as sent.
    #[error("carrier refused the message permanently (code {code}: {title})")]
    Permanent { code: String, title: String },
}

impl CarrierError {
    /// The carrier's error code (Telnyx's), for metrics and records.
    pub fn code(&self) -> &str {
        match self {
            CarrierError::Retryable { code, .. } | CarrierError::Permanent { code, .. } => code,
            CarrierError::OptedOut => "40300",
        }
    }
}

/// A number the platform's carrier account holds, as the carrier records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountNumber {
    /// Active on the account (not pending, ported out or deleted).
    pub active: bool,
    /// Whom the platform bought it for: the church id it set as the
    /// number's customer reference.
    pub assigned_to: Option<String>,
    /// When the account bought it (RFC 3339), if the carrier says.
    pub purchased_at: Option<String>,
    /// The messaging profile it is on: whose webhook its texts reach.
    pub messaging_profile_id: Option<String>,
}

#[async_trait]
pub trait Carrier: Send + Sync {
    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, CarrierError>;

    /// The account's record of `number`; `None` when the account does not hold it.
    async fn account_number(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<AccountNumber>, CarrierError>;
}
