//! The pipeline under faults, with the simulator's ledger as the judge:
//! carrier 5xx and 429 bursts, a crash between the carrier's 200 and the
//! status write, duplicated jobs and racing consumers, and receipts that
//! arrive late, twice, or forged.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use shared::catalog::Catalog;
use shared::keys;
use shared::local::LocalStack;
use shared::messaging::fanout;
use shared::messaging::jobs::{FanoutJob, RecipientBatch};
use shared::messaging::model::{Mark, Move, Status, apply};
use shared::messaging::sender::{Outcome, Sender};
use shared::ports::Queue;
use shared::ports::carrier::OutboundMessage;
use shared::registry::Registry;

use crate::support::{Stack, expect_status as body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_faults_and_429_bursts_never_duplicate_and_every_recipient_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = shared::config::Config::local_in(
        dir.path(),
        &[
            ("TELNYX_SIM_FAILURE_RATE", "0.2"),
            ("TELNYX_SIM_MPS", "8"),
            ("TELNYX_SIM_LATENCY_MS", "0-15"),
        ],
    )
    .unwrap();
    let stack = LocalStack::start(config, Catalog::builtin().unwrap(), &Registry::builtin())
        .await
        .unwrap();
    let s = Stack::wrap(stack, dir);
    // Above the simulator's 8 MPS, so its 429s are exercised.
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 30)
        .await;
    let id = s.send_to_all(&admin, "Hello {firstName}").await;
    // Polled gently: with retries this takes a while, and the growth plan
    // limits the church's requests per minute.
    let deadline = Instant::now() + Duration::from_secs(90);
    let counts = loop {
        let message = body(
            s.call(&admin, "GET", &format!("/api/messages/{id}"), None)
                .await,
            StatusCode::OK,
        )
        .await;
        if message["data"]["state"] == "completed" {
            break message["data"]["counts"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "recipients left non-terminal: {message}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ledger = s.stack.simulator.as_ref().unwrap().ledger();
    let mut to: Vec<&str> = ledger.iter().map(|e| e.to.as_str()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), ledger.len(), "0 duplicate SMS");
    assert_eq!(
        counts["queued"].as_i64().unwrap()
            + counts["sending"].as_i64().unwrap()
            + counts["sent"].as_i64().unwrap(),
        0,
        "0 non-terminal: {counts}"
    );
    assert_eq!(
        counts["delivered"].as_i64().unwrap() as usize,
        ledger.len(),
        "counts equal the ledger: {counts}"
    );
    assert_eq!(
        counts["delivered"].as_i64().unwrap() + counts["failed"].as_i64().unwrap(),
        30
    );
    s.stop().await;
}

/// A stack whose consumers do not run, so the test drives each step.
async fn manual_stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let mut catalog = Catalog::builtin().unwrap().clone();
    for function in &mut catalog.functions {
        function.queue_triggers.clear();
    }
    let stack = LocalStack::start(
        crate::support::local_config(dir.path()),
        &catalog,
        &Registry::builtin(),
    )
    .await
    .unwrap();
    Stack::wrap(stack, dir)
}

