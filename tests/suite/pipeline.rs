//! A broadcast end to end on the local stack: send → fan-out → sender →
//! the built-in Telnyx simulator → signed receipts → counts, with the
//! simulator's ledger as the judge.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::keys;
use shared::ports::table::Update;

use crate::support::{Admin, Stack, expect_status as body, keys_of};

/// A fresh church on the growth plan sending at 100 MPS (a registered
/// 10DLC number's throughput, so the tests run quickly), with no number yet.
async fn growth_church() -> (Stack, Admin, shared::domain::ChurchId) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(
        church,
        Update::default()
            .set("plan", "growth")
            .set("sendingMps", 100),
    )
    .await;
    (s, admin, church)
}

/// A church as the broadcast tests need it: its stack, its admin, and the
/// ids of its North branch and its Choir.
struct Church {
    s: Stack,
    admin: Admin,
    north: String,
    choir: String,
}

/// A growth church sending from +1 202 555 0100 with twelve members
/// (+1 202 555 0100 to 0111): 0–3 in the North branch, 2–5 in the Choir,
/// member 11 opted out by texting STOP.
async fn twelve_members_one_stopped() -> Church {
    let (s, admin, church) = growth_church().await;
    s.own_number(&admin, "+12025550100");
    body(
        s.call(
            &admin,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "+12025550100"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;

    let north = body(
        s.call(
            &admin,
            "POST",
            "/api/branches",
            Some(json!({"name": "North"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let choir = body(
        s.call(
            &admin,
            "POST",
            "/api/groups",
            Some(json!({"name": "Choir"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..12 {
        let mut member = json!({"firstName": format!("Member{i:02}"), "lastName": "Test", "phone": format!("(202) 555-01{i:02}")});
        if i < 4 {
            member["branchId"] = json!(north);
        }
        let created = body(
            s.call(&admin, "POST", "/api/members", Some(member)).await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(created["data"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids[2..6] {
        body(
            s.call(
                &admin,
                "PUT",
                &format!("/api/groups/{choir}/members/{id}"),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }
    // Member 11 texted STOP.
    let stopped = shared::domain::MemberId::parse(&ids[11]).unwrap();
    s.stack
        .app
        .table
        .update(
            &keys::member(church, stopped),
            Update::default()
                .set("optInSms", false)
                .set("optOutSource", "keyword"),
            None,
        )
        .await
        .unwrap();
    Church {
        s,
        admin,
        north,
        choir,
    }
}

/// Sends "Hi {firstName}, welcome to {churchName}!" to all; the send's
/// answer (201 checked), the message id and its view once complete.
async fn welcome_all(c: &Church) -> (Value, String, Value) {
    let send = json!({"content": "Hi {firstName}, welcome to {churchName}!", "targetType": "all"});
    let queued = body(
        c.s.call(&c.admin, "POST", "/api/messages/send", Some(send))
            .await,
        StatusCode::CREATED,
    )
    .await["data"]
        .clone();
    let id = queued["id"].as_str().unwrap().to_owned();
    let done =
        c.s.until_complete(&c.admin, &id, Duration::from_secs(30))
            .await;
    (queued, id, done)
}

/// Sends "Rehearsal at 7" to the Choir and to North, after the welcome to
/// all; the two views once complete.
async fn welcome_then_the_choir_and_north(c: &Church) -> (Value, Value) {
    welcome_all(c).await;
    let (s, admin) = (&c.s, &c.admin);
    let overlap =
        json!({"content": "Rehearsal at 7", "targetType": "groups", "targetIds": [c.choir]});
    let both =
        json!({"content": "Rehearsal at 7", "targetType": "branches", "targetIds": [c.north]});
    let by_group = body(
        s.call(admin, "POST", "/api/messages/send", Some(overlap))
            .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_branch = body(
        s.call(admin, "POST", "/api/messages/send", Some(both))
            .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        s.until_complete(admin, &by_group, Duration::from_secs(30))
            .await,
        s.until_complete(admin, &by_branch, Duration::from_secs(30))
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_without_a_sending_number_is_refused() {
    let (s, admin, _) = growth_church().await;
    let no_number = s
        .call(
            &admin,
            "POST",
            "/api/messages/send",
            Some(json!({"content": "Hi", "targetType": "all"})),
        )
        .await;
    assert_eq!(
        body(no_number, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "no_sending_number"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_answered_queued_in_the_frontends_shape() {
    let c = twelve_members_one_stopped().await;
    let (queued, _, _) = welcome_all(&c).await;
    assert_eq!(
        keys_of(&queued),
        [
            "content",
            "createdAt",
            "encoding",
            "id",
            "segments",
            "state",
            "status",
            "targetType",
            "totalRecipients"
        ]
    );
    // Pending, in the frontend's words; queued, in the pipeline's.
    assert_eq!(
        (
            queued["status"].clone(),
            queued["state"].clone(),
            queued["totalRecipients"].clone()
        ),
        (json!("pending"), json!("queued"), json!(12))
    );
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcasts_counts_add_up_once_it_completes() {
    let c = twelve_members_one_stopped().await;
    let (_, _, done) = welcome_all(&c).await;
    assert_eq!(
        done["counts"],
        json!({"queued": 0, "sending": 0, "sent": 0, "delivered": 11, "failed": 0, "optedOut": 1, "uncertain": 0, "cancelled": 0})
    );
    assert_eq!(done["deliveryRate"], 100.0);
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_member_who_has_not_opted_out_once() {
    let c = twelve_members_one_stopped().await;
    welcome_all(&c).await;
    let ledger = c.s.stack.simulator.as_ref().unwrap().ledger();
    assert_eq!(ledger.len(), 11, "one SMS per member who has not opted out");
    let mut to: Vec<&str> = ledger.iter().map(|e| e.to.as_str()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 11, "no duplicates");
    assert!(
        !to.contains(&"+12025550111"),
        "the member who texted STOP got nothing"
    );
    assert!(ledger.iter().all(|e| e.from == "+12025550100"));
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_fills_its_merge_fields() {
    let c = twelve_members_one_stopped().await;
    welcome_all(&c).await;
    let ledger = c.s.stack.simulator.as_ref().unwrap().ledger();
    assert!(
        ledger
            .iter()
            .any(|e| e.text.as_deref() == Some("Hi Member00, welcome to Grace Chapel!")),
        "merge fields filled"
    );
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcasts_opted_out_recipients_are_listed() {
    let c = twelve_members_one_stopped().await;
    let (_, id, _) = welcome_all(&c).await;
    let opted = body(
        c.s.call(
            &c.admin,
            "GET",
            &format!("/api/messages/{id}/recipients?status=opted_out"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(opted["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys_of(&opted["data"][0]),
        [
            "errorCode",
            "firstName",
            "lastName",
            "memberId",
            "status",
            "updatedAt"
        ]
    );
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_lists_a_broadcast_with_its_delivered_count() {
    let c = twelve_members_one_stopped().await;
    let (_, id, _) = welcome_all(&c).await;
    let history = body(
        c.s.call(&c.admin, "GET", "/api/messages/history", None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history["data"][0]["id"], id.as_str());
    assert_eq!(history["data"][0]["deliveredCount"], 11);
    // The frontend's badge and filter know pending, sent and failed only.
    assert_eq!(history["data"][0]["status"], "sent");
    assert_eq!(history["data"][0]["state"], "completed");
    for (filter, listed) in [("sent", 1), ("pending", 0), ("failed", 0), ("completed", 1)] {
        let filtered = body(
            c.s.call(
                &c.admin,
                "GET",
                &format!("/api/messages/history?status={filter}"),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            filtered["data"].as_array().unwrap().len(),
            listed,
            "{filter}: {filtered}"
        );
        assert_eq!(
            filtered["pagination"]["total"], listed,
            "the total counts what the filter matches: {filtered}"
        );
    }
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_a_group_or_a_branch_reaches_its_members() {
    let c = twelve_members_one_stopped().await;
    // North (members 0–3) and the choir (2–5) overlap: six people, once each.
    let (by_group, by_branch) = welcome_then_the_choir_and_north(&c).await;
    assert_eq!(by_group["counts"]["delivered"], 4);
    assert_eq!(by_branch["counts"]["delivered"], 4);
    assert_eq!(c.s.stack.simulator.as_ref().unwrap().ledger().len(), 19);
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_analytics_come_from_the_counters_the_transitions_kept() {
    let c = twelve_members_one_stopped().await;
    welcome_then_the_choir_and_north(&c).await;
    let figures = body(
        c.s.call(&c.admin, "GET", "/api/analytics/messages?days=7", None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&figures),
        [
            "byDay",
            "deliveredCount",
            "deliveryRate",
            "failedCount",
            "pendingCount",
            "totalMessages"
        ]
    );
    assert_eq!(
        (
            figures["totalMessages"].clone(),
            figures["deliveredCount"].clone(),
            figures["deliveryRate"].clone()
        ),
        (json!(19), json!(19), json!(100.0)),
        "texts, not the 3 broadcasts: the page shows them beside Delivered"
    );
    assert_eq!(
        figures["deliveredCount"].as_i64().unwrap()
            + figures["failedCount"].as_i64().unwrap()
            + figures["pendingCount"].as_i64().unwrap(),
        figures["totalMessages"].as_i64().unwrap()
    );
    assert_eq!(figures["byDay"][6]["count"], 19, "Messages Sent, by day");
    assert_eq!(figures["byDay"].as_array().unwrap().len(), 7);
    assert_eq!(figures["byDay"][6]["delivered"], 19, "today is last");
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_analytics_count_the_texts_each_branchs_members_got() {
    let c = twelve_members_one_stopped().await;
    welcome_then_the_choir_and_north(&c).await;
    let branches = body(
        c.s.call(&c.admin, "GET", "/api/analytics/branches", None)
            .await,
        StatusCode::OK,
    )
    .await;
    let north_row = branches
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "North")
        .unwrap()
        .clone();
    assert_eq!(
        keys_of(&north_row),
        [
            "deliveryRate",
            "groupCount",
            "id",
            "memberCount",
            "messageCount",
            "name"
        ]
    );
    assert_eq!(
        (
            north_row["messageCount"].clone(),
            north_row["memberCount"].clone()
        ),
        (json!(10), json!(4)),
        "4 + 2 of the choir + 4"
    );
    c.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_summary_totals_messages_members_branches_and_groups() {
    let c = twelve_members_one_stopped().await;
    welcome_then_the_choir_and_north(&c).await;
    let summary = body(
        c.s.call(&c.admin, "GET", "/api/analytics/summary", None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        summary,
        json!({"totalMessages": 19, "averageDeliveryRate": 100.0, "totalMembers": 12, "totalBranches": 2, "totalGroups": 1}),
        "totalMessages counts texts, as GET /api/analytics/messages does"
    );
    c.s.stop().await;
}

/// A church sending from +1 202 555 0100 with one member.
async fn one_member() -> (Stack, Admin) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    s.own_number(&admin, "+12025550100");
    body(
        s.call(
            &admin,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "+12025550100"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    body(
        s.call(
            &admin,
            "POST",
            "/api/members",
            Some(json!({"firstName": "A", "lastName": "B", "phone": "2025550143"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    (s, admin)
}

/// Sends `content` to all with the idempotency key `key`.
async fn send_with_key(s: &Stack, admin: &Admin, key: &str, content: &str) -> reqwest::Response {
    s.http
        .post(s.url("/api/messages/send"))
        .bearer_auth(&admin.token)
        .header("idempotency-key", key)
        .json(&json!({"content": content, "targetType": "all"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_repeated_with_its_idempotency_key_answers_the_first_answer_and_sends_nothing_new() {
    let (s, admin) = one_member().await;
    let first = body(
        send_with_key(&s, &admin, "k-1", "Hello").await,
        StatusCode::CREATED,
    )
    .await;
    let again = body(
        send_with_key(&s, &admin, "k-1", "Hello").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        first["data"]["id"], again["data"]["id"],
        "the same key and body answer the first answer"
    );
    s.until_complete(
        &admin,
        first["data"]["id"].as_str().unwrap(),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        s.stack.simulator.as_ref().unwrap().ledger().len(),
        1,
        "nothing new sent"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_reused_for_another_send_is_refused() {
    let (s, admin) = one_member().await;
    body(
        send_with_key(&s, &admin, "k-1", "Hello").await,
        StatusCode::CREATED,
    )
    .await;
    let other = send_with_key(&s, &admin, "k-1", "Goodbye").await;
    assert_eq!(
        body(other, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "idempotency_mismatch"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_send_is_refused_naming_the_field() {
    let (s, admin) = one_member().await;
    for (payload, field) in [
        (json!({"content": "", "targetType": "all"}), "content"),
        (
            json!({"content": "x".repeat(1601), "targetType": "all"}),
            "content",
        ),
        (
            json!({"content": "x", "targetType": "everyone"}),
            "targetType",
        ),
        (json!({"content": "x", "targetType": "groups"}), "targetIds"),
        (
            json!({"content": "x", "targetType": "individual", "targetIds": ["nope"]}),
            "targetIds",
        ),
        (
            json!({"content": "x", "targetType": "branches", "targetIds": ["01J9ZQ3K4X5Y6Z7A8B9C0D1E2G"]}),
            "targetIds",
        ),
    ] {
        let refused = body(
            s.call(&admin, "POST", "/api/messages/send", Some(payload))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["details"][0]["field"], field);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_receipt_is_401() {
    let (s, _) = one_member().await;
    let unsigned = s
        .http
        .post(s.url("/api/webhooks/telnyx/status"))
        .json(&json!({"data": {"event_type": "message.finalized"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_message_is_a_404() {
    let (s, admin) = one_member().await;
    assert_eq!(
        s.call(
            &admin,
            "GET",
            "/api/messages/01J9ZQ3K4X5Y6Z7A8B9C0D1E2K",
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_that_beat_the_record_of_their_send_are_not_lost_when_telnyx_stops_retrying() {
    // A job's answers are recorded once its slowest send returns (up to
    // 400 ms), while receipts for the quick ones come 10 ms after each is
    // accepted — and this carrier delivers every webhook only once.
    let s = Stack::start_with(&[
        ("TELNYX_SIM_LATENCY_MS", "0-400"),
        ("TELNYX_SIM_WEBHOOK_ATTEMPTS", "1"),
    ])
    .await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 25)
        .await;
    let id = s.send_to_all(&admin, "Choir at 7").await;
    let view = s.until_complete(&admin, &id, Duration::from_secs(20)).await;
    assert_eq!(view["counts"]["delivered"], 25, "{view}");
    assert_eq!(
        s.stack.simulator.as_ref().unwrap().ledger().len(),
        25,
        "each sent once"
    );
    // The early receipts were there to be used (their 404 was the only delivery).
    let early = s
        .dump()
        .await
        .into_iter()
        .filter(|i| i["pk"].as_str().unwrap_or_default().starts_with("EARLY#"))
        .count();
    assert!(
        early > 0,
        "no receipt beat its send's record; the test shows nothing"
    );

    // A reply in a conversation settles the same way.
    s.post(
        "/sim/inbound",
        &json!({"from": "+13035550000", "to": "+12025550100", "text": "Can I come?"}),
    )
    .await;
    let listed = s
        .call(&admin, "GET", "/api/messages/conversations", None)
        .await;
    let conversation = body(listed, StatusCode::OK).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/messages/conversations/{conversation}");
    let replied = s
        .call(
            &admin,
            "POST",
            &format!("{path}/reply"),
            Some(json!({"content": "Yes!"})),
        )
        .await;
    body(replied, StatusCode::CREATED).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let thread = body(s.call(&admin, "GET", &path, None).await, StatusCode::OK).await;
        if thread["messages"][0]["deliveryStatus"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{thread}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
