//! Pausing, resuming and cancelling a broadcast, and quiet hours pausing
//! one, on the local stack with the simulator's ledger as the judge: what
//! the carrier was given, and when.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::ports::ShiftedClock;

use crate::support::{Admin, LAG_BOUND, Stack, expect_status as body};

/// Members of a slow broadcast: 30 s of sending at 1 MPS.
const MEMBERS: usize = 30;

/// A church sending at 1 MPS to `MEMBERS` members (phones +1 303 555 0000
/// onwards); the message id of a broadcast to all of them.
async fn slow_broadcast(s: &Stack) -> (Admin, Vec<String>, String) {
    let (admin, members) = s
        .church_with_members("pastor@grace.example", "+12025550100", 1, MEMBERS)
        .await;
    let id = s.send_to_all(&admin, "Vespers at 6").await;
    (admin, members, id)
}

fn ledger(s: &Stack) -> Vec<shared::telnyx::simulator::LedgerEntry> {
    s.stack.simulator.as_ref().unwrap().ledger()
}

/// Waits until the carrier has been given at least `n` texts.
async fn until_ledger(s: &Stack, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while ledger(s).len() < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} sent in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ledger's length once it has not grown for `still` (the texts
/// already claimed when a broadcast was held go out first; at 1 MPS one
/// leaves every second).
async fn when_still(s: &Stack, still: Duration) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = (ledger(s).len(), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = ledger(s).len();
        if now != seen.0 {
            seen = (now, Instant::now());
        } else if seen.1.elapsed() >= still {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the ledger never stopped growing"
        );
    }
}

/// Every number the carrier was given, checking none twice.
fn sent_once(s: &Stack) -> BTreeSet<String> {
    let entries = ledger(s);
    let to: BTreeSet<String> = entries.iter().map(|e| e.to.clone()).collect();
    assert_eq!(to.len(), entries.len(), "a member was texted twice");
    to
}

fn phone(i: usize) -> String {
    format!("+1303555{i:04}")
}

async fn control(s: &Stack, admin: &Admin, id: &str, what: &str) -> reqwest::Response {
    s.call(admin, "POST", &format!("/api/messages/{id}/{what}"), None)
        .await
}

async fn view(s: &Stack, admin: &Admin, id: &str) -> Value {
    body(
        s.call(admin, "GET", &format!("/api/messages/{id}"), None)
            .await,
        StatusCode::OK,
    )
    .await["data"]
        .clone()
}

