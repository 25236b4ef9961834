//! Telnyx webhook signatures: Ed25519 over `"{telnyx-timestamp}|{raw body}"`
//! with the account's public key; timestamps more than 300 s from now, in
//! either direction, are refused so a captured request cannot be replayed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key")]
    BadPublicKey,
    #[error("the signature or timestamp header is missing")]
    MissingHeaders,
    #[error("the timestamp is not Unix seconds")]
    BadTimestamp,
    #[error("the timestamp is more than 300 seconds from now")]
    Stale,
    #[error("the signature is not 64 bytes of base64")]
    BadSignatureFormat,
    #[error("the signature does not match")]
    BadSignature,
}

#[derive(Clone, Debug)]
pub struct WebhookVerifier {
    key: VerifyingKey,
}

impl WebhookVerifier {
    pub fn from_base64(public_key: &str) -> Result<Self, WebhookError> {
        let bytes: [u8; 32] = STANDARD
            .decode(public_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(WebhookError::BadPublicKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, WebhookError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| WebhookError::BadPublicKey)?;
        Ok(Self { key })
    }

    pub fn from_key(key: VerifyingKey) -> Self {
        Self { key }
    }

    /// Checks one delivery. `timestamp` is the header exactly as received:
    /// it is part of what was signed.
    pub fn verify(
        &self,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::BadTimestamp)?;
        if (now.timestamp() - sent).abs() > TOLERANCE_SECS {
            return Err(WebhookError::Stale);
        }
        let bytes: [u8; 64] = STANDARD
            .decode(signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(WebhookError::BadSignatureFormat)?;
        let signature = Signature::from_bytes(&bytes);
        let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.push(b'|');
        message.extend_from_slice(body);
        self.key
            .verify_strict(&message, &signature)
            .map_err(|_| WebhookError::BadSignature)
    }
}
