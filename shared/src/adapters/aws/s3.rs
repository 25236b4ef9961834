//! The blob port on S3.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::blobs::{Blob, BlobError, BlobInfo, BlobKey, Blobs, check_ttl};

#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

fn presigning(ttl: Duration) -> Result<PresigningConfig, BlobError> {
    check_ttl(ttl)?;
    PresigningConfig::expires_in(ttl).map_err(|e| BlobError::Invalid(e.to_string()))
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &BlobKey, blob: Blob) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(blob.content_type)
            .body(ByteStream::from(blob.bytes))
            .send()
            .await
            .map_err(|e| BlobError::backend("put an object", e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(BlobError::backend("get an object", e)),
        };
        let content_type = out
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::backend("read an object", e))?
            .into_bytes();
        Ok(Some(Blob {
            bytes,
            content_type,
        }))
    }

    async fn stat(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError> {
        let out = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(BlobError::backend("read an object's size", e)),
        };
        Ok(Some(BlobInfo {
            size: out.content_length().unwrap_or_default().max(0) as u64,
            content_type: out
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned(),
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| BlobError::backend("delete an object", e))?;
        Ok(())
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| BlobError::backend("presign a GET", e))?;
        Ok(request.uri().to_owned())
    }

    async fn presign_put(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, BlobError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| BlobError::backend("presign a PUT", e))?;
        Ok(request.uri().to_owned())
    }

    async fn ping(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| BlobError::backend("reach the bucket", e))?;
        Ok(())
    }
}
