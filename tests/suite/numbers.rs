//! The sending number: only one the platform's Telnyx account holds and
//! bought for the church links (the simulator keeps the account's
//! numbers, as `GET /v2/phone_numbers` answers them), never one another
//! church holds, and a released number is held back from other churches.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::ports::ShiftedClock;

use crate::support::{Admin, Stack, expect_status as body};

const FIRST: &str = "+12025550100";
const SECOND: &str = "+12025550122";

async fn link(s: &Stack, admin: &Admin, number: &str) -> reqwest::Response {
    s.call(
        admin,
        "POST",
        "/api/admin/phone-numbers/link",
        Some(json!({ "phoneNumber": number })),
    )
    .await
}

async fn code(response: reqwest::Response, status: StatusCode) -> Value {
    body(response, status).await["code"].clone()
}

async fn current(s: &Stack, admin: &Admin) -> Value {
    s.call(admin, "GET", "/api/numbers/current", None)
        .await
        .json::<Value>()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_the_platform_bought_for_the_church_links_verified() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    s.own_number(&a, FIRST);
    let linked = body(link(&s, &a, "(202) 555-0100").await, StatusCode::OK).await;
    assert_eq!(linked["data"]["phoneNumber"], FIRST);
    assert_eq!(linked["data"]["verified"], true);
    // The number is on the account's messaging profile, whose webhook is
    // the stack's: the frontend shows its webhook as set up.
    assert_eq!(
        linked["data"]["webhookId"],
        shared::telnyx::simulator::MESSAGING_PROFILE_ID
    );
    let current = current(&s, &a).await;
    assert_eq!(current["data"]["telnyxPhoneNumber"], FIRST);
    assert_eq!(current["data"]["telnyxVerified"], true);
    assert!(
        current["data"]["telnyxPurchasedAt"].is_string(),
        "{current}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_not_bought_for_the_church_is_refused_and_nothing_is_written() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    s.own_number(&a, FIRST);
    let before = s.dump().await;
    // Another church's number (a church's published number, say), and one
    // the account does not hold at all.
    for (who, number) in [(&b, FIRST), (&a, SECOND)] {
        assert_eq!(
            code(
                link(&s, who, number).await,
                StatusCode::UNPROCESSABLE_ENTITY
            )
            .await,
            "number_not_assigned"
        );
    }
    // One that left the account (ported out).
    s.simulator().set_number_status(FIRST, "ported_out");
    assert_eq!(
        code(link(&s, &a, FIRST).await, StatusCode::UNPROCESSABLE_ENTITY).await,
        "number_not_assigned"
    );
    assert_eq!(s.dump().await, before, "refusals write nothing");
    assert_eq!(
        s.call(&a, "GET", "/api/numbers/current", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_another_church_holds_is_refused_even_if_telnyx_says_otherwise() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    s.own_number(&a, FIRST);
    body(link(&s, &a, FIRST).await, StatusCode::OK).await;
    // An operator re-assigns the number in Telnyx by mistake: A's claim stands.
    s.own_number(&b, FIRST);
    assert_eq!(
        code(link(&s, &b, FIRST).await, StatusCode::CONFLICT).await,
        "number_taken"
    );
    assert_eq!(current(&s, &a).await["data"]["telnyxPhoneNumber"], FIRST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_number_is_held_from_other_churches_for_thirty_days() {
    let clock = Arc::new(ShiftedClock::default());
    let s = Stack::start_clocked(clock.clone()).await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    s.own_number(&a, FIRST);
    s.own_number(&a, SECOND);
    body(link(&s, &a, FIRST).await, StatusCode::OK).await;
    body(link(&s, &a, SECOND).await, StatusCode::OK).await;

    // The platform gives the released number to B: it is held for A.
    s.own_number(&b, FIRST);
    let held = body(link(&s, &b, FIRST).await, StatusCode::CONFLICT).await;
    assert_eq!(held["code"], "number_held", "{held}");
    // Texts to it still reach A, the church its members know.
    crate::inbound::text(&s, "+13035550000", FIRST, "hello").await;
    let conversations = crate::inbound::conversations(&s, &a, "open").await;
    assert_eq!(conversations.len(), 1);

    // After the hold, B may take it.
    clock.shift(chrono::Duration::days(31));
    let b = s.login("b@hope.example").await;
    let taken = body(link(&s, &b, FIRST).await, StatusCode::OK).await;
    assert_eq!(taken["data"]["phoneNumber"], FIRST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_may_take_back_the_number_it_released() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    s.own_number(&a, FIRST);
    s.own_number(&a, SECOND);
    for number in [FIRST, SECOND, FIRST] {
        body(link(&s, &a, number).await, StatusCode::OK).await;
    }
    assert_eq!(current(&s, &a).await["data"]["telnyxPhoneNumber"], FIRST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_while_telnyx_is_unreachable_is_a_503_that_writes_nothing() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    s.own_number(&a, FIRST);
    let before = s.dump().await;
    s.stack.simulator.as_ref().unwrap().stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        code(link(&s, &a, FIRST).await, StatusCode::SERVICE_UNAVAILABLE).await,
        "unavailable"
    );
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_buys_a_number_for_a_church_from_local_pages_only() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let bought = s
        .post("/sim/numbers", &json!({ "churchId": a.church_id }))
        .await;
    let bought = body(bought, StatusCode::CREATED).await;
    let number = bought["data"]["phoneNumber"].as_str().unwrap().to_owned();
    assert!(number.starts_with("+1720555"), "{bought}");
    body(link(&s, &a, &number).await, StatusCode::OK).await;

    let bad = body(
        s.post("/sim/numbers", &json!({ "churchId": "nope" })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(bad["details"][0]["field"], "churchId");
    let foreign = s
        .http
        .post(s.url("/sim/numbers"))
        .header("origin", "https://evil.example")
        .json(&json!({ "churchId": a.church_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(foreign, StatusCode::FORBIDDEN).await,
        "origin_not_local"
    );
    s.stop().await;
}
