//! What exists of messaging so far: preview, media upload URLs, and the
//! carrier the local stack wires to its built-in Telnyx simulator.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::PhoneNumber;
use shared::ports::carrier::OutboundMessage;

use crate::support::{Admin, Stack, keys_of};

/// POSTs `content` to the preview as `admin`.
async fn preview(s: &Stack, admin: &Admin, content: Value) -> reqwest::Response {
    s.call(
        admin,
        "POST",
        "/api/messages/preview",
        Some(json!({ "content": content })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_counts_gsm7_segments_in_the_frontends_shape() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let gsm: Value = preview(&s, &admin, json!("a".repeat(161)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys_of(&gsm["data"]),
        [
            "characters",
            "encoding",
            "estimatedCostPerRecipient",
            "segments"
        ]
    );
    assert_eq!(
        gsm["data"],
        json!({"segments": 2, "encoding": "gsm7", "characters": 161, "estimatedCostPerRecipient": 0.008})
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_counts_an_emoji_text_in_ucs2() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let emoji: Value = preview(&s, &admin, json!("Praying for you 🙏"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            emoji["data"]["encoding"].clone(),
            emoji["data"]["segments"].clone()
        ),
        (json!("ucs2"), json!(1))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_refuses_what_cannot_be_sent_naming_the_content() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    for (content, why) in [
        (json!(""), "empty"),
        (json!("a".repeat(1601)), "too long"),
        (json!("a".repeat(1600)), "11 segments"),
        (json!(42), "not text"),
    ] {
        let refused = preview(&s, &admin, content).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(
            refused.json::<Value>().await.unwrap()["details"][0]["field"],
            "content",
            "{why}"
        );
    }
    s.stop().await;
}

/// A church granted an upload URL for a 240 kB JPEG, which took a
/// 1,000-byte body; the stack, the admin, the grant's data and the URL.
async fn uploaded_a_jpeg() -> (Stack, Admin, Value, String) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let granted = s
        .call(
            &admin,
            "POST",
            "/api/media",
            Some(json!({"contentType": "image/jpeg", "size": "240000"})),
        )
        .await;
    assert_eq!(granted.status(), StatusCode::OK);
    let granted: Value = granted.json().await.unwrap();
    let url = granted["data"]["uploadUrl"].as_str().unwrap().to_owned();
    let put = s
        .http
        .put(&url)
        .header("content-type", "image/jpeg")
        .body(vec![0xffu8; 1000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    (s, admin, granted["data"].clone(), url)
}

/// The length of the stored upload `granted` names.
async fn stored_length(s: &Stack, admin: &Admin, granted: &Value) -> usize {
    let key = shared::ports::blobs::BlobKey::parse(&format!(
        "churches/{}/media/{}",
        admin.church_id,
        granted["id"].as_str().unwrap()
    ))
    .unwrap();
    s.stack
        .app
        .blobs
        .get(&key)
        .await
        .unwrap()
        .unwrap()
        .bytes
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_upload_goes_straight_to_storage() {
    let (s, admin, granted, _) = uploaded_a_jpeg().await;
    assert_eq!(keys_of(&granted), ["expiresAt", "id", "uploadUrl"]);
    assert_eq!(stored_length(&s, &admin, &granted).await, 1000);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_upload_url_is_signed_for_its_content_type() {
    let (s, admin, granted, url) = uploaded_a_jpeg().await;
    let wrong_type = s
        .http
        .put(&url)
        .header("content-type", "image/png")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_type.status(),
        StatusCode::FORBIDDEN,
        "the URL is signed for its content type"
    );
    assert_eq!(stored_length(&s, &admin, &granted).await, 1000);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_uploads_outside_mms_limits_are_refused_naming_the_field() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = s.dump().await;
    for (body, field) in [
        (
            json!({"contentType": "application/x-msdownload", "size": 10}),
            "contentType",
        ),
        (
            json!({"contentType": "image/png", "size": 1_048_577}),
            "size",
        ),
        (json!({"contentType": "image/png", "size": 0}), "size"),
        (json!({"contentType": "image/png"}), "size"),
    ] {
        let refused = s.call(&admin, "POST", "/api/media", Some(body)).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.json::<Value>().await.unwrap()["details"][0]["field"],
            field
        );
    }
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_sends_through_its_built_in_simulator() {
    let s = Stack::start().await;
    let simulator = s
        .stack
        .simulator
        .as_ref()
        .expect("no TELNYX_API_KEY: the simulator runs");
    let carrier = s.stack.app.carrier.as_ref().expect("a carrier is wired");
    let message = OutboundMessage {
        from: PhoneNumber::parse("+12025550100").unwrap(),
        to: PhoneNumber::parse("+12025550143").unwrap(),
        text: "Welcome to Grace!".into(),
        media_urls: vec![],
        webhook_url: None,
    };
    let sent = carrier.send(&message).await.unwrap();
    let ledger = simulator.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].id, sent.carrier_id);
    assert!(
        s.stack.app.webhooks.is_some(),
        "webhooks verify with the simulator's key"
    );
    s.stop().await;
}

/// Grants an upload URL for a PNG of `size` bytes and puts that many; the
/// upload's id.
async fn upload(s: &Stack, admin: &Admin, size: u64) -> String {
    upload_declared(s, admin, size, Some(size as usize)).await
}

/// Grants an upload URL for a PNG declared `declared` bytes long and puts
/// `put` bytes to it (or nothing); the upload's id.
async fn upload_declared(s: &Stack, admin: &Admin, declared: u64, put: Option<usize>) -> String {
    let granted = s
        .call(
            admin,
            "POST",
            "/api/media",
            Some(json!({"contentType": "image/png", "size": declared})),
        )
        .await;
    let granted: Value = granted.json().await.unwrap();
    let url = granted["data"]["uploadUrl"].as_str().unwrap().to_owned();
    if let Some(len) = put {
        let put = s
            .http
            .put(url)
            .header("content-type", "image/png")
            .body(vec![7u8; len])
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success());
    }
    granted["data"]["id"].as_str().unwrap().to_owned()
}

/// A church with two members that uploaded a 2,000-byte poster; the stack,
/// the admin and the poster's id.
async fn church_with_a_poster() -> (Stack, Admin, String) {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 2)
        .await;
    let poster = upload(&s, &admin, 2_000).await;
    (s, admin, poster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mms_carries_its_uploaded_media() {
    let (s, admin, poster) = church_with_a_poster().await;
    let send = json!({"content": "Our new building", "targetType": "all", "mediaIds": [poster]});
    let sent = s
        .call(&admin, "POST", "/api/messages/send", Some(send))
        .await;
    let id = crate::support::expect_status(sent, StatusCode::CREATED).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = s
        .until_complete(&admin, &id, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(view["counts"]["delivered"], 2, "{view}");
    let ledger = s.stack.simulator.as_ref().unwrap().ledger();
    assert_eq!(ledger.len(), 2);
    for entry in &ledger {
        assert_eq!(entry.media_urls.len(), 1, "one media URL per MMS");
        // The URL Telnyx is given fetches the uploaded file.
        let fetched = s.http.get(&entry.media_urls[0]).send().await.unwrap();
        assert_eq!(fetched.status(), StatusCode::OK);
        assert_eq!(fetched.bytes().await.unwrap().len(), 2_000);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_media_ids_are_refused_naming_them_and_nothing_is_written() {
    let (s, admin, poster) = church_with_a_poster().await;
    let big = [
        upload(&s, &admin, 600_000).await,
        upload(&s, &admin, 600_000).await,
    ];
    let other = s
        .church_with_members("other@hope.example", "+12025550199", 50, 0)
        .await
        .0;
    let theirs = {
        let granted = s
            .call(
                &other,
                "POST",
                "/api/media",
                Some(json!({"contentType": "image/png", "size": 10})),
            )
            .await;
        granted.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // A browser is not held to the size it declared: the stored file is
    // what counts.
    let oversized = upload_declared(&s, &admin, 1_000, Some(1_500_000)).await;
    let never_put = upload_declared(&s, &admin, 1_000, None).await;
    let before = s.dump().await;
    for (media, why) in [
        (json!([oversized]), "put bigger than declared, over 1 MB"),
        (json!([never_put]), "granted but never put"),
        (json!(["not-an-id"]), "malformed id"),
        (json!(["01J9ZQ3K4X5Y6Z7A8B9C0D1E2K"]), "never uploaded"),
        (json!([theirs]), "another church's upload"),
        (json!(big), "over 1 MB in all"),
        (json!(vec![poster.clone(); 11]), "more than 10 files"),
        (json!("poster"), "not a list"),
    ] {
        let send = json!({"content": "Hi", "targetType": "all", "mediaIds": media});
        let refused = s
            .call(&admin, "POST", "/api/messages/send", Some(send))
            .await;
        let refused = crate::support::expect_status(refused, StatusCode::BAD_REQUEST).await;
        assert_eq!(
            refused["details"][0]["field"], "mediaIds",
            "{why}: {refused}"
        );
    }
    assert_eq!(s.dump().await, before, "nothing written");
    s.stop().await;
}
