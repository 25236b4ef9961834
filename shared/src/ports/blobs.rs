//! The blob port: media files, with presigned URLs so browsers and Telnyx
//! move the bytes without passing through a Lambda.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::BackendError;

/// Longest a presigned URL may live (S3's SigV4 limit is 7 days).
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A safe object key: `[A-Za-z0-9._-]` segments joined by `/`, no `..`,
/// at most 512 bytes — safe as an S3 key and as a relative file path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blob key {0:?} is not a safe key")]
pub struct BadBlobKey(pub String);

impl BlobKey {
    pub fn parse(raw: &str) -> Result<Self, BadBlobKey> {
        let ok_segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if raw.len() > 512 || !raw.split('/').all(ok_segment) {
            return Err(BadBlobKey(raw.chars().take(64).collect()));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobKey({})", self.0)
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
}

/// What is stored under a key, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("invalid blob request: {0}")]
    Invalid(String),
    #[error("blob backend failed while trying to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: BackendError,
    },
}

impl BlobError {
    pub fn backend(action: &'static str, source: impl Into<BackendError>) -> Self {
        BlobError::Backend {
            action,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait Blobs: Send + Sync {
    async fn put(&self, key: &BlobKey, blob: Blob) -> Result<(), BlobError>;
    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError>;
    /// The stored object's size and type (what a presigned PUT really put).
    async fn stat(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError>;
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    /// A URL anyone may GET for `ttl`.
    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError>;
    /// A URL anyone may PUT a body of `content_type` to for `ttl`.
    async fn presign_put(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, BlobError>;
    /// Cheap reachability check, for `/health/detailed`.
    async fn ping(&self) -> Result<(), BlobError>;
}

pub fn check_ttl(ttl: Duration) -> Result<(), BlobError> {
    if ttl.is_zero() || ttl > MAX_PRESIGN {
        return Err(BlobError::Invalid(
            "presigned URL lifetime must be 1 s to 7 days".into(),
        ));
    }
    Ok(())
}
