//! Files on a conversation's messages, both ways.
//!
//! A message keeps its files as a `media` list, each entry in one state:
//!
//! ```text
//! pending  an inbound file still at Telnyx's link (which expires)  {url, contentType?, size?}
//! stored   in the bucket                                           {key, contentType, size, name}
//! refused  not a kind the inbox takes, or over the size cap        {reason}
//! expired  Telnyx's link was gone before the copy                   {}
//! ```
//!
//! `message.received` stores its files `pending` and queues a [`MediaJob`];
//! the media consumer [`copy`]s them into the bucket, with a size cap and a
//! content-type allow-list ([`MediaKind`]). The thread shows stored files
//! through short-lived presigned URLs ([`shown`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ConversationError;
use super::model::{MediaFile, MediaState, ThreadMessage};
use crate::domain::{ChurchId, ConversationId, MessageId};
use crate::keys;
use crate::messaging::media::{MAX_CONVERSATION_FILE_BYTES, MAX_MEDIA_PER_MESSAGE, MediaKind};
use crate::ports::blobs::{Blob, BlobError, BlobKey, Blobs};
use crate::ports::queue::{OutgoingMessage, Queue};
use crate::ports::table::{Cond, Table, TableError};
use crate::store::Entities;
use crate::telnyx::media::{FetchError, fetch};

/// How long a thread's media links work (the inbox re-reads the thread).
const SHOWN_FOR: Duration = Duration::from_secs(3600);

/// "Copy this inbound message's files into the bucket."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaJob {
    pub church_id: ChurchId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
}

impl MediaJob {
    pub async fn enqueue(&self, queue: &dyn Queue) -> Result<(), ConversationError> {
        let body = serde_json::to_string(self)
            .map_err(|e| TableError::backend("encode a media job", e))?;
        queue.send_batch(vec![OutgoingMessage::new(body)]).await?;
        Ok(())
    }
}

/// One file of `payload.media` as Telnyx describes it.
#[derive(Deserialize)]
struct TelnyxFile {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "super::model::lenient::text")]
    content_type: Option<String>,
    #[serde(default, deserialize_with = "super::model::lenient::size")]
    size: Option<u64>,
}

/// The files of an inbound text, from `payload.media` (at most 10; entries
/// without a link are dropped).
pub fn pending(telnyx_media: &[Value]) -> Vec<MediaFile> {
    telnyx_media
        .iter()
        .filter_map(|m| TelnyxFile::deserialize(m).ok())
        .filter_map(|f| f.url.clone().map(|url| (url, f)))
        .take(MAX_MEDIA_PER_MESSAGE)
        .map(|(url, f)| MediaFile::Pending {
            name: name_from_url(&url),
            url,
            content_type: f.content_type,
            size: f.size,
        })
        .collect()
}

/// A file the church sent or stored: the `media` entry for it.
pub fn stored(key: &BlobKey, content_type: &str, size: u64, name: &str) -> MediaFile {
    MediaFile::Stored {
        key: key.as_str().to_owned(),
        content_type: content_type.to_owned(),
        size,
        name: name.to_owned(),
    }
}

/// Where a conversation's file lives in the bucket.
pub fn blob_key(
    church: ChurchId,
    conversation: ConversationId,
    message: MessageId,
    n: usize,
) -> Result<BlobKey, TableError> {
    BlobKey::parse(&format!(
        "churches/{church}/conversations/{conversation}/{message}-{n}"
    ))
    .map_err(|e| TableError::Invalid(e.to_string()))
}

fn name_from_url(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "attachment".into())
}

/// A name an admin's download opens by: `photo` of `image/jpeg` is `photo.jpeg`.
fn with_extension(name: &str, content_type: &str) -> String {
    let subtype = content_type
        .split(';')
        .next()
        .and_then(|essence| essence.split('/').nth(1))
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    match subtype {
        Some(subtype) if !name.contains('.') => format!("{name}.{subtype}"),
        _ => name.to_owned(),
    }
}

/// Where a `stored` entry's file is in the bucket.
fn stored_key(entry: &MediaFile) -> Option<BlobKey> {
    match entry {
        MediaFile::Stored { key, .. } => BlobKey::parse(key).ok(),
        _ => None,
    }
}

/// The files of a message as the thread shows them: stored ones through a
/// presigned URL, pending ones through Telnyx's link until the copy lands.
pub async fn shown(blobs: &dyn Blobs, message: &ThreadMessage) -> Result<Vec<Value>, BlobError> {
    let mut shown = Vec::new();
    for entry in &message.media {
        let (url, content_type, size, name) = match entry {
            MediaFile::Stored {
                key,
                content_type,
                size,
                name,
            } => match BlobKey::parse(key) {
                Ok(key) => (
                    blobs.presign_get(&key, SHOWN_FOR).await?,
                    Some(content_type.as_str()),
                    Some(*size),
                    name,
                ),
                Err(_) => continue,
            },
            MediaFile::Pending {
                url,
                content_type,
                size,
                name,
            } => (url.clone(), content_type.as_deref(), *size, name),
            MediaFile::Refused { .. } | MediaFile::Expired { .. } => continue,
        };
        let kind = content_type.and_then(MediaKind::of).map(MediaKind::as_str);
        shown.push(json!({ "url": url, "type": kind, "name": name, "sizeBytes": size }));
    }
    Ok(shown)
}

