//! Inbound texts on the local stack: Telnyx's message.received fixtures,
//! keywords (STOP at one church only, START, HELP), replays, the inbox
//! routes, and webhooks that must change nothing.

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Admin, Stack, expect_status as body, keys_of};

fn fixture(name: &str) -> Value {
    let text = crate::support::fixture_text(&format!("telnyx_webhook_payloads/{name}"));
    serde_json::from_str(&text).unwrap()
}

/// A member's phone texts a church's number through the simulator.
pub(crate) async fn text(s: &Stack, from: &str, to: &str, message: &str) {
    let sent = s
        .post(
            "/sim/inbound",
            &json!({"from": from, "to": to, "text": message}),
        )
        .await;
    let sent = body(sent, StatusCode::ACCEPTED).await;
    assert_eq!(sent["data"]["delivered"], true, "{sent}");
}

pub(crate) async fn conversations(s: &Stack, admin: &Admin, status: &str) -> Vec<Value> {
    let listed = s
        .call(
            admin,
            "GET",
            &format!("/api/messages/conversations?status={status}"),
            None,
        )
        .await;
    body(listed, StatusCode::OK).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// `pagination.total` of the inbox in each status: open, closed, archived.
async fn totals(s: &Stack, admin: &Admin) -> [u64; 3] {
    let mut totals = [0; 3];
    for (total, status) in totals.iter_mut().zip(["open", "closed", "archived"]) {
        let listed = s
            .call(
                admin,
                "GET",
                &format!("/api/messages/conversations?status={status}&limit=1"),
                None,
            )
            .await;
        *total = body(listed, StatusCode::OK).await["pagination"]["total"]
            .as_u64()
            .unwrap();
    }
    totals
}

pub(crate) async fn thread(s: &Stack, admin: &Admin, id: &str) -> Value {
    let got = s
        .call(
            admin,
            "GET",
            &format!("/api/messages/conversations/{id}"),
            None,
        )
        .await;
    body(got, StatusCode::OK).await
}

/// Texts the simulator accepted to `to` from `from` so far, waiting up to 10 s for `n`.
pub(crate) async fn texts_to(s: &Stack, from: &str, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<String> = s
            .stack
            .simulator
            .as_ref()
            .unwrap()
            .ledger()
            .iter()
            .filter(|e| e.from == from && e.to == to)
            .map(|e| e.text.clone().unwrap_or_default())
            .collect();
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts a Telnyx fixture, signed, after pointing its media links at the
/// simulator (no traffic leaves this machine), which serves a file of the
/// size and type described; checks it is answered 200.
async fn post_fixture(s: &Stack, name: &str) {
    let mut event = fixture(name);
    for media in event["data"]["payload"]["media"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let size = media["size"].as_u64().unwrap() as usize;
        let content_type = media["content_type"].as_str().unwrap();
        media["url"] = json!(
            s.stack
                .simulator
                .as_ref()
                .unwrap()
                .handle()
                .host_media(content_type, bytes::Bytes::from(vec![7u8; size]))
        );
    }
    let answered = s.post_signed(&event, 0).await;
    assert_eq!(answered.status(), StatusCode::OK, "{name}");
}

/// A church owning +1 773 555 0002, the number Telnyx's fixtures text.
async fn church_of_the_fixtures() -> (Stack, Admin) {
    let s = Stack::start().await;
    let (a, _) = s
        .church_with_members("a@grace.example", "+17735550002", 50, 0)
        .await;
    (s, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telnyx_inbound_fixtures_land_in_the_right_churchs_conversation() {
    let (s, a) = church_of_the_fixtures().await;
    let (b, _) = s
        .church_with_members("b@hope.example", "+18445550001", 50, 0)
        .await;
    for (name, admin, text) in [
        ("message.received.sms.json", &a, "Hello from Telnyx!"),
        (
            "message.received.sms.openapi_example.json",
            &b,
            "Hello, World!",
        ),
        ("message.received.mms.json", &a, "Check out this photo!"),
    ] {
        post_fixture(&s, name).await;
        let found = conversations(&s, admin, "open").await;
        let texts: Vec<&Value> = found.iter().map(|c| &c["lastMessage"]).collect();
        assert!(texts.contains(&&json!(text)), "{name}: {texts:?}");
    }
    // Church A has one conversation (one phone), never church B's text.
    let found = conversations(&s, &a, "open").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["unreadCount"], 2);
    assert_eq!(found[0]["member"]["phone"], "+13125550001");
    assert_eq!(found[0]["unknown"], true);
    let messages = thread(&s, &a, found[0]["id"].as_str().unwrap()).await;
    assert_eq!(
        messages["messages"][0]["content"], "Check out this photo!",
        "newest first"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telnyx_mms_photo_is_copied_into_the_bucket() {
    let (s, a) = church_of_the_fixtures().await;
    post_fixture(&s, "message.received.mms.json").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .dump()
        .await
        .iter()
        .any(|i| i.get("mediaState") == Some(&json!("done")))
    {
        assert!(Instant::now() < deadline, "the MMS was never copied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = conversations(&s, &a, "open").await;
    let messages = thread(&s, &a, found[0]["id"].as_str().unwrap()).await;
    assert_eq!(messages["messages"][0]["content"], "Check out this photo!");
    assert_eq!(messages["messages"][0]["mediaType"], "image");
    assert_eq!(messages["messages"][0]["mediaSizeBytes"], 102_400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimal_form_of_a_received_text_is_a_replay_that_changes_nothing() {
    let (s, _) = church_of_the_fixtures().await;
    post_fixture(&s, "message.received.sms.json").await;
    let before = s.dump().await;
    let answered = s
        .post_signed(&fixture("message.received.sms.minimal.json"), 0)
        .await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_telnyx_already_answered_is_recorded_but_not_confirmed_again() {
    let (s, _) = church_of_the_fixtures().await;
    let mut stop = fixture("message.received.stop_autoresponse.json");
    stop["data"]["payload"]["from"]["phone_number"] = json!("+13125550009");
    stop["data"]["payload"]["to"][0]["phone_number"] = json!("+17735550002");
    assert_eq!(s.post_signed(&stop, 0).await.status(), StatusCode::OK);
    let consent: Vec<_> = s
        .dump()
        .await
        .into_iter()
        .filter(|i| i["sk"].as_str().unwrap_or_default().starts_with("CONSENT#"))
        .collect();
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0]["action"], "opt_out");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        texts_to(&s, "+17735550002", "+13125550009", 0)
            .await
            .is_empty(),
        "no second confirmation"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_to_a_number_no_church_owns_is_acknowledged_and_dropped() {
    let (s, _) = church_of_the_fixtures().await;
    let before = s.dump().await;
    let mut stray = fixture("message.received.sms.openapi_example.json");
    stray["data"]["payload"]["id"] = json!("stray-1");
    stray["data"]["payload"]["to"][0]["phone_number"] = json!("+12125550123");
    assert_eq!(s.post_signed(&stray, 0).await.status(), StatusCode::OK);
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

/// The phone that is member 0 of both churches A and B.
const BOTH: &str = "+13035550000";

/// Churches A (+1 202 555 0100) and B (+1 202 555 0199) with two members
/// each, `BOTH` among them, which has texted "  stop " to A; A's texts to
/// that phone once there is one (the confirmation).
async fn stopped_at_a() -> (Stack, Admin, Admin, Vec<String>) {
    let s = Stack::start().await;
    let (a, _) = s
        .church_with_members("a@grace.example", "+12025550100", 50, 2)
        .await;
    let (b, _) = s
        .church_with_members("b@hope.example", "+12025550199", 50, 2)
        .await;
    text(&s, BOTH, "+12025550100", "  stop ").await;
    let confirmations = texts_to(&s, "+12025550100", BOTH, 1).await;
    (s, a, b, confirmations)
}

/// A's admin replies "We will miss you" in the opted-out phone's
/// conversation; the conversation's id and the refusal (422 checked).
async fn reply_to_the_opted_out_phone(s: &Stack, a: &Admin) -> (String, Value) {
    let conv = conversations(s, a, "open").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = s
        .call(
            a,
            "POST",
            &format!("/api/messages/conversations/{conv}/reply"),
            Some(json!({"content": "We will miss you"})),
        )
        .await;
    let refused = body(reply, StatusCode::UNPROCESSABLE_ENTITY).await;
    (conv, refused)
}

/// The opted-out phone texts A "stop by at 5", "START" and "help"; A's
/// texts to it (the STOP confirmation first) once there are three.
async fn stop_by_start_and_help(s: &Stack) -> Vec<String> {
    text(s, BOTH, "+12025550100", "stop by at 5").await;
    text(s, BOTH, "+12025550100", "START").await;
    text(s, BOTH, "+12025550100", "help").await;
    texts_to(s, "+12025550100", BOTH, 3).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_whatever_its_case_and_spacing_is_confirmed() {
    let (s, _, _, confirmations) = stopped_at_a().await;
    assert_eq!(confirmations.len(), 1);
    assert!(
        confirmations[0].contains("unsubscribed"),
        "{confirmations:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_opts_out_at_that_church_only() {
    let (s, a, b, _) = stopped_at_a().await;
    // A's next broadcast skips the phone; B's still reaches it.
    let id_a = s.send_to_all(&a, "Choir at 7").await;
    let view = s.until_complete(&a, &id_a, Duration::from_secs(20)).await;
    assert_eq!(view["counts"]["optedOut"], 1, "{view}");
    assert_eq!(view["counts"]["delivered"], 1, "{view}");
    let id_b = s.send_to_all(&b, "Potluck Sunday").await;
    let view = s.until_complete(&b, &id_b, Duration::from_secs(20)).await;
    assert_eq!(view["counts"]["delivered"], 2, "{view}");
    let from_a = texts_to(&s, "+12025550100", BOTH, 1).await;
    assert_eq!(from_a.len(), 1, "only the confirmation from A: {from_a:?}");
    assert_eq!(
        texts_to(&s, "+12025550199", BOTH, 1).await,
        ["Potluck Sunday"]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_member_who_texted_stop_is_refused_naming_why_and_queues_nothing() {
    let (s, a, _, _) = stopped_at_a().await;
    let open = conversations(&s, &a, "open").await;
    let before = thread(&s, &a, open[0]["id"].as_str().unwrap()).await["messages"]
        .as_array()
        .unwrap()
        .len();
    let (conv, refused) = reply_to_the_opted_out_phone(&s, &a).await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["code"], "opted_out", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("STOP"),
        "{refused}"
    );
    // Nothing stored on the thread, nothing queued, nothing texted.
    let got = thread(&s, &a, &conv).await;
    assert_eq!(got["messages"].as_array().unwrap().len(), before, "{got}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texted = texts_to(&s, "+12025550100", BOTH, 1).await;
    assert_eq!(texted.len(), 1, "only the STOP confirmation: {texted:?}");
    // With a file too, refused before the file is stored.
    let form = reqwest::multipart::Form::new()
        .text("content", "Photo")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![0xff, 0xd8, 0xff, 0xe0])
                .file_name("a.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let with_file = s
        .http
        .post(s.url(&format!(
            "/api/messages/conversations/{conv}/reply-with-media"
        )))
        .bearer_auth(&a.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let refused = body(with_file, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["code"], "opted_out", "{refused}");
    // After the phone's START, the church may reply again.
    text(&s, BOTH, "+12025550100", "START").await;
    let reply = s
        .call(
            &a,
            "POST",
            &format!("/api/messages/conversations/{conv}/reply"),
            Some(json!({"content": "Welcome back"})),
        )
        .await;
    body(reply, StatusCode::CREATED).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_that_merely_starts_with_stop_is_an_ordinary_text() {
    let (s, _, _, _) = stopped_at_a().await;
    // Answered: the STOP, the START and the HELP; "stop by at 5" is not.
    let from_a = stop_by_start_and_help(&s).await;
    assert_eq!(from_a.len(), 3, "{from_a:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_opts_back_in() {
    let (s, a, _, _) = stopped_at_a().await;
    let from_a = stop_by_start_and_help(&s).await;
    // START's and HELP's answers travel as separate send jobs: either may land first.
    let answered = from_a.iter().filter(|t| t.contains("subscribed again"));
    assert_eq!(answered.count(), 1, "{from_a:?}");
    let id_a = s.send_to_all(&a, "Welcome back").await;
    let view = s.until_complete(&a, &id_a, Duration::from_secs(20)).await;
    assert_eq!(view["counts"]["delivered"], 2, "{view}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_answered_with_how_to_opt_out() {
    let (s, _, _, _) = stopped_at_a().await;
    let from_a = stop_by_start_and_help(&s).await;
    // HELP's and START's answers travel as separate send jobs: either may land first.
    let answered = from_a
        .iter()
        .filter(|t| t.contains("Reply STOP to opt out"));
    assert_eq!(answered.count(), 1, "{from_a:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_holds_every_text_newest_first_with_the_delivery_of_outbound_ones() {
    let (s, a, _, _) = stopped_at_a().await;
    let (conv, _) = reply_to_the_opted_out_phone(&s, &a).await;
    stop_by_start_and_help(&s).await;
    // A broadcast after it all, as the texts' receipts land.
    let id_a = s.send_to_all(&a, "Welcome back").await;
    let view = s.until_complete(&a, &id_a, Duration::from_secs(20)).await;
    assert_eq!(view["counts"]["delivered"], 2, "{view}");

    // The thread holds everything, newest first, with delivery of outbound texts.
    let got = thread(&s, &a, &conv).await;
    let directions: Vec<&str> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions.iter().filter(|d| **d == "inbound").count(), 4);
    assert!(
        got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["content"] != "We will miss you"),
        "the refused reply was never stored: {got}"
    );
    // The frontend's words: the HELP answer was delivered, a text has none.
    assert_eq!(got["messages"][0]["deliveryStatus"], "delivered", "{got}");
    assert_eq!(got["messages"][1]["deliveryStatus"], Value::Null, "{got}");
    assert_eq!(
        keys_of(&got["messages"][0]),
        [
            "channel",
            "content",
            "conversationId",
            "createdAt",
            "deliveryState",
            "deliveryStatus",
            "direction",
            "id",
            "media",
            "mediaName",
            "mediaSizeBytes",
            "mediaType",
            "mediaUrl",
            "memberName",
            "reactions",
            "replyTo",
            "replyToId"
        ]
    );
    s.stop().await;
}

/// Telnyx's message.received of a STOP from `phone` to +1 202 555 0100.
fn stop_event(phone: &str) -> Value {
    json!({"data": {"event_type": "message.received", "id": "ev-stop", "record_type": "event",
        "payload": {"id": "in-stop-1", "direction": "inbound", "text": "STOP", "media": [],
            "from": {"phone_number": phone}, "to": [{"phone_number": "+12025550100"}]}}, "meta": {"attempt": 1}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_delivered_three_times_is_applied_once() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", "+12025550100", 50, 1)
        .await;
    let phone = "+13035550000";
    let event = stop_event(phone);
    let receipt = json!({"data": {"event_type": "message.sent", "id": "ev-unrelated", "record_type": "event",
        "payload": {"id": "no-such-message", "to": [{"phone_number": phone, "status": "sent"}]}}});
    // Delivered three times, interleaved with an unrelated receipt.
    for e in [&event, &receipt, &event, &event] {
        let status = s.post_signed(e, 0).await.status();
        assert!(
            status == StatusCode::OK || status == StatusCode::NOT_FOUND,
            "{status}"
        );
    }
    let items = s.dump().await;
    let count = |prefix: &str| {
        items
            .iter()
            .filter(|i| i["sk"].as_str().unwrap_or_default().starts_with(prefix))
            .count()
    };
    assert_eq!(count("CONSENT#"), 1, "one opt-out record");
    assert_eq!(
        count("CMSG#") - 1,
        1,
        "one inbound text (plus the confirmation)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        texts_to(&s, "+12025550100", phone, 1).await.len(),
        1,
        "one confirmation"
    );
    let conv = &conversations(&s, &admin, "open").await[0];
    assert_eq!(conv["unreadCount"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_forged_or_stale_webhooks_are_401_and_change_nothing() {
    let s = Stack::start().await;
    s.church_with_members("a@grace.example", "+12025550100", 50, 1)
        .await;
    // Unsigned, wrongly signed or stale: 401, nothing written.
    let before = s.dump().await;
    let mut again = stop_event("+13035550000");
    again["data"]["payload"]["id"] = json!("in-stop-2");
    let unsigned = s
        .raw_post(
            "/api/webhooks/telnyx/status",
            "application/json",
            &again.to_string(),
        )
        .await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = s
        .http
        .post(s.url("/api/webhooks/telnyx/status"))
        .header(
            "telnyx-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header(
            "telnyx-signature-ed25519",
            base64::engine::general_purpose::STANDARD.encode([7u8; 64]),
        )
        .body(again.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.post_signed(&again, 301).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

/// Church A (+1 202 555 0100, two members) and B (no members); A's members
/// have texted, "Can I bring a friend?" then "Running late". The stack,
/// both admins and A's open conversations.
async fn two_texts_in_the_inbox() -> (Stack, Admin, Admin, Vec<Value>) {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("a@grace.example", "+12025550100", 50, 2)
        .await;
    let (other, _) = s
        .church_with_members("b@hope.example", "+12025550199", 50, 0)
        .await;
    text(&s, "+13035550000", "+12025550100", "Can I bring a friend?").await;
    text(&s, "+13035550001", "+12025550100", "Running late").await;
    let open = conversations(&s, &admin, "open").await;
    (s, admin, other, open)
}

/// The path of conversation `id` with `tail` after it.
fn conversation_path(id: &Value, tail: &str) -> String {
    format!("/api/messages/conversations/{}{tail}", id.as_str().unwrap())
}

/// The first page of one conversation of A's inbox; its cursor.
async fn first_page_cursor(s: &Stack, admin: &Admin, open: &[Value]) -> String {
    let first = s
        .call(admin, "GET", "/api/messages/conversations?limit=1", None)
        .await;
    let first = body(first, StatusCode::OK).await;
    assert_eq!(first["data"][0]["id"], open[0]["id"]);
    first["nextCursor"].as_str().unwrap().to_owned()
}

/// A's admin sends a 200 `status` to conversation `id`.
async fn file_as(s: &Stack, admin: &Admin, id: &Value, status: &str) {
    body(
        s.call(
            admin,
            "PATCH",
            &conversation_path(id, "/status"),
            Some(json!({ "status": status })),
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

/// The first texter's conversation, read and archived; its id.
async fn read_and_archived(s: &Stack, admin: &Admin, open: &[Value]) -> Value {
    let id = open[1]["id"].clone();
    body(
        s.call(admin, "PATCH", &conversation_path(&id, "/read"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    file_as(s, admin, &id, "archived").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_lists_conversations_most_recent_first_in_the_frontends_shape() {
    let (s, _, _, open) = two_texts_in_the_inbox().await;
    assert_eq!(open.len(), 2);
    assert_eq!(open[0]["lastMessage"], "Running late", "most recent first");
    assert_eq!(open[0]["member"]["firstName"], "M001");
    assert_eq!(
        keys_of(&open[0]),
        [
            "createdAt",
            "id",
            "lastMessage",
            "lastMessageAt",
            "member",
            "memberId",
            "status",
            "unknown",
            "unreadCount",
            "updatedAt"
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_pages_on_with_a_cursor() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    // (ext) A signed cursor pages on in O(1).
    let cursor = first_page_cursor(&s, &admin, &open).await;
    let next = s
        .call(
            &admin,
            "GET",
            &format!("/api/messages/conversations?limit=1&cursor={cursor}"),
            None,
        )
        .await;
    let next = body(next, StatusCode::OK).await;
    assert_eq!(next["data"][0]["id"], open[1]["id"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_inbox_cursor_is_refused_naming_it() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    let cursor = first_page_cursor(&s, &admin, &open).await;
    let last = if cursor.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &cursor[..cursor.len() - 1]);
    let refused = s
        .call(
            &admin,
            "GET",
            &format!("/api/messages/conversations?limit=1&cursor={tampered}"),
            None,
        )
        .await;
    let refused = body(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(refused["details"][0]["field"], "cursor");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_from_the_inbox_reaches_the_members_phone() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    // Reply: 201 with the message; it reaches the member's phone.
    let reply = s
        .call(
            &admin,
            "POST",
            &conversation_path(&open[1]["id"], "/reply"),
            Some(json!({"content": "Of course!"})),
        )
        .await;
    let reply = body(reply, StatusCode::CREATED).await;
    assert_eq!(reply["data"]["content"], "Of course!");
    assert_eq!(
        texts_to(&s, "+12025550100", "+13035550000", 1).await,
        ["Of course!"]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_and_archived_conversation_is_filed_away_as_read() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    read_and_archived(&s, &admin, &open).await;
    assert_eq!(conversations(&s, &admin, "open").await.len(), 1);
    let archived = conversations(&s, &admin, "archived").await;
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["unreadCount"], 0);
    assert_eq!(totals(&s, &admin).await, [1, 0, 1]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_text_reopens_an_archived_conversation() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    read_and_archived(&s, &admin, &open).await;
    text(&s, "+13035550000", "+12025550100", "Thanks!").await;
    assert_eq!(conversations(&s, &admin, "open").await.len(), 2);
    assert_eq!(totals(&s, &admin).await, [2, 0, 0], "a text reopens it");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_conversation_is_counted_closed_at_its_church_only() {
    let (s, admin, other, open) = two_texts_in_the_inbox().await;
    // Archived, reopened by a text, then closed.
    let id = read_and_archived(&s, &admin, &open).await;
    text(&s, "+13035550000", "+12025550100", "Thanks!").await;
    file_as(&s, &admin, &id, "closed").await;
    assert_eq!(totals(&s, &admin).await, [1, 1, 0]);
    assert_eq!(totals(&s, &other).await, [0, 0, 0]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_pages_newest_first_with_its_total_read_from_the_conversation() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    let id = &open[1]["id"];
    let reply = s
        .call(
            &admin,
            "POST",
            &conversation_path(id, "/reply"),
            Some(json!({"content": "Of course!"})),
        )
        .await;
    body(reply, StatusCode::CREATED).await;
    text(&s, "+13035550000", "+12025550100", "Thanks!").await;
    let page = s
        .call(
            &admin,
            "GET",
            &conversation_path(id, "?page=2&limit=2"),
            None,
        )
        .await;
    let page = body(page, StatusCode::OK).await;
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "limit": 2, "total": 3, "pages": 2})
    );
    let contents: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["content"])
        .collect();
    assert_eq!(contents, [&json!("Can I bring a friend?")]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inbox_input_is_refused_naming_the_field_and_writes_nothing() {
    let (s, admin, _, open) = two_texts_in_the_inbox().await;
    let id = &open[1]["id"];
    let before = s.dump().await;
    for (method, tail, payload, status, field) in [
        (
            "PATCH",
            "/status",
            json!({"status": "deleted"}),
            StatusCode::BAD_REQUEST,
            Some("status"),
        ),
        (
            "PATCH",
            "/status",
            json!({}),
            StatusCode::BAD_REQUEST,
            Some("status"),
        ),
        (
            "POST",
            "/reply",
            json!({"content": ""}),
            StatusCode::BAD_REQUEST,
            Some("content"),
        ),
        (
            "POST",
            "/reply",
            json!({"content": "x".repeat(1601)}),
            StatusCode::BAD_REQUEST,
            Some("content"),
        ),
        (
            "POST",
            "/reply",
            json!({"content": "Hi", "replyToId": "nope"}),
            StatusCode::BAD_REQUEST,
            Some("replyToId"),
        ),
    ] {
        let got = body(
            s.call(&admin, method, &conversation_path(id, tail), Some(payload))
                .await,
            status,
        )
        .await;
        assert_eq!(got["details"][0]["field"], json!(field), "{got}");
    }
    let refused = s
        .call(
            &admin,
            "GET",
            "/api/messages/conversations?status=spam",
            None,
        )
        .await;
    assert_eq!(
        body(refused, StatusCode::BAD_REQUEST).await["details"][0]["field"],
        "status"
    );
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_churchs_conversation_is_a_404_and_writes_nothing() {
    let (s, _, other, open) = two_texts_in_the_inbox().await;
    let id = &open[1]["id"];
    let before = s.dump().await;
    for (method, tail, payload) in [
        ("GET", "", None),
        ("PATCH", "/read", None),
        ("POST", "/reply", Some(json!({"content": "Hi"}))),
    ] {
        let got = s
            .call(&other, method, &conversation_path(id, tail), payload)
            .await;
        assert_eq!(got.status(), StatusCode::NOT_FOUND, "{method} {tail}");
    }
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_a_text_from_a_malformed_phone_naming_it() {
    let s = Stack::start().await;
    s.church_with_members("a@grace.example", "+12025550100", 50, 0)
        .await;
    let sim = s
        .post(
            "/sim/inbound",
            &json!({"from": "nope", "to": "+12025550100", "text": "hi"}),
        )
        .await;
    assert_eq!(
        body(sim, StatusCode::BAD_REQUEST).await["details"][0]["field"],
        "from"
    );
    s.stop().await;
}

/// A church (+1 202 555 0100, one member) with the Youth group, keyword
/// `youth`, which welcomes; a newcomer (+1 312 555 0042) has texted
/// " Youth " and then "YOUTH". The stack, the admin, the members, the
/// group's id.
async fn newcomer_texted_youth_twice() -> (Stack, Admin, Vec<String>, String) {
    let s = Stack::start().await;
    let (admin, members) = s
        .church_with_members("a@grace.example", "+12025550100", 50, 1)
        .await;
    let group = s
        .call(&admin, "POST", "/api/groups", Some(json!({"name": "Youth", "keyword": "youth",
            "welcomeMessageEnabled": true, "welcomeMessageText": "Welcome to Youth! Fridays at 7."})))
        .await;
    let group = body(group, StatusCode::CREATED).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    text(&s, NEWCOMER, "+12025550100", " Youth ").await;
    text(&s, NEWCOMER, "+12025550100", "YOUTH").await;
    (s, admin, members, group)
}

const NEWCOMER: &str = "+13125550042";

/// The Youth group's members, as listed.
async fn youth(s: &Stack, admin: &Admin, group: &str) -> Value {
    let listed = s
        .call(admin, "GET", &format!("/api/groups/{group}/members"), None)
        .await;
    body(listed, StatusCode::OK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_keyword_adds_the_texter_to_the_group_once() {
    let (s, admin, _, group) = newcomer_texted_youth_twice().await;
    let listed = youth(&s, &admin, &group).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["phone"], NEWCOMER);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_keyword_welcomes_the_texter_once_with_the_consent_wording() {
    let (s, _, _, _) = newcomer_texted_youth_twice().await;
    let welcomes = texts_to(&s, "+12025550100", NEWCOMER, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let welcomes_after = texts_to(&s, "+12025550100", NEWCOMER, 1).await;
    assert_eq!(welcomes, welcomes_after, "no second welcome");
    assert_eq!(welcomes.len(), 1, "{welcomes:?}");
    assert!(
        welcomes[0].starts_with("Welcome to Youth! Fridays at 7."),
        "{welcomes:?}"
    );
    assert!(
        welcomes[0].contains("Reply HELP for help, STOP to opt out"),
        "consent wording"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_of_a_texter_who_joined_names_the_new_member() {
    let (s, admin, _, group) = newcomer_texted_youth_twice().await;
    let listed = youth(&s, &admin, &group).await;
    let conv = &conversations(&s, &admin, "open").await[0];
    assert_eq!(conv["unknown"], false);
    assert_eq!(conv["memberId"], listed["data"][0]["id"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adding_a_member_to_a_welcoming_group_twice_welcomes_them_once() {
    let (s, admin, members, group) = newcomer_texted_youth_twice().await;
    let member = &members[0];
    for _ in 0..2 {
        let added = s
            .call(
                &admin,
                "PUT",
                &format!("/api/groups/{group}/members/{member}"),
                None,
            )
            .await;
        body(added, StatusCode::OK).await;
    }
    let welcomed = texts_to(&s, "+12025550100", "+13035550000", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        texts_to(&s, "+12025550100", "+13035550000", 1).await,
        welcomed
    );
    assert_eq!(welcomed.len(), 1, "{welcomed:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_takes_json_from_local_pages_only() {
    let s = Stack::start().await;
    s.church_with_members("a@grace.example", "+12025550100", 50, 0)
        .await;
    let text = json!({"from": "+13035550000", "to": "+12025550100", "text": "hi"}).to_string();
    // A form posted by any page (no preflight) is refused.
    let form = s.raw_post("/sim/inbound", "text/plain", &text).await;
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // JSON from a page elsewhere is refused, naming why.
    let foreign = s
        .http
        .post(s.url("/sim/inbound"))
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(foreign, StatusCode::FORBIDDEN).await["code"],
        "origin_not_local"
    );
    let local = s
        .http
        .post(s.url("/sim/inbound"))
        .header("content-type", "application/json")
        .header("origin", "http://localhost:5173")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(local, StatusCode::ACCEPTED).await["data"]["delivered"],
        true
    );
    let ledger_inbound = s.stack.simulator.as_ref().unwrap().ledger().len();
    assert_eq!(
        ledger_inbound, 0,
        "an inbound text sends nothing out by itself"
    );
    s.stop().await;
}