/// The message's view once `settled` holds of it, read twice a second
/// (a slow broadcast outlasts the plan's requests per minute at the
/// shared helpers' pace).
async fn view_until(
    s: &Stack,
    admin: &Admin,
    id: &str,
    within: Duration,
    settled: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let view = view(s, admin, id).await;
        if settled(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "not so within {within:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn completed(view: &Value) -> bool {
    view["state"] == "completed"
}

fn count(view: &Value, state: &str) -> i64 {
    view["counts"][state].as_i64().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_broadcast_sends_nothing_more_until_resumed_then_each_member_once() {
    let s = Stack::start().await;
    let (admin, _, id) = slow_broadcast(&s).await;
    until_ledger(&s, 3, Duration::from_secs(20)).await;

    let paused = body(control(&s, &admin, &id, "pause").await, StatusCode::OK).await;
    assert_eq!(paused["data"]["state"], "paused", "{paused}");
    assert_eq!(paused["data"]["id"], id.as_str());
    // What was claimed before the pause goes out; then nothing.
    let sent = when_still(&s, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(ledger(&s).len(), sent, "sent while paused");
    assert!(sent < MEMBERS, "all {sent} sent: nothing was paused");
    // The fan-out stops a few seconds' sending ahead, so not every member
    // is a recipient yet: those that are wait, queued.
    let held = view_until(&s, &admin, &id, LAG_BOUND, |v| {
        count(v, "sending") == 0 && count(v, "delivered") == sent as i64
    })
    .await;
    assert_eq!(held["state"], "paused", "{held}");
    assert_eq!(count(&held, "sending"), 0, "{held}");
    assert!(count(&held, "queued") > 0, "{held}");

    let resumed = body(control(&s, &admin, &id, "resume").await, StatusCode::OK).await;
    assert_eq!(resumed["data"]["state"], "sending", "{resumed}");
    let done = view_until(&s, &admin, &id, Duration::from_secs(90), completed).await;
    assert_eq!(count(&done, "delivered"), MEMBERS as i64, "{done}");
    let to = sent_once(&s);
    assert_eq!(to, (0..MEMBERS).map(phone).collect::<BTreeSet<_>>());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_broadcast_sends_none_of_the_rest_and_reads_cancelled() {
    let s = Stack::start().await;
    let (admin, members, id) = slow_broadcast(&s).await;
    until_ledger(&s, 3, Duration::from_secs(20)).await;

    let cancelled = body(control(&s, &admin, &id, "cancel").await, StatusCode::OK).await;
    assert_eq!(cancelled["data"]["state"], "cancelled", "{cancelled}");
    let sent = when_still(&s, Duration::from_secs(3)).await;
    // The members the fan-out had not reached are never written: the
    // message's recipients are those it had, each sent or cancelled.
    let settled = view_until(&s, &admin, &id, LAG_BOUND, |v| {
        count(v, "delivered") + count(v, "cancelled") == v["totalRecipients"]
    })
    .await;
    let total = settled["totalRecipients"].as_i64().unwrap();
    assert_eq!(settled["state"], "cancelled", "{settled}");
    assert_eq!(count(&settled, "delivered"), sent as i64, "{settled}");
    assert_eq!(
        count(&settled, "delivered") + count(&settled, "cancelled"),
        total,
        "{settled}"
    );
    assert!(total <= MEMBERS as i64, "{settled}");
    assert!(count(&settled, "cancelled") > 0, "{settled}");
    assert_eq!(count(&settled, "queued") + count(&settled, "sending"), 0);
    assert_eq!(settled["cancelledCount"], settled["counts"]["cancelled"]);

    // The cancelled members are the ones the carrier never had.
    let listed = body(
        s.call(
            &admin,
            "GET",
            &format!("/api/messages/{id}/recipients?status=cancelled&limit=100"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let never: BTreeSet<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let i = members.iter().position(|m| r["memberId"] == m.as_str());
            phone(i.unwrap())
        })
        .collect();
    assert_eq!(never.len() as i64, count(&settled, "cancelled"));
    let to = sent_once(&s);
    assert!(to.is_disjoint(&never), "a cancelled member was texted");
    assert_eq!((to.len() + never.len()) as i64, total);

    // Nothing more goes out, and the history shows it cancelled.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(ledger(&s).len(), sent);
    let history = body(
        s.call(
            &admin,
            "GET",
            "/api/messages/history?status=cancelled",
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history["data"][0]["id"], id.as_str(), "{history}");
    // Red in the frontend: it went out to fewer than it was meant for.
    assert_eq!(history["data"][0]["status"], "failed", "{history}");
    s.stop().await;
}

/// A refused control is a 409 naming why; the message's state is as it
/// was — or moved on by the pipeline alone (a queued broadcast's fan-out
/// starting meanwhile), never by the control.
async fn refused(s: &Stack, admin: &Admin, id: &str, what: &str, code: &str) {
    let before = view(s, admin, id).await["state"].clone();
    let answer = body(control(s, admin, id, what).await, StatusCode::CONFLICT).await;
    assert_eq!(answer["code"], code, "{what}: {answer}");
    assert_eq!(answer["success"], false);
    let after = view(s, admin, id).await["state"].clone();
    assert!(
        after == before || (before == "queued" && after == "sending"),
        "{what}: {before} → {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_controls_are_409_and_change_nothing() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 100, 3)
        .await;
    let done = s.send_to_all(&admin, "Vespers at 6").await;
    s.until_complete(&admin, &done, Duration::from_secs(30))
        .await;
    // A finished message: not a thing written (the pipeline is idle).
    let before = s.dump().await;
    for what in ["cancel", "pause", "resume"] {
        refused(&s, &admin, &done, what, "message_finished").await;
    }
    assert_eq!(s.dump().await, before, "a refused control wrote something");
    assert_eq!(view(&s, &admin, &done).await["state"], "completed");

    // A broadcast still on its way: resumed without a pause, paused twice,
    // and nothing at all once cancelled.
    s.change_profile(
        shared::domain::ChurchId::parse(&admin.church_id).unwrap(),
        shared::ports::table::Update::default().set("sendingMps", 1),
    )
    .await;
    let going = s.send_to_all(&admin, "Choir at 7").await;
    refused(&s, &admin, &going, "resume", "message_not_paused").await;
    body(control(&s, &admin, &going, "pause").await, StatusCode::OK).await;
    refused(&s, &admin, &going, "pause", "message_paused").await;
    body(control(&s, &admin, &going, "cancel").await, StatusCode::OK).await;
    for what in ["cancel", "pause", "resume"] {
        refused(&s, &admin, &going, what, "message_cancelled").await;
    }
    assert_eq!(view(&s, &admin, &going).await["state"], "cancelled");

    // Unknown ids and another church's message are not found.
    let unknown = shared::domain::MessageId::generate().to_string();
    let other = s.register("pastor@hope.example").await;
    for (who, id) in [(&admin, unknown.as_str()), (&other, going.as_str())] {
        let answer = body(control(&s, who, id, "cancel").await, StatusCode::NOT_FOUND).await;
        assert_eq!(answer["code"], "not_found", "{answer}");
    }
    s.stop().await;
}

/// `at` in Chicago as "HH:MM", `minutes` later.
fn hhmm(at: DateTime<Utc>, minutes: i64) -> String {
    let local =
        (at + chrono::Duration::minutes(minutes)).with_timezone(&chrono_tz::America::Chicago);
    local.format("%H:%M").to_string()
}

/// The start of the minute after `at`.
fn next_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = at.with_second(0).unwrap().with_nanosecond(0).unwrap();
    floor + chrono::Duration::minutes(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_pause_a_broadcast_still_sending_and_it_resumes_when_they_end() {
    let clock = Arc::new(ShiftedClock::default());
    let s = Stack::start_clocked(clock.clone()).await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 1, MEMBERS)
        .await;
    // The stack's clock reads 5 s before a minute begins; that minute is
    // the church's quiet hours. (Shifted at most a minute: the carrier's
    // webhooks, stamped by the real clock, still verify.)
    let now = shared::ports::Clock::now(clock.as_ref());
    let ahead = (55 - i64::from(now.second())).rem_euclid(60);
    clock.shift(chrono::Duration::seconds(ahead));
    let now = shared::ports::Clock::now(clock.as_ref());
    let (start, end) = (
        next_minute(now),
        next_minute(now) + chrono::Duration::minutes(1),
    );
    let quiet = json!({
        "timezone": "America/Chicago",
        "quietHours": {"start": hhmm(now, 1), "end": hhmm(now, 2)},
    });
    body(
        s.call(&admin, "PUT", "/api/admin/profile", Some(quiet))
            .await,
        StatusCode::OK,
    )
    .await;
    let id = s.send_to_all(&admin, "Vespers at 6").await;

    // Quiet: the texts already claimed leave (a job books at most the
    // pacing horizon, 5 s, ahead: its last slot is at most 9 s after a
    // claim just before the start; a few seconds more for a loaded
    // machine), then nothing.
    let shift = shared::ports::Clock::now(clock.as_ref()) - Utc::now();
    let claimed_grace = chrono::Duration::seconds(13);
    let mid = start + claimed_grace + chrono::Duration::seconds(10);
    tokio::time::sleep(
        (mid - shared::ports::Clock::now(clock.as_ref()))
            .to_std()
            .unwrap(),
    )
    .await;
    let during = view(&s, &admin, &id).await;
    assert_eq!(
        during["state"], "sending",
        "quiet hours store nothing: {during}"
    );
    assert!(count(&during, "queued") > 0, "{during}");

    let done = view_until(&s, &admin, &id, Duration::from_secs(150), completed).await;
    assert_eq!(count(&done, "delivered"), MEMBERS as i64, "{done}");
    assert_eq!(sent_once(&s).len(), MEMBERS);
    let at: Vec<DateTime<Utc>> = ledger(&s).iter().map(|e| e.at + shift).collect();
    let before = at.iter().filter(|t| **t < start).count();
    let inside: Vec<_> = at
        .iter()
        .filter(|t| **t >= start + claimed_grace && **t < end)
        .collect();
    let after = at.iter().filter(|t| **t >= end).count();
    assert!(before > 0, "nothing sent before quiet hours: {at:?}");
    assert!(
        inside.is_empty(),
        "sent during quiet hours ({start}–{end}): {inside:?}"
    );
    assert!(after > 0, "nothing waited for the end: {at:?}");
    s.stop().await;
}
