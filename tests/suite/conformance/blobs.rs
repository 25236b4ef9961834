//! The blob port: objects and presigned URLs, used over real HTTP.

use std::time::Duration;

use bytes::Bytes;
use shared::ports::blobs::{Blob, BlobError, BlobInfo, BlobKey};

use crate::support::{World, conformance};

conformance!(
    put_get_and_delete_an_object,
    a_presigned_put_then_get_moves_the_bytes_over_http,
    a_tampered_presigned_url_is_refused,
    stat_reports_what_a_presigned_put_really_stored,
    presign_lifetimes_are_bounded,
);

fn key(raw: &str) -> BlobKey {
    BlobKey::parse(raw).unwrap()
}

fn jpeg() -> Bytes {
    Bytes::from_static(b"\xff\xd8\xff\xe0 not really a jpeg, but bytes")
}

async fn put_get_and_delete_an_object(w: &World) {
    let k = key("churches/01J/media/01K.jpg");
    assert_eq!(w.blobs.get(&k).await.unwrap(), None);
    w.blobs
        .put(
            &k,
            Blob {
                bytes: jpeg(),
                content_type: "image/jpeg".into(),
            },
        )
        .await
        .unwrap();
    let got = w.blobs.get(&k).await.unwrap().unwrap();
    assert_eq!(
        (got.bytes, got.content_type.as_str()),
        (jpeg(), "image/jpeg")
    );
    w.blobs.delete(&k).await.unwrap();
    assert_eq!(w.blobs.get(&k).await.unwrap(), None);
    w.blobs.ping().await.unwrap();
}

async fn a_presigned_put_then_get_moves_the_bytes_over_http(w: &World) {
    let k = key("churches/01J/media/upload.png");
    let http = reqwest::Client::new();
    let put_url = w
        .blobs
        .presign_put(&k, "image/png", Duration::from_secs(300))
        .await
        .unwrap();
    let put = http
        .put(&put_url)
        .header("content-type", "image/png")
        .body(jpeg())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT {}", put.status());
    let get_url = w
        .blobs
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    let got = http.get(&get_url).send().await.unwrap();
    assert!(got.status().is_success(), "GET {}", got.status());
    assert_eq!(got.bytes().await.unwrap(), jpeg());
}

async fn stat_reports_what_a_presigned_put_really_stored(w: &World) {
    let k = key("churches/01J/media/declared-small.png");
    assert_eq!(w.blobs.stat(&k).await.unwrap(), None, "nothing put yet");
    let url = w
        .blobs
        .presign_put(&k, "image/png", Duration::from_secs(300))
        .await
        .unwrap();
    let put = reqwest::Client::new()
        .put(&url)
        .header("content-type", "image/png")
        .body(vec![1u8; 70_000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT {}", put.status());
    assert_eq!(
        w.blobs.stat(&k).await.unwrap(),
        Some(BlobInfo {
            size: 70_000,
            content_type: "image/png".into()
        })
    );
}

async fn a_tampered_presigned_url_is_refused(w: &World) {
    let k = key("churches/01J/media/secret.pdf");
    w.blobs
        .put(
            &k,
            Blob {
                bytes: jpeg(),
                content_type: "application/pdf".into(),
            },
        )
        .await
        .unwrap();
    let url = w
        .blobs
        .presign_get(&k, Duration::from_secs(300))
        .await
        .unwrap();
    let other = url.replace("secret.pdf", "other.pdf");
    let response = reqwest::get(&other).await.unwrap();
    assert_eq!(
        response.status().as_u16(),
        403,
        "a URL signed for one key must not open another"
    );
}

async fn presign_lifetimes_are_bounded(w: &World) {
    let k = key("a/b.txt");
    let too_long = w
        .blobs
        .presign_get(&k, Duration::from_secs(8 * 24 * 3600))
        .await;
    assert!(matches!(too_long, Err(BlobError::Invalid(_))));
    assert!(matches!(
        w.blobs.presign_get(&k, Duration::ZERO).await,
        Err(BlobError::Invalid(_))
    ));
    for unsafe_key in ["../etc/passwd", "/abs", "a//b", "a/./b", "spaces here", ""] {
        assert!(BlobKey::parse(unsafe_key).is_err(), "{unsafe_key}");
    }
}
