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

/// A church (one member) whose member texted "Our new baby!" with five
/// files: a 40 kB photo, a SMIL layout, a program, a video declared over
/// 5 MB and a PNG over 5 MB that nothing describes; once the copying is
/// done. The stack, the admin, the photo's Telnyx link, the photo and the
/// stored message.
async fn baby_photo_among_four_refused_files() -> (Stack, Admin, String, Bytes, Map<String, Value>)
{
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
    (s, admin, photo_link, photo, item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mms_files_are_refused_outside_the_type_allow_list_and_the_size_cap() {
    let (s, _, _, _, item) = baby_photo_among_four_refused_files().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_the_churchs_copy_of_an_inbound_photo_after_telnyxs_link_expires() {
    let (s, admin, photo_link, photo, _) = baby_photo_among_four_refused_files().await;
    let sim = s.stack.simulator.as_ref().unwrap().handle();
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

/// A church (one member) whose member texted "see pic" with a link that
/// had already expired, once the copying is done. The stack, the stored
/// message and the thread as the inbox then shows it.
async fn texted_an_expired_link() -> (Stack, Map<String, Value>, Value) {
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
    let listed = conversations(&s, &admin, "open").await;
    let shown = thread(&s, &admin, listed[0]["id"].as_str().unwrap()).await;
    (s, item, shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_inbound_link_leaves_the_text_without_a_file() {
    let (s, item, shown) = texted_an_expired_link().await;
    assert_eq!(states(&item), vec![("expired".to_owned(), String::new())]);
    assert_eq!(shown["messages"][0]["content"], "see pic");
    assert_eq!(shown["messages"][0]["mediaUrl"], Value::Null);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_inbound_link_is_not_tried_again() {
    let (s, _, _) = texted_an_expired_link().await;
    // Checked after the inbox has shown the text: right at `done` the
    // copy's own job may still be in flight.
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
async fn a_bad_reply_file_is_refused_naming_the_field_and_changes_nothing() {
    let (s, admin, _, conversation) = member_texted("Is there a flyer?").await;
    let ledger = || s.stack.simulator.as_ref().unwrap().ledger().len();
    // Each is refused naming the field, with nothing written.
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
    assert_eq!((s.item_count().await, ledger()), before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_media_that_is_not_multipart_is_415_and_changes_nothing() {
    let (s, admin, _, conversation) = member_texted("Is there a flyer?").await;
    let ledger = || s.stack.simulator.as_ref().unwrap().ledger().len();
    let before = (s.item_count().await, ledger());
    let not_multipart = s
        .call(
            &admin,
            "POST",
            &format!("/api/messages/conversations/{conversation}/reply-with-media"),
            Some(json!({"content": "hi"})),
        )
        .await;
    body(not_multipart, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!((s.item_count().await, ledger()), before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_churchs_reply_with_a_file_is_a_404_and_changes_nothing() {
    let (s, _, other, conversation) = member_texted("Is there a flyer?").await;
    let ledger = || s.stack.simulator.as_ref().unwrap().ledger().len();
    let before = (s.item_count().await, ledger());
    let flyer = file_of(300_000);
    let foreign = Form::new().part("file", file_part(flyer.clone(), "flyer.png", "image/png"));
    body(
        post_form(&s, &other, &conversation, foreign).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!((s.item_count().await, ledger()), before);
    s.stop().await;
}

/// A member texted the church and its admin replied "Here it is" with a
/// 3 MB photo (201 checked). The stack, the admin, the conversation, the
/// photo and the reply's answer.
async fn replied_with_a_3_mb_photo() -> (Stack, Admin, String, Bytes, Value) {
    let (s, admin, _, conversation) = member_texted("Is there a flyer?").await;
    let photo = file_of(3 * 1024 * 1024);
    let form = Form::new()
        .text("content", "Here it is")
        .part("file", file_part(photo.clone(), "flyer.png", "image/png"));
    let sent = body(
        post_form(&s, &admin, &conversation, form).await,
        StatusCode::CREATED,
    )
    .await;
    (s, admin, conversation, photo, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_3_mb_photo_is_taken_and_stored() {
    // Telnyx resizes images for the carrier, so 3 MB is fine.
    let (s, _, _, photo, sent) = replied_with_a_3_mb_photo().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_with_a_file_goes_out_as_one_mms_linking_the_same_file() {
    let (s, admin, conversation, photo, _) = replied_with_a_3_mb_photo().await;
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

async fn react_as(s: &Stack, who: &Admin, path: &str, emoji: Value) -> reqwest::Response {
    s.call(who, "POST", path, Some(json!({ "emoji": emoji })))
        .await
}

/// A member's text that the church reacted to, with what the reaction
/// tests need.
struct Reacted {
    s: Stack,
    admin: Admin,
    other: Admin,
    conversation: String,
    /// The message's reactions route.
    path: String,
    /// The answers to ❤️ and to ❤️ again.
    first: Value,
    again: Value,
}

/// A member texted the church; its admin reacted ❤️, ❤️ again and 👍 to
/// the text (each 201 checked).
async fn reacted_twice_with_a_heart_and_a_thumb() -> Reacted {
    let (s, admin, other, conversation) = member_texted("Thank you for the prayers").await;
    let message = thread(&s, &admin, &conversation).await["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/messages/conversations/{conversation}/messages/{message}/reactions");
    let first = body(
        react_as(&s, &admin, &path, json!("❤️")).await,
        StatusCode::CREATED,
    )
    .await;
    let again = body(
        react_as(&s, &admin, &path, json!("❤️")).await,
        StatusCode::CREATED,
    )
    .await;
    body(
        react_as(&s, &admin, &path, json!("👍")).await,
        StatusCode::CREATED,
    )
    .await;
    Reacted {
        s,
        admin,
        other,
        conversation,
        path,
        first,
        again,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_church_reacting_twice_with_the_same_emoji_is_one_reaction() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    let (first, again) = (&r.first, &r.again);
    assert_eq!(first["data"]["emoji"], "❤️");
    assert_eq!(first["data"]["reactedBy"], "church");
    assert!(first["data"]["createdAt"].is_string());
    assert_eq!(
        again["data"]["id"], first["data"]["id"],
        "reacting twice is one reaction"
    );
    let shown = thread(&r.s, &r.admin, &r.conversation).await;
    let emoji: Vec<&str> = shown["messages"][0]["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["emoji"].as_str().unwrap())
        .collect();
    assert_eq!(emoji, ["❤️", "👍"]);
    r.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_outside_the_allowed_emoji_is_refused_naming_it_and_changes_nothing() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    let (s, admin, path) = (&r.s, &r.admin, &r.path);
    let before = s.item_count().await;
    let snapshot = s.dump().await;
    for bad in [json!("🎉"), json!(""), json!(7), Value::Null] {
        let refused = body(react_as(s, admin, path, bad).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(field_of(&refused), "emoji", "{refused}");
    }
    let bad_delete = s
        .call(admin, "DELETE", &format!("{path}/smile"), None)
        .await;
    assert_eq!(
        field_of(&body(bad_delete, StatusCode::BAD_REQUEST).await),
        "emoji"
    );
    assert_eq!(s.item_count().await, before);
    assert_eq!(s.dump().await, snapshot);
    r.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reacting_to_another_churchs_or_an_unknown_message_is_a_404_and_changes_nothing() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    let (s, admin, other, path) = (&r.s, &r.admin, &r.other, &r.path);
    let before = s.item_count().await;
    let snapshot = s.dump().await;
    body(
        react_as(s, other, path, json!("👍")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let missing = format!(
        "/api/messages/conversations/{}/messages/{}/reactions",
        r.conversation,
        ulid::Ulid::new()
    );
    let unknown = s
        .call(admin, "POST", &missing, Some(json!({"emoji": "👍"})))
        .await;
    body(unknown, StatusCode::NOT_FOUND).await;
    let foreign_delete = s
        .call(other, "DELETE", &format!("{path}/%F0%9F%91%8D"), None)
        .await;
    body(foreign_delete, StatusCode::NOT_FOUND).await;
    assert_eq!(s.item_count().await, before);
    assert_eq!(s.dump().await, snapshot);
    r.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_admins_reacting_at_once_all_land() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    let (s, admin, path) = (&r.s, &r.admin, &r.path);
    // Optimistic concurrency, retried.
    let taps = ["😂", "😮", "😢", "👎"].map(|e| react_as(s, admin, path, json!(e)));
    for tapped in futures_util::future::join_all(taps).await {
        body(tapped, StatusCode::CREATED).await;
    }
    let shown = thread(s, admin, &r.conversation).await;
    assert_eq!(
        shown["messages"][0]["reactions"].as_array().unwrap().len(),
        6
    );
    for e in ["😂", "😮", "😢", "👎"] {
        let gone = s.call(admin, "DELETE", &format!("{path}/{e}"), None).await;
        body(gone, StatusCode::OK).await;
    }
    r.s.stop().await;
}

/// Takes 👍 back, percent-encoded as the frontend sends it; the answer.
async fn take_back_the_thumb(r: &Reacted) -> Value {
    let removed =
        r.s.call(
            &r.admin,
            "DELETE",
            &format!("{}/%F0%9F%91%8D", r.path),
            None,
        )
        .await;
    body(removed, StatusCode::OK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_taken_back_is_gone_and_the_others_stay() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    assert_eq!(take_back_the_thumb(&r).await, json!({"success": true}));
    let shown = thread(&r.s, &r.admin, &r.conversation).await;
    let reactions = shown["messages"][0]["reactions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0]["emoji"], "❤️");
    r.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_send_the_member_no_text() {
    let r = reacted_twice_with_a_heart_and_a_thumb().await;
    take_back_the_thumb(&r).await;
    // No text went to the member for any of it.
    assert!(
        texts_to(&r.s, CHURCH_NUMBER, MEMBER_PHONE, 0)
            .await
            .is_empty()
    );
    r.s.stop().await;
}

const NEWCOMER: &str = "+13035550777";
const QUITTER: &str = "+13035550888";

/// A church (no members) texted by two unknown phones: a newcomer ("Hi, I
/// visited on Sunday") and a quitter ("STOP").
async fn two_unknown_texters() -> (Stack, Admin) {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 0)
        .await;
    text(&s, NEWCOMER, CHURCH_NUMBER, "Hi, I visited on Sunday").await;
    text(&s, QUITTER, CHURCH_NUMBER, "STOP").await;
    (s, admin)
}

/// Both texters added as members, Ruth (the newcomer) and Silas (the
/// quitter); their answers' data.
async fn added_ruth_and_silas(s: &Stack, admin: &Admin) -> Vec<Value> {
    let mut created = Vec::new();
    for (phone, name) in [(NEWCOMER, "Ruth"), (QUITTER, "Silas")] {
        let member = json!({"firstName": name, "lastName": "Visitor", "phone": phone});
        let added = s.call(admin, "POST", "/api/members", Some(member)).await;
        created.push(body(added, StatusCode::CREATED).await["data"].clone());
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texters_who_are_not_members_are_listed_as_unknown() {
    let (s, admin) = two_unknown_texters().await;
    let listed = conversations(&s, &admin, "open").await;
    assert!(listed.iter().all(|c| c["unknown"] == true), "{listed:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_texted_before_joining_still_holds_for_the_new_member() {
    let (s, admin) = two_unknown_texters().await;
    let created = added_ruth_and_silas(&s, &admin).await;
    assert_eq!(created[0]["optInSms"], true);
    assert_eq!(
        created[1]["optInSms"], false,
        "a STOP texted before joining still holds"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_texter_added_as_a_member_keeps_their_conversation() {
    let (s, admin) = two_unknown_texters().await;
    let created = added_ruth_and_silas(&s, &admin).await;
    let listed = conversations(&s, &admin, "open").await;
    for member in &created {
        let conversation = listed
            .iter()
            .find(|c| c["memberId"] == member["id"])
            .unwrap_or_else(|| panic!("no conversation linked to {member}: {listed:?}"));
        assert_eq!(conversation["unknown"], false);
        assert_eq!(conversation["member"]["firstName"], member["firstName"]);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_skips_a_member_who_texted_stop_before_joining() {
    let (s, admin) = two_unknown_texters().await;
    added_ruth_and_silas(&s, &admin).await;
    let sent = s.send_to_all(&admin, "Welcome to Grace").await;
    s.until_complete(&admin, &sent, Duration::from_secs(20))
        .await;
    assert_eq!(
        texts_to(&s, CHURCH_NUMBER, NEWCOMER, 1).await,
        ["Welcome to Grace"]
    );
    let to_quitter = texts_to(&s, CHURCH_NUMBER, QUITTER, 2).await;
    assert_eq!(
        to_quitter.len(),
        1,
        "only the STOP confirmation: {to_quitter:?}"
    );
    assert!(to_quitter[0].contains("unsubscribed"), "{to_quitter:?}");
    s.stop().await;
}

const SWITCHED: &str = "+13035550999";

/// Ruth and Silas added; a third phone texted "stop" and Ruth's number was
/// changed to it; Silas was deleted. The stack, Ruth's id, the change's
/// answer (200 checked) and the inbox's open conversations then.
async fn ruth_moved_to_a_stopped_phone_and_silas_deleted() -> (Stack, String, Value, Vec<Value>) {
    let (s, admin) = two_unknown_texters().await;
    let created = added_ruth_and_silas(&s, &admin).await;
    let ruth = created[0]["id"].as_str().unwrap().to_owned();
    let silas = created[1]["id"].as_str().unwrap();
    text(&s, SWITCHED, CHURCH_NUMBER, "stop").await;
    let changed = s
        .call(
            &admin,
            "PUT",
            &format!("/api/members/{ruth}"),
            Some(json!({"phone": SWITCHED})),
        )
        .await;
    let changed = body(changed, StatusCode::OK).await;
    let removed = s
        .call(&admin, "DELETE", &format!("/api/members/{silas}"), None)
        .await;
    body(removed, StatusCode::OK).await;
    let listed = conversations(&s, &admin, "open").await;
    (s, ruth, changed, listed)
}

/// The conversation with `phone` among `listed`.
fn with(listed: &[Value], phone: &str) -> Value {
    listed
        .iter()
        .find(|c| c["member"]["phone"] == phone)
        .unwrap_or_else(|| panic!("no conversation with {phone}: {listed:?}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_number_changes_to_a_phone_that_texted_stop_is_opted_out() {
    let (s, _, changed, _) = ruth_moved_to_a_stopped_phone_and_silas_deleted().await;
    assert_eq!(changed["data"]["optInSms"], false, "{changed}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_number_takes_the_new_phones_conversation_and_leaves_the_old_one_unknown() {
    let (s, ruth, _, listed) = ruth_moved_to_a_stopped_phone_and_silas_deleted().await;
    assert_eq!(with(&listed, NEWCOMER)["unknown"], true);
    assert_eq!(with(&listed, NEWCOMER)["memberId"], Value::Null);
    assert_eq!(with(&listed, SWITCHED)["memberId"], ruth);
    assert_eq!(with(&listed, SWITCHED)["member"]["firstName"], "Ruth");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_member_leaves_their_conversation_unknown() {
    let (s, _, _, listed) = ruth_moved_to_a_stopped_phone_and_silas_deleted().await;
    assert_eq!(with(&listed, QUITTER)["unknown"], true);
    assert_eq!(with(&listed, QUITTER)["member"]["firstName"], "Unknown");
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
        serde_json::to_value(&pending).unwrap(),
        json!([{
            "state": "pending", "url": "https://media.telnyx.com/example-image.png",
            "contentType": "image/png", "size": 102400, "name": "example-image.png",
        }])
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_inbound_refuses_a_malformed_data_url_naming_it_and_writes_nothing() {
    let s = Stack::start().await;
    s.church_with_members("a@grace.example", CHURCH_NUMBER, 50, 0)
        .await;
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

/// A loopback server standing for something private (the instance
/// metadata, an internal service): it counts the connections it gets and
/// answers each with a "secret" image, or a redirect to `redirect_to`.
async fn private_server(
    redirect_to: Option<String>,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request).await;
            let answer = match &redirect_to {
                Some(to) => format!(
                    "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
                None => "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecret".to_owned(),
            };
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_media_links_to_private_addresses_are_refused_without_a_request() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", CHURCH_NUMBER, 50, 1)
        .await;
    let (port, hits) = private_server(None).await;
    let links = [
        format!("http://127.0.0.1:{port}/latest/meta-data/iam"),
        // A name that resolves to loopback is refused as it resolves.
        format!("http://localhost:{port}/secret.jpg"),
        format!("http://[::ffff:127.0.0.1]:{port}/secret.jpg"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    let sim = s.simulator();
    assert!(
        sim.deliver_inbound(
            &s.url("/api/webhooks/telnyx/status"),
            MEMBER_PHONE,
            CHURCH_NUMBER,
            "look",
            &links
        )
        .await
    );
    let item = stored_message(&s, "look", |i| i["mediaState"] == "done").await;
    assert_eq!(
        states(&item),
        vec![("refused".to_owned(), "url".to_owned()); 4]
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no request reached the private address"
    );
    let listed = conversations(&s, &admin, "open").await;
    assert_eq!(listed.len(), 1, "the text itself reaches the inbox");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_private_address_is_refused_on_its_hop() {
    use shared::telnyx::media::{FetchError, client, fetch};
    let (private, private_hits) = private_server(None).await;
    for target in [
        format!("http://127.0.0.1:{private}/secret.jpg"),
        format!("http://localhost:{private}/secret.jpg"),
    ] {
        // The first hop is an address the client may fetch from (the
        // carrier's own, as a public host would be); it redirects inward.
        let (hop, hop_hits) = private_server(Some(target.clone())).await;
        let media = client(Some(&format!("http://127.0.0.1:{hop}"))).unwrap();
        let fetched = fetch(&media, &format!("http://127.0.0.1:{hop}/photo.jpg"), 1_000).await;
        assert!(
            matches!(fetched, Err(FetchError::Refused(_))),
            "{target}: {fetched:?}"
        );
        assert_eq!(hop_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
    assert_eq!(
        private_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was never followed"
    );
    // The carrier's own address itself is fetched from.
    let media = client(Some(&format!("http://127.0.0.1:{private}"))).unwrap();
    let fetched = fetch(&media, &format!("http://127.0.0.1:{private}/x.jpg"), 1_000)
        .await
        .unwrap();
    assert_eq!(fetched.bytes, Bytes::from_static(b"secret"));
}
