//! The blob port on files, with presigned URLs that the local stack serves
//! at `/_blobs/{key}`. URLs are signed with HMAC-SHA256 over method, key,
//! expiry and content type, so a tampered or expired URL is refused just as
//! S3 refuses one.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, Response, StatusCode, header};
use rusqlite::{OptionalExtension, params};
use sha2::Sha256;

use super::store::{Store, StoreError};
use crate::ports::blobs::{Blob, BlobError, BlobInfo, BlobKey, Blobs, check_ttl};

/// Where the local stack serves presigned blob URLs.
pub const BLOB_ROUTE_PREFIX: &str = "/_blobs/";

#[derive(Clone)]
pub struct EmbeddedBlobs {
    store: Store,
    base_url: String,
    signing_key: Vec<u8>,
}

/// An HTTP request that arrived on a presigned URL.
#[derive(Debug, Clone)]
pub struct PresignedRequest {
    pub method: Method,
    /// The path after `/_blobs/`.
    pub key: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl EmbeddedBlobs {
    /// `base_url` is where the local stack listens, e.g. `http://127.0.0.1:3000`.
    pub fn new(store: Store, base_url: &str, signing_key: Vec<u8>) -> Self {
        Self {
            store,
            base_url: base_url.trim_end_matches('/').to_owned(),
            signing_key,
        }
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.store.dir().join("blobs").join(key.as_str())
    }

    fn mac(&self, method: &Method, key: &str, expires: i64, content_type: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.signing_key)
            .expect("HMAC takes any key length");
        mac.update(format!("{method}\n{key}\n{expires}\n{content_type}").as_bytes());
        mac
    }

    fn presign(
        &self,
        method: Method,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, BlobError> {
        check_ttl(ttl)?;
        let expires = chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(0);
        let signature = hex::encode(
            self.mac(&method, key.as_str(), expires, content_type)
                .finalize()
                .into_bytes(),
        );
        Ok(format!(
            "{}{BLOB_ROUTE_PREFIX}{key}?expires={expires}&signature={signature}",
            self.base_url
        ))
    }

    /// Answers a request made on a presigned URL: 403 unless the signature,
    /// expiry and (for PUT) content type all match what was signed.
    pub async fn serve(&self, request: PresignedRequest) -> Response<Bytes> {
        let reply = |status: StatusCode, body: &str| {
            let mut response = Response::new(Bytes::from(body.to_owned()));
            *response.status_mut() = status;
            response
        };
        let Ok(key) = BlobKey::parse(&request.key) else {
            return reply(StatusCode::BAD_REQUEST, "bad key");
        };
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(request.query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let expires = params.get("expires").and_then(|e| e.parse::<i64>().ok());
        let signature = params.get("signature").and_then(|s| hex::decode(s).ok());
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return reply(StatusCode::FORBIDDEN, "missing signature");
        };
        let content_type = match request.method {
            Method::PUT => request.content_type.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let signed_method = if request.method == Method::HEAD {
            Method::GET
        } else {
            request.method.clone()
        };
        if self
            .mac(&signed_method, key.as_str(), expires, &content_type)
            .verify_slice(&signature)
            .is_err()
        {
            return reply(StatusCode::FORBIDDEN, "signature does not match");
        }
        if expires < chrono::Utc::now().timestamp() {
            return reply(StatusCode::FORBIDDEN, "request has expired");
        }
        match request.method {
            Method::PUT => match self
                .put(
                    &key,
                    Blob {
                        bytes: request.body,
                        content_type,
                    },
                )
                .await
            {
                Ok(()) => reply(StatusCode::OK, ""),
                Err(e) => {
                    tracing::error!(error = %e, "presigned blob upload failed");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, "upload failed")
                }
            },
            Method::GET | Method::HEAD => match self.get(&key).await {
                Ok(Some(blob)) => {
                    let mut response = reply(StatusCode::OK, "");
                    if let Ok(value) = header::HeaderValue::from_str(&blob.content_type) {
                        response.headers_mut().insert(header::CONTENT_TYPE, value);
                    }
                    if request.method == Method::GET {
                        *response.body_mut() = blob.bytes;
                    }
                    response
                }
                Ok(None) => reply(StatusCode::NOT_FOUND, "no such key"),
                Err(e) => {
                    tracing::error!(error = %e, "presigned blob download failed");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, "download failed")
                }
            },
            _ => reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }
}

impl From<StoreError> for BlobError {
    fn from(e: StoreError) -> Self {
        BlobError::backend("use the embedded store", e)
    }
}

impl From<rusqlite::Error> for BlobError {
    fn from(e: rusqlite::Error) -> Self {
        BlobError::backend("record blob metadata", e)
    }
}

#[async_trait]
impl Blobs for EmbeddedBlobs {
    async fn put(&self, key: &BlobKey, blob: Blob) -> Result<(), BlobError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| BlobError::backend("create a blob folder", e))?;
        }
        // Write aside and rename, so a crash never leaves half a file under the key.
        let partial = path.with_extension(format!("partial-{}", ulid::Ulid::new()));
        tokio::fs::write(&partial, &blob.bytes)
            .await
            .map_err(|e| BlobError::backend("write a blob", e))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| BlobError::backend("write a blob", e))?;
        let (key, size) = (key.as_str().to_owned(), blob.bytes.len() as i64);
        self.store
            .run(move |conn| {
                conn.execute(
                    "INSERT OR REPLACE INTO blobs (key, content_type, size) VALUES (?1, ?2, ?3)",
                    params![key, blob.content_type, size],
                )?;
                Ok(())
            })
            .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Blob>, BlobError> {
        let name = key.as_str().to_owned();
        let content_type: Option<String> = self
            .store
            .run(move |conn| {
                Ok::<_, BlobError>(
                    conn.query_row(
                        "SELECT content_type FROM blobs WHERE key = ?1",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?,
                )
            })
            .await?;
        let Some(content_type) = content_type else {
            return Ok(None);
        };
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(Some(Blob {
                bytes: Bytes::from(bytes),
                content_type,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::backend("read a blob", e)),
        }
    }

    async fn stat(&self, key: &BlobKey) -> Result<Option<BlobInfo>, BlobError> {
        let name = key.as_str().to_owned();
        let info: Option<(String, i64)> = self
            .store
            .run(move |conn| {
                Ok::<_, BlobError>(
                    conn.query_row(
                        "SELECT content_type, size FROM blobs WHERE key = ?1",
                        [name],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?,
                )
            })
            .await?;
        Ok(info.map(|(content_type, size)| BlobInfo {
            size: size.max(0) as u64,
            content_type,
        }))
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let name = key.as_str().to_owned();
        self.store
            .run(move |conn| {
                conn.execute("DELETE FROM blobs WHERE key = ?1", [name])?;
                Ok::<_, BlobError>(())
            })
            .await?;
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BlobError::backend("delete a blob", e))
            }
            _ => Ok(()),
        }
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        self.presign(Method::GET, key, "", ttl)
    }

    async fn presign_put(
        &self,
        key: &BlobKey,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, BlobError> {
        self.presign(Method::PUT, key, content_type, ttl)
    }

    async fn ping(&self) -> Result<(), BlobError> {
        let dir = self.store.dir().join("blobs");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| BlobError::backend("reach the blob folder", e))
    }
}
