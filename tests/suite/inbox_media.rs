//! The inbox beyond text: inbound MMS copied into the bucket (size cap,
//! type allow-list, Telnyx's links expiring), replies with a file, the
//! church's reactions, an unknown texter becoming a member, and a crash
//! between storing an inbound STOP and queuing its confirmation.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};

use crate::inbound::{conversations, text, texts_to, thread};
use crate::support::{Admin, Stack, expect_status as body};

const CHURCH_NUMBER: &str = "+12025550100";
const MEMBER_PHONE: &str = "+13035550000";

/// Some bytes that are not all alike, so a copy that mangles them shows.
fn file_of(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

async fn fetch(s: &Stack, url: &str) -> (StatusCode, Bytes) {
    let got = s.http.get(url).send().await.unwrap();
    (got.status(), got.bytes().await.unwrap())
}

/// The stored thread message whose `content` is `content`, once `ready` holds for it.
async fn stored_message(
    s: &Stack,
    content: &str,
    ready: impl Fn(&Map<String, Value>) -> bool,
) -> Map<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = s.dump().await.into_iter().find(|i| {
            i.get("type") == Some(&json!("conversation_message"))
                && i.get("content") == Some(&json!(content))
        });
        if let Some(item) = found.filter(|i| ready(i)) {
            return item;
        }
        assert!(Instant::now() < deadline, "{content:?} never got ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn states(item: &Map<String, Value>) -> Vec<(String, String)> {
    item["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["state"].as_str().unwrap_or_default().to_owned(),
                m["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mms_is_copied_into_the_bucket_with_a_size_cap_and_a_type_allow_list() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 1)
        .await;
    let sim = s.stack.simulator.as_ref().unwrap().handle();
    let photo = file_of(40_000);
    let photo_link = sim.host_media("image/jpeg", photo.clone());
    let layout = sim.host_media("application/smil", Bytes::from_static(b"<smil/>"));
    let program = sim.host_media("application/x-msdownload", Bytes::from_static(b"MZ"));
    let declared_huge = sim.host_media("video/mp4", file_of(5 * 1024 * 1024 + 1));
    // Described by nothing: only the bytes that arrive show it is too big.
    let undescribed_huge = format!(
        "{}?unlisted=1",
        sim.host_media("image/png", file_of(5 * 1024 * 1024 + 10))
    );
    let webhook = s.url("/api/webhooks/telnyx/status");
    let links = [
        photo_link.clone(),
        layout,
        program,
        declared_huge,
        undescribed_huge,
    ];
    assert!(
        sim.deliver_inbound(
            &webhook,
            MEMBER_PHONE,
            CHURCH_NUMBER,
            "Our new baby!",
            &links
        )
        .await
    );

    let item = stored_message(&s, "Our new baby!", |i| i["mediaState"] == "done").await;
    let expected = [
        ("stored", ""),
        ("refused", "type"),
        ("refused", "type"),
        ("refused", "size"),
        ("refused", "size"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(states(&item), expected);

    // Telnyx's link expires; the inbox still shows the church's copy.
    sim.expire_media(&photo_link);
    assert_eq!(fetch(&s, &photo_link).await.0, StatusCode::NOT_FOUND);
    let listed = conversations(&s, &admin, "open").await;
    let shown = thread(&s, &admin, listed[0]["id"].as_str().unwrap()).await;
    let message = &shown["messages"][0];
    assert_eq!(message["content"], "Our new baby!");
    assert_eq!(message["mediaType"], "image");
    assert_eq!(message["mediaSizeBytes"], 40_000);
    assert_eq!(message["channel"], "mms");
    assert_eq!(message["media"].as_array().unwrap().len(), 1, "{message}");
    let url = message["mediaUrl"].as_str().unwrap();
    assert!(url.starts_with(&s.stack.base_url()), "{url}");
    assert_eq!(fetch(&s, url).await, (StatusCode::OK, photo));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_inbound_link_leaves_the_text_and_is_not_retried() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 1)
        .await;
    let sim = s.stack.simulator.as_ref().unwrap().handle();
    let link = sim.host_media("image/png", file_of(1_000));
    sim.expire_media(&link);
    let webhook = s.url("/api/webhooks/telnyx/status");
    assert!(
        sim.deliver_inbound(&webhook, MEMBER_PHONE, CHURCH_NUMBER, "see pic", &[link])
            .await
    );
    let item = stored_message(&s, "see pic", |i| i["mediaState"] == "done").await;
    assert_eq!(states(&item), vec![("expired".to_owned(), String::new())]);
    let listed = conversations(&s, &admin, "open").await;
    let shown = thread(&s, &admin, listed[0]["id"].as_str().unwrap()).await;
    assert_eq!(shown["messages"][0]["content"], "see pic");
    assert_eq!(shown["messages"][0]["mediaUrl"], Value::Null);
    assert_eq!(
        s.stack.app.media_queue.approximate_depth().await.unwrap(),
        0,
        "a gone link is not tried again"
    );
    s.stop().await;
}

fn file_part(bytes: Bytes, name: &str, content_type: &str) -> Part {
    Part::bytes(bytes.to_vec())
        .file_name(name.to_owned())
        .mime_str(content_type)
        .unwrap()
}

async fn post_form(s: &Stack, admin: &Admin, conversation: &str, form: Form) -> reqwest::Response {
    s.http
        .post(s.url(&format!(
            "/api/messages/conversations/{conversation}/reply-with-media"
        )))
        .bearer_auth(&admin.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Two churches; a member of the first texts it `message`. The stack,
/// both admins and the member's conversation.
async fn member_texted(message: &str) -> (Stack, Admin, Admin, String) {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 1)
        .await;
    let (other, _) = s
        .church_with_members("b@hope.example", "+12025550199", 50, 0)
        .await;
    text(&s, MEMBER_PHONE, CHURCH_NUMBER, message).await;
    let conversation = conversations(&s, &admin, "open").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (s, admin, other, conversation)
}

fn field_of(error: &Value) -> &str {
    error["details"][0]["field"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_file_goes_out_as_mms_and_bad_files_change_nothing() {
    let (s, admin, other, conversation) = member_texted("Is there a flyer?").await;
    let ledger = || s.stack.simulator.as_ref().unwrap().ledger().len();

    // Bad requests first: each is refused naming the field, with nothing written.
    let before = (s.item_count().await, ledger());
    let cases: Vec<(Form, StatusCode, &str)> = vec![
        (
            Form::new().text("content", "no file"),
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            Form::new().part(
                "file",
                file_part(Bytes::from_static(b"<p>"), "x.html", "text/html"),
            ),
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            Form::new().part("file", file_part(Bytes::new(), "empty.png", "image/png")),
            StatusCode::BAD_REQUEST,
            "file",
        ),
        (
            // Audio is not resized by Telnyx: it must fit MMS's 1 MB as it is.
            Form::new().part(
                "file",
                file_part(file_of(1_500_000), "sermon.mp3", "audio/mpeg"),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "file",
        ),
        (
            Form::new().part(
                "file",
                file_part(file_of(5 * 1024 * 1024 + 1), "huge.png", "image/png"),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "file",
        ),
        (
            Form::new()
                .text("content", "x".repeat(2_000))
                .part("file", file_part(file_of(10), "a.png", "image/png")),
            StatusCode::BAD_REQUEST,
            "content",
        ),
    ];
    for (form, status, field) in cases {
        let refused = body(post_form(&s, &admin, &conversation, form).await, status).await;
        assert_eq!(field_of(&refused), field, "{refused}");
    }
    let not_multipart = s
        .call(
            &admin,
            "POST",
            &format!("/api/messages/conversations/{conversation}/reply-with-media"),
            Some(json!({"content": "hi"})),
        )
        .await;
    body(not_multipart, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let flyer = file_of(300_000);
    let foreign = Form::new().part("file", file_part(flyer.clone(), "flyer.png", "image/png"));
    body(
        post_form(&s, &other, &conversation, foreign).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!((s.item_count().await, ledger()), before);

    // A 3 MB photo is taken: Telnyx resizes images for the carrier.
    let photo = file_of(3 * 1024 * 1024);
    let form = Form::new()
        .text("content", "Here it is")
        .part("file", file_part(photo.clone(), "flyer.png", "image/png"));
    let sent = body(
        post_form(&s, &admin, &conversation, form).await,
        StatusCode::CREATED,
    )
    .await;
    let message = &sent["data"];
    assert_eq!(message["content"], "Here it is");
    assert_eq!(message["direction"], "outbound");
    assert_eq!(message["mediaType"], "image");
    assert_eq!(message["mediaName"], "flyer.png");
    assert_eq!(message["mediaSizeBytes"], 3 * 1024 * 1024);
    assert_eq!(
        fetch(&s, message["mediaUrl"].as_str().unwrap()).await,
        (StatusCode::OK, photo.clone())
    );

    // The carrier got one MMS with a link that fetches the same file.
    texts_to(&s, CHURCH_NUMBER, MEMBER_PHONE, 1).await;
    let sent: Vec<_> = s
        .stack
        .simulator
        .as_ref()
        .unwrap()
        .ledger()
        .into_iter()
        .filter(|e| e.to == MEMBER_PHONE)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text.as_deref(), Some("Here it is"));
    assert_eq!(sent[0].media_urls.len(), 1);
    assert_eq!(
        fetch(&s, &sent[0].media_urls[0]).await,
        (StatusCode::OK, photo)
    );
    let shown = thread(&s, &admin, &conversation).await;
    assert_eq!(shown["messages"][0]["mediaName"], "flyer.png");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_church_reacts_to_a_message_once_and_takes_it_back() {
    let (s, admin, other, conversation) = member_texted("Thank you for the prayers").await;
    let message = thread(&s, &admin, &conversation).await["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/messages/conversations/{conversation}/messages/{message}/reactions");

    async fn react_as(s: &Stack, who: &Admin, path: &str, emoji: Value) -> reqwest::Response {
        s.call(who, "POST", path, Some(json!({ "emoji": emoji })))
            .await
    }
    let first = body(
        react_as(&s, &admin, &path, json!("❤️")).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first["data"]["emoji"], "❤️");
    assert_eq!(first["data"]["reactedBy"], "church");
    assert!(first["data"]["createdAt"].is_string());
    let again = body(
        react_as(&s, &admin, &path, json!("❤️")).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        again["data"]["id"], first["data"]["id"],
        "reacting twice is one reaction"
    );
    body(
        react_as(&s, &admin, &path, json!("👍")).await,
        StatusCode::CREATED,
    )
    .await;
    let shown = thread(&s, &admin, &conversation).await;
    let emoji: Vec<&str> = shown["messages"][0]["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["emoji"].as_str().unwrap())
        .collect();
    assert_eq!(emoji, ["❤️", "👍"]);

    // Bad input and other churches' ids change nothing.
    let before = s.item_count().await;
    let snapshot = s.dump().await;
    for bad in [json!("🎉"), json!(""), json!(7), Value::Null] {
        let refused = body(
            react_as(&s, &admin, &path, bad).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(field_of(&refused), "emoji", "{refused}");
    }
    body(
        react_as(&s, &other, &path, json!("👍")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let missing = format!(
        "/api/messages/conversations/{conversation}/messages/{}/reactions",
        ulid::Ulid::new()
    );
    let unknown = s
        .call(&admin, "POST", &missing, Some(json!({"emoji": "👍"})))
        .await;
    body(unknown, StatusCode::NOT_FOUND).await;
    let foreign_delete = s
        .call(&other, "DELETE", &format!("{path}/%F0%9F%91%8D"), None)
        .await;
    body(foreign_delete, StatusCode::NOT_FOUND).await;
    let bad_delete = s
        .call(&admin, "DELETE", &format!("{path}/smile"), None)
        .await;
    assert_eq!(
        field_of(&body(bad_delete, StatusCode::BAD_REQUEST).await),
        "emoji"
    );
    assert_eq!(s.item_count().await, before);
    assert_eq!(s.dump().await, snapshot);

    // Four admins' taps at once all land (optimistic concurrency, retried).
    let taps = ["😂", "😮", "😢", "👎"].map(|e| react_as(&s, &admin, &path, json!(e)));
    for tapped in futures_util::future::join_all(taps).await {
        body(tapped, StatusCode::CREATED).await;
    }
    let shown = thread(&s, &admin, &conversation).await;
    assert_eq!(
        shown["messages"][0]["reactions"].as_array().unwrap().len(),
        6
    );
    for e in ["😂", "😮", "😢", "👎"] {
        let gone = s.call(&admin, "DELETE", &format!("{path}/{e}"), None).await;
        body(gone, StatusCode::OK).await;
    }

    // 👍 taken back (percent-encoded, as the frontend sends it); ❤️ stays.
    let removed = s
        .call(&admin, "DELETE", &format!("{path}/%F0%9F%91%8D"), None)
        .await;
    assert_eq!(
        body(removed, StatusCode::OK).await,
        json!({"success": true})
    );
    let shown = thread(&s, &admin, &conversation).await;
    let reactions = shown["messages"][0]["reactions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0]["emoji"], "❤️");
    // No text went to the member for any of it.
    assert!(
        texts_to(&s, CHURCH_NUMBER, MEMBER_PHONE, 0)
            .await
            .is_empty()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_texter_added_as_a_member_keeps_their_conversation_and_their_stop() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 0)
        .await;
    let newcomer = "+13035550777";
    let quitter = "+13035550888";
    text(&s, newcomer, CHURCH_NUMBER, "Hi, I visited on Sunday").await;
    text(&s, quitter, CHURCH_NUMBER, "STOP").await;
    let listed = conversations(&s, &admin, "open").await;
    assert!(listed.iter().all(|c| c["unknown"] == true), "{listed:?}");

    let mut created = Vec::new();
    for (phone, name) in [(newcomer, "Ruth"), (quitter, "Silas")] {
        let member = json!({"firstName": name, "lastName": "Visitor", "phone": phone});
        let added = s.call(&admin, "POST", "/api/members", Some(member)).await;
        created.push(body(added, StatusCode::CREATED).await["data"].clone());
    }
    assert_eq!(created[0]["optInSms"], true);
    assert_eq!(
        created[1]["optInSms"], false,
        "a STOP texted before joining still holds"
    );

    let listed = conversations(&s, &admin, "open").await;
    for member in &created {
        let conversation = listed
            .iter()
            .find(|c| c["memberId"] == member["id"])
            .unwrap_or_else(|| panic!("no conversation linked to {member}: {listed:?}"));
        assert_eq!(conversation["unknown"], false);
        assert_eq!(conversation["member"]["firstName"], member["firstName"]);
    }
    // A broadcast skips the one who texted STOP.
    let sent = s.send_to_all(&admin, "Welcome to Grace").await;
    s.until_complete(&admin, &sent, Duration::from_secs(20))
        .await;
    assert_eq!(
        texts_to(&s, CHURCH_NUMBER, newcomer, 1).await,
        ["Welcome to Grace"]
    );
    let to_quitter = texts_to(&s, CHURCH_NUMBER, quitter, 2).await;
    assert_eq!(
        to_quitter.len(),
        1,
        "only the STOP confirmation: {to_quitter:?}"
    );
    assert!(to_quitter[0].contains("unsubscribed"), "{to_quitter:?}");

    // Ruth's number changes to a phone that texted STOP: her old
    // conversation is an unknown phone's again, the new one is hers, and
    // she is opted out. Deleting Silas leaves his conversation unknown.
    let ruth = created[0]["id"].as_str().unwrap();
    let silas = created[1]["id"].as_str().unwrap();
    let switched = "+13035550999";
    text(&s, switched, CHURCH_NUMBER, "stop").await;
    let changed = s
        .call(
            &admin,
            "PUT",
            &format!("/api/members/{ruth}"),
            Some(json!({"phone": switched})),
        )
        .await;
    let changed = body(changed, StatusCode::OK).await;
    assert_eq!(changed["data"]["optInSms"], false, "{changed}");
    let removed = s
        .call(&admin, "DELETE", &format!("/api/members/{silas}"), None)
        .await;
    body(removed, StatusCode::OK).await;
    let listed = conversations(&s, &admin, "open").await;
    let with = |phone: &str| {
        listed
            .iter()
            .find(|c| c["member"]["phone"] == phone)
            .unwrap_or_else(|| panic!("no conversation with {phone}: {listed:?}"))
            .clone()
    };
    assert_eq!(with(newcomer)["unknown"], true);
    assert_eq!(with(newcomer)["memberId"], Value::Null);
    assert_eq!(with(switched)["memberId"], ruth);
    assert_eq!(with(switched)["member"]["firstName"], "Ruth");
    assert_eq!(with(quitter)["unknown"], true);
    assert_eq!(with(quitter)["member"]["firstName"], "Unknown");
    s.stop().await;
}

/// A send queue that is down: the process "dies" between the inbound
/// transaction and queuing the confirmation.
struct Down;

#[async_trait::async_trait]
impl shared::ports::Queue for Down {
    async fn send_batch(
        &self,
        _: Vec<shared::ports::queue::OutgoingMessage>,
    ) -> Result<(), shared::ports::queue::QueueError> {
        Err(shared::ports::queue::QueueError::backend(
            "send",
            std::io::Error::other("the queue is down"),
        ))
    }
    async fn receive(
        &self,
        _: u32,
        _: Duration,
        _: Option<Duration>,
    ) -> Result<Vec<shared::ports::queue::ReceivedMessage>, shared::ports::queue::QueueError> {
        Ok(vec![])
    }
    async fn change_visibility(
        &self,
        _: &str,
        _: Duration,
    ) -> Result<(), shared::ports::queue::QueueError> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<(), shared::ports::queue::QueueError> {
        Ok(())
    }
    async fn approximate_depth(&self) -> Result<u64, shared::ports::queue::QueueError> {
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_whose_confirmation_was_never_queued_is_confirmed_when_telnyx_retries() {
    use shared::conversations::inbound::{Deps, Inbound, receive};
    let s = Stack::start().await;
    s.church_with_members("a@grace.example", CHURCH_NUMBER, 50, 1)
        .await;
    let event = json!({
        "data": {
            "event_type": "message.received", "id": ulid::Ulid::new().to_string(),
            "occurred_at": chrono::Utc::now().to_rfc3339(), "record_type": "event",
            "payload": {
                "id": "b0c4a1f0-0000-4000-8000-00000000c4a5", "direction": "inbound", "type": "SMS",
                "from": {"phone_number": MEMBER_PHONE}, "to": [{"phone_number": CHURCH_NUMBER}],
                "text": "STOP", "media": [],
            },
        },
        "meta": {"attempt": 1, "delivered_to": s.url("/api/webhooks/telnyx/status")},
    });
    let app = &s.stack.app;
    let inbound = Inbound::parse(&event["data"]).unwrap();
    let down = Deps {
        table: app.table.as_ref(),
        send_queue: &Down,
        media_queue: &Down,
        vault: app.vault.as_deref().unwrap(),
    };
    assert!(
        receive(&down, &inbound, chrono::Utc::now()).await.is_err(),
        "the first delivery fails after its transaction"
    );
    let stored = stored_message(&s, "STOP", |_| true).await;
    assert_eq!(stored["direction"], "inbound");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        texts_to(&s, CHURCH_NUMBER, MEMBER_PHONE, 0)
            .await
            .is_empty(),
        "nothing was queued"
    );

    // Telnyx got no 2xx, so it delivers the event again.
    body(s.post_signed(&event, 0).await, StatusCode::OK).await;
    let confirmations = texts_to(&s, CHURCH_NUMBER, MEMBER_PHONE, 1).await;
    assert_eq!(confirmations.len(), 1);
    assert!(
        confirmations[0].contains("unsubscribed"),
        "{confirmations:?}"
    );
    // A third delivery finds it sent and queues nothing more.
    body(s.post_signed(&event, 0).await, StatusCode::OK).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(texts_to(&s, CHURCH_NUMBER, MEMBER_PHONE, 2).await.len(), 1);
    let inbound_texts = s
        .dump()
        .await
        .into_iter()
        .filter(|i| {
            i.get("type") == Some(&json!("conversation_message"))
                && i.get("direction") == Some(&json!("inbound"))
        })
        .count();
    assert_eq!(inbound_texts, 1);
    s.stop().await;
}

#[test]
fn telnyx_media_fragments_become_pending_files() {
    let fragment: Value = serde_json::from_str(&crate::support::fixture_text(
        "telnyx_webhook_payloads/message.received.mms.media_fragment.json",
    ))
    .unwrap();
    let pending = shared::conversations::media::pending(fragment["media"].as_array().unwrap());
    assert_eq!(
        pending,
        [json!({
            "state": "pending", "url": "https://media.telnyx.com/example-image.png",
            "contentType": "image/png", "size": 102400, "name": "example-image.png",
        })]
    );
    // At most 10 files, as MMS carries; entries without a link are dropped.
    let many: Vec<Value> = (0..12)
        .map(|i| json!({"url": format!("https://media.telnyx.com/{i}.jpg")}))
        .chain([json!({"content_type": "image/png"})])
        .collect();
    assert_eq!(shared::conversations::media::pending(&many).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_can_text_a_photo_by_hand_through_sim_inbound() {
    use base64::Engine;
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 0)
        .await;
    let photo = file_of(2_000);
    let data = format!(
        "data:image/gif;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&photo)
    );
    let sent = s
        .post(
            "/sim/inbound",
            &json!({"from": MEMBER_PHONE, "to": CHURCH_NUMBER, "text": "Bulletin", "mediaUrls": [data]}),
        )
        .await;
    assert_eq!(
        body(sent, StatusCode::ACCEPTED).await["data"]["delivered"],
        true
    );
    stored_message(&s, "Bulletin", |i| {
        i.get("mediaState") == Some(&json!("done"))
    })
    .await;
    let listed = conversations(&s, &admin, "open").await;
    let shown = thread(&s, &admin, listed[0]["id"].as_str().unwrap()).await;
    let url = shown["messages"][0]["mediaUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fetch(&s, &url).await, (StatusCode::OK, photo));

    let before = s.item_count().await;
    for bad in [
        "data:image/gif,notbase64",
        "data:image/gif;base64,%%%",
        "data:",
    ] {
        let refused = s
            .post(
                "/sim/inbound",
                &json!({"from": MEMBER_PHONE, "to": CHURCH_NUMBER, "text": "x", "mediaUrls": [bad]}),
            )
            .await;
        let refused = body(refused, StatusCode::BAD_REQUEST).await;
        assert_eq!(field_of(&refused), "mediaUrls", "{bad}: {refused}");
    }
    assert_eq!(s.item_count().await, before);
    s.stop().await;
}