/// The next job on `queue`, if one comes within a moment.
async fn try_take_job<T: serde::de::DeserializeOwned>(queue: &dyn Queue) -> Option<T> {
    let got = queue
        .receive(1, Duration::from_millis(300), None)
        .await
        .unwrap();
    let message = got.into_iter().next()?;
    queue.delete(&message.receipt_handle).await.unwrap();
    Some(serde_json::from_str(&message.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_carriers_200_ends_uncertain_and_racing_consumers_send_once() {
    let s = manual_stack().await;
    let (admin, ids) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 3)
        .await;
    let app = &s.stack.app;
    let sent = s.send_to_all(&admin, "Hi").await;
    let message_id = shared::domain::MessageId::parse(&sent).unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    // Fan out until the audience is exhausted. A broadcast's first page is
    // small, so its recipients come in more than one job: the run below
    // takes them as one.
    let mut member_ids = Vec::new();
    while let Some(fanout_job) = try_take_job::<FanoutJob>(app.fanout_queue.as_ref()).await {
        fanout::step(
            app.table.as_ref(),
            app.send_queue.as_ref(),
            app.fanout_queue.as_ref(),
            fanout_job,
            &now,
        )
        .await
        .unwrap();
        while let Some(batch) = try_take_job::<RecipientBatch>(app.send_queue.as_ref()).await {
            member_ids.extend(batch.member_ids);
        }
    }
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    let job = RecipientBatch {
        church_id: church,
        message_id,
        member_ids,
    };
    assert_eq!(job.member_ids.len(), 3);

    // A run claims member 0, the carrier accepts, and the run dies before writing `sent`.
    let member = job.member_ids[0];
    let long_ago = (chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339();
    let claim = Move {
        recipient: s.recipient_key(church, message_id, member).await,
        from: Status::Queued,
        to: Status::Sending,
        marks: vec![Mark::Claimed {
            attempt: 1,
            at: long_ago,
        }],
    };
    assert_eq!(
        apply(app.table.as_ref(), &[claim], &now).await.unwrap(),
        vec![true]
    );
    let carrier = app.carrier.as_deref().unwrap();
    carrier
        .send(&OutboundMessage {
            from: shared::domain::PhoneNumber::parse("+12025550100").unwrap(),
            to: shared::domain::PhoneNumber::parse("+12025550200").unwrap(),
            text: "Hi".into(),
            media_urls: vec![],
            webhook_url: None,
        })
        .await
        .unwrap();
    // The job comes back — twice at once, as a duplicate delivery and a racing consumer.
    let in_flight = tokio::sync::Semaphore::new(4);
    let metrics = shared::metrics::Tally::default();
    let sender = Sender {
        table: app.table.as_ref(),
        carrier,
        blobs: app.blobs.as_ref(),
        vault: app.vault().unwrap(),
        clock: app.clock.as_ref(),
        webhook_url: None,
        in_flight: &in_flight,
        booking: &tokio::sync::Mutex::new(()),
        metrics: &metrics,
    };
    let (a, b) = tokio::join!(sender.step(&job, 2), sender.step(&job, 2));
    assert_eq!(a.unwrap(), Outcome::Done);
    assert_eq!(b.unwrap(), Outcome::Done);
    let ledger = s.stack.simulator.as_ref().unwrap().ledger();
    assert_eq!(
        ledger.len(),
        3,
        "the crashed one is not resent; the others go once each"
    );
    let emf = metrics.emf(0);
    assert_eq!(emf[0]["SmsSent"], 2, "what the dashboard counts: {emf:?}");
    assert_eq!(emf[0]["CarrierLatency"].as_array().unwrap().len(), 2);
    let stack = &s;
    let status = |m| async move {
        let key = stack.recipient_key(church, message_id, m).await;
        app.table.get(&key).await.unwrap().unwrap()["status"].clone()
    };
    assert_eq!(status(member).await, "uncertain");
    assert_eq!(status(job.member_ids[1]).await, "sent");
    let view = s
        .view_when(&admin, &sent, |m| m["counts"]["sent"] == 2)
        .await;
    assert_eq!(view["data"]["counts"]["uncertain"], 1);
    assert_eq!(view["data"]["counts"]["sent"], 2);
    let _ = ids;

    // Receipts for member 1: finalized first, then a late `sent`, then a replay.
    let key = s.recipient_key(church, message_id, job.member_ids[1]).await;
    let recipient = app.table.get(&key).await.unwrap().unwrap();
    let carrier_id = recipient["carrierId"].as_str().unwrap().to_owned();
    assert_eq!(recipient["gsi1pk"], keys::carrier_message(&carrier_id));
    let post = |event_id: &str, event_type: &str, status: &str, age: i64| {
        let event = json!({"data": {"event_type": event_type, "id": event_id, "record_type": "event",
            "payload": {"id": carrier_id, "to": [{"phone_number": "+12025550201", "status": status}]}}, "meta": {"attempt": 1}});
        let s = &s;
        async move { s.post_signed(&event, age).await }
    };
    let now_s = chrono::Utc::now().timestamp();
    assert_eq!(
        post("ev-1", "message.finalized", "delivered", 0)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        post("ev-2", "message.sent", "sent", 0).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post("ev-1", "message.finalized", "delivered", 0)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        status(job.member_ids[1]).await,
        "delivered",
        "a late sent never overwrites delivered"
    );
    let view = s
        .view_when(&admin, &sent, |m| m["counts"]["delivered"] == 1)
        .await;
    // Given time to count a replay twice, it still counts once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let view_later = s.view_when(&admin, &sent, |_| true).await;
    assert_eq!(
        view["data"]["counts"]["delivered"], 1,
        "a replayed event counts once"
    );
    assert_eq!(view_later["data"]["counts"], view["data"]["counts"]);
    let stale = post("ev-3", "message.finalized", "delivery_failed", 301).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    let forged = s
        .http
        .post(s.url("/api/webhooks/telnyx/status"))
        .header("telnyx-timestamp", now_s.to_string())
        .header("telnyx-signature-ed25519", "A".repeat(88))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(job.member_ids[1]).await,
        "delivered",
        "refused webhooks change nothing"
    );
    s.stop().await;
}
