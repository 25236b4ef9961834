//! Pacing and fairness on the local stack, judged by the simulator: a
//! number is sent at its church's throughput and never draws a 429, and a
//! small church's message goes out while a large broadcast is still running.

use std::time::{Duration, Instant};

use crate::support::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_is_sent_at_its_mps_and_the_carrier_never_refuses() {
    // The carrier allows this number 5 messages a second, as the church says.
    let s = Stack::start_with(&[("TELNYX_SIM_MPS", "5")]).await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 5, 20)
        .await;
    let id = s.send_to_all(&admin, "Vespers at 6").await;
    let view = s.until_complete(&admin, &id, Duration::from_secs(30)).await;
    assert_eq!(view["counts"]["delivered"], 20, "{view}");
    let simulator = s.stack.simulator.as_ref().unwrap();
    assert_eq!(simulator.throttled(), 0, "no 429 from the carrier");
    let mut at: Vec<_> = simulator.ledger().iter().map(|e| e.at).collect();
    at.sort();
    assert_eq!(at.len(), 20);
    // Never more than 5 in any second …
    for pair in at.windows(6) {
        let gap = pair[5] - pair[0];
        assert!(
            gap >= chrono::Duration::milliseconds(950),
            "6 sends within {gap}"
        );
    }
    // … and not much slower than 5 a second either.
    let span = at[19] - at[0];
    assert!(
        span <= chrono::Duration::milliseconds(19 * 200 + 1_000),
        "20 sends took {span}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_churchs_message_goes_out_during_a_large_broadcast() {
    let s = Stack::start_with(&[]).await;
    // About 10 s of sending at 20 messages a second.
    let (large, _) = s
        .church_with_members("large@grace.example", "+12025550100", 20, 200)
        .await;
    let (small, _) = s
        .church_with_members("small@hope.example", "+12025550199", 20, 5)
        .await;
    let broadcast = s.send_to_all(&large, "Easter services").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let message = s.send_to_all(&small, "Prayer meeting moved").await;
    let view = s
        .until_complete(&small, &message, Duration::from_secs(5))
        .await;
    let waited = started.elapsed();
    assert_eq!(view["counts"]["delivered"], 5, "{view}");
    assert!(
        waited < Duration::from_secs(3),
        "the small church waited {waited:?}"
    );
    let large_view = s
        .call(&large, "GET", &format!("/api/messages/{broadcast}"), None)
        .await;
    let large_view = crate::support::expect_status(large_view, reqwest::StatusCode::OK).await;
    assert_ne!(
        large_view["data"]["state"], "completed",
        "the large broadcast was still sending: {large_view}"
    );
    s.stop().await;
}
