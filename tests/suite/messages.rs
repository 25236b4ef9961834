//! What exists of messaging so far: preview, media upload URLs, and the
//! carrier the local stack wires to its built-in Telnyx simulator.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::PhoneNumber;
use shared::ports::carrier::OutboundMessage;

use crate::support::{Stack, keys_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_counts_segments_and_refuses_what_cannot_be_sent() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let preview = |content: Value| {
        s.call(
            &admin,
            "POST",
            "/api/messages/preview",
            Some(json!({ "content": content })),
        )
    };
    let gsm: Value = preview(json!("a".repeat(161))).await.json().await.unwrap();
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
    let emoji: Value = preview(json!("Praying for you 🙏"))
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
    for (content, why) in [
        (json!(""), "empty"),
        (json!("a".repeat(1601)), "too long"),
        (json!("a".repeat(1600)), "11 segments"),
        (json!(42), "not text"),
    ] {
        let refused = preview(content).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(
            refused.json::<Value>().await.unwrap()["details"][0]["field"],
            "content",
            "{why}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_uploads_go_straight_to_storage_within_mms_limits() {
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
    assert_eq!(keys_of(&granted["data"]), ["expiresAt", "id", "uploadUrl"]);
    let url = granted["data"]["uploadUrl"].as_str().unwrap();
    let put = s
        .http
        .put(url)
        .header("content-type", "image/jpeg")
        .body(vec![0xffu8; 1000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let wrong_type = s
        .http
        .put(url)
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
    let key = shared::ports::blobs::BlobKey::parse(&format!(
        "churches/{}/media/{}",
        admin.church_id,
        granted["data"]["id"].as_str().unwrap()
    ))
    .unwrap();
    assert_eq!(
        s.stack
            .app
            .blobs
            .get(&key)
            .await
            .unwrap()
            .unwrap()
            .bytes
            .len(),
        1000
    );

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