/// Presigned links to a message's stored files, for the carrier to fetch.
pub async fn carrier_urls(
    blobs: &dyn Blobs,
    message: &ThreadMessage,
    ttl: Duration,
) -> Result<Vec<String>, BlobError> {
    let mut urls = Vec::new();
    for key in message.media.iter().filter_map(stored_key) {
        urls.push(blobs.presign_get(&key, ttl).await?);
    }
    Ok(urls)
}

pub struct CopyDeps<'a> {
    pub table: &'a dyn Table,
    pub blobs: &'a dyn Blobs,
    pub http: &'a crate::telnyx::media::MediaClient,
}

/// Copies one pending file; `Err` only when another try may succeed.
async fn copy_one(
    deps: &CopyDeps<'_>,
    job: &MediaJob,
    n: usize,
    entry: &MediaFile,
) -> Result<MediaFile, ConversationError> {
    let MediaFile::Pending {
        url,
        content_type,
        size,
        name,
    } = entry
    else {
        return Ok(entry.clone());
    };
    let refused = |reason: &str| MediaFile::Refused {
        reason: reason.to_owned(),
        name: Some(name.clone()),
    };
    let declared = content_type.as_deref().filter(|t| !t.is_empty());
    if declared.is_some_and(|t| MediaKind::of(t).is_none()) {
        return Ok(refused("type"));
    }
    if size.is_some_and(|s| s > MAX_CONVERSATION_FILE_BYTES) {
        return Ok(refused("size"));
    }
    let fetched = match fetch(deps.http, url, MAX_CONVERSATION_FILE_BYTES).await {
        Ok(fetched) => fetched,
        Err(FetchError::Gone(_)) => {
            return Ok(MediaFile::Expired {
                name: Some(name.clone()),
            });
        }
        Err(FetchError::TooLarge(_)) => return Ok(refused("size")),
        Err(FetchError::Refused(_)) => return Ok(refused("url")),
        Err(e) => return Err(e.into()),
    };
    let content_type = declared
        .map(str::to_owned)
        .or(fetched.content_type)
        .unwrap_or_default();
    if MediaKind::of(&content_type).is_none() {
        return Ok(refused("type"));
    }
    let key = blob_key(job.church_id, job.conversation_id, job.message_id, n)?;
    let size = fetched.bytes.len() as u64;
    deps.blobs
        .put(
            &key,
            Blob {
                bytes: fetched.bytes,
                content_type: content_type.clone(),
            },
        )
        .await?;
    let name = with_extension(name, &content_type);
    Ok(stored(&key, &content_type, size, &name))
}

/// Copies a message's pending files into the bucket. Runs any number of
/// times: stored files are not fetched again, and a finished message is left alone.
pub async fn copy(deps: &CopyDeps<'_>, job: &MediaJob) -> Result<(), ConversationError> {
    let key = keys::thread_message(job.conversation_id, job.message_id);
    let Some(message) = deps.table.load::<ThreadMessage>(&key).await? else {
        tracing::warn!(message_id = %job.message_id, "media job for a missing message; dropped");
        return Ok(());
    };
    if message.media_state != Some(MediaState::Copying) {
        return Ok(());
    }
    let mut media = message.media;
    let mut retry = None;
    for (n, entry) in media.iter_mut().enumerate() {
        if !matches!(entry, MediaFile::Pending { .. }) {
            continue;
        }
        match copy_one(deps, job, n, entry).await {
            Ok(done) => *entry = done,
            Err(e) => {
                retry = Some(e);
            }
        }
    }
    let state = if retry.is_some() {
        MediaState::Copying
    } else {
        MediaState::Done
    };
    // Progress is kept even when a file must be tried again.
    deps.table
        .update(
            &key,
            ThreadMessage::media_copied(&media, state)?,
            Some(Cond::Exists),
        )
        .await?;
    match retry {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::with_extension;

    #[test]
    fn a_stored_file_keeps_or_gains_an_extension() {
        assert_eq!(with_extension("IMG_0042", "image/jpeg"), "IMG_0042.jpeg");
        assert_eq!(with_extension("flyer.png", "image/png"), "flyer.png");
        assert_eq!(
            with_extension("card", "text/x-vcard; charset=utf-8"),
            "card.x-vcard"
        );
        assert_eq!(with_extension("odd", "nonsense"), "odd");
    }
}
