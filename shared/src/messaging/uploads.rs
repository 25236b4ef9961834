//! `POST /api/media`: a presigned PUT for one file of an MMS, and the
//! upload's record (`MediaUpload`) that a send later checks its ids against.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::entities::MediaUpload;
use super::media::{MAX_MEDIA_BYTES, MEDIA_TYPES};
use crate::domain::{ChurchId, MediaId};
use crate::error::FieldError;
use crate::ports::blobs::{BlobKey, Blobs};
use crate::ports::table::{Cond, Table};
use crate::store::Entities;

/// How long an upload URL works.
pub const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);

/// A file an admin means to upload: a kind carriers deliver, within MMS's 1 MB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    content_type: String,
    size: u64,
}

impl UploadRequest {
    /// `size` may come as a number or as its text.
    pub fn parse(content_type: Option<&str>, size: Option<&Value>) -> Result<Self, FieldError> {
        let content_type = content_type.unwrap_or_default().trim().to_lowercase();
        if !MEDIA_TYPES.contains(&content_type.as_str()) {
            return Err(FieldError::new(
                "contentType",
                "unsupported_media",
                format!("contentType must be one of {}", MEDIA_TYPES.join(", ")),
            ));
        }
        let size = match size {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        match size {
            Some(size @ 1..=MAX_MEDIA_BYTES) => Ok(Self { content_type, size }),
            _ => Err(FieldError::new(
                "size",
                "invalid_size",
                format!("size must be 1 to {MAX_MEDIA_BYTES} bytes (MMS media is at most 1 MB)"),
            )),
        }
    }
}

/// Where to put the file, and until when (fields alphabetical, as answered).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    pub expires_at: String,
    pub id: MediaId,
    pub upload_url: String,
}

/// Presigns the upload and records it, so a send can name it by id.
pub async fn start(
    table: &dyn Table,
    blobs: &dyn Blobs,
    church: ChurchId,
    request: UploadRequest,
    now: DateTime<Utc>,
) -> anyhow::Result<UploadTicket> {
    let id = MediaId::generate();
    let key = BlobKey::parse(&format!("churches/{church}/media/{id}"))
        .context("name the upload's blob")?;
    let upload_url = blobs
        .presign_put(&key, &request.content_type, UPLOAD_TTL)
        .await
        .context("presign the upload")?;
    let expires_at = now + chrono::Duration::from_std(UPLOAD_TTL).unwrap_or_default();
    let upload = MediaUpload::new(
        church,
        id,
        key.as_str(),
        &request.content_type,
        request.size,
        &now.to_rfc3339(),
    );
    table
        .save(&upload, Some(Cond::NotExists))
        .await
        .context("record the upload")?;
    Ok(UploadTicket {
        expires_at: expires_at.to_rfc3339(),
        id,
        upload_url,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_supported_file_within_a_megabyte_is_accepted() {
        let ok = UploadRequest::parse(Some(" Image/PNG "), Some(&json!("2048"))).unwrap();
        assert_eq!(ok.content_type, "image/png");
        assert_eq!(ok.size, 2048);
        assert!(UploadRequest::parse(Some("image/jpeg"), Some(&json!(MAX_MEDIA_BYTES))).is_ok());
    }

    #[test]
    fn the_refusal_names_its_field() {
        let field = |ct: Option<&str>, size: Option<Value>| {
            UploadRequest::parse(ct, size.as_ref()).unwrap_err().field
        };
        assert_eq!(field(Some("text/html"), Some(json!(10))), "contentType");
        assert_eq!(field(None, Some(json!(10))), "contentType");
        assert_eq!(field(Some("image/png"), Some(json!(0))), "size");
        assert_eq!(
            field(Some("image/png"), Some(json!(MAX_MEDIA_BYTES + 1))),
            "size"
        );
        assert_eq!(field(Some("image/png"), None), "size");
    }
}
