//! The queue port: SQS's delivery semantics on both adapters.

use std::collections::BTreeSet;
use std::time::Duration;

use shared::ports::queue::{OutgoingMessage, QueueError};

use crate::support::{MAX_RECEIVES, World, conformance};

conformance!(
    a_batch_of_any_size_is_delivered_once_deleted,
    a_received_message_is_hidden_until_its_visibility_ends,
    changing_visibility_to_zero_releases_a_message,
    a_message_moves_to_the_dead_letter_queue_after_max_receives,
    a_delayed_message_waits,
    a_message_over_256_kib_is_refused,
    a_delay_over_15_minutes_is_refused,
    a_receive_of_more_than_10_or_of_none_is_refused,
);

async fn receive_all(w: &World, want: usize) -> Vec<shared::ports::ReceivedMessage> {
    let mut got = Vec::new();
    for _ in 0..40 {
        got.extend(
            w.queue
                .receive(10, Duration::from_millis(200), None)
                .await
                .unwrap(),
        );
        if got.len() >= want {
            break;
        }
    }
    got
}

async fn a_batch_of_any_size_is_delivered_once_deleted(w: &World) {
    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"job\":{i}}}")).collect();
    w.queue
        .send_batch(bodies.iter().cloned().map(OutgoingMessage::new).collect())
        .await
        .unwrap();
    let received = receive_all(w, 25).await;
    let got: BTreeSet<String> = received.iter().map(|m| m.body.clone()).collect();
    assert_eq!(got, bodies.iter().cloned().collect::<BTreeSet<_>>());
    assert!(received.iter().all(|m| m.receive_count == 1));
    for m in &received {
        w.queue.delete(&m.receipt_handle).await.unwrap();
    }
    assert!(
        w.queue
            .receive(10, Duration::from_millis(300), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.queue.approximate_depth().await.unwrap(), 0);
}

async fn a_received_message_is_hidden_until_its_visibility_ends(w: &World) {
    w.queue
        .send_batch(vec![OutgoingMessage::new("fan-out page 1")])
        .await
        .unwrap();
    let first = w
        .queue
        .receive(1, Duration::from_secs(2), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        w.queue
            .receive(1, Duration::ZERO, None)
            .await
            .unwrap()
            .is_empty(),
        "in flight must be hidden"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = w
        .queue
        .receive(1, Duration::from_secs(2), None)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].body, "fan-out page 1");
    assert_eq!(again[0].receive_count, 2);
}

async fn changing_visibility_to_zero_releases_a_message(w: &World) {
    w.queue
        .send_batch(vec![OutgoingMessage::new("retry me")])
        .await
        .unwrap();
    let first = w
        .queue
        .receive(1, Duration::from_secs(2), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    w.queue
        .change_visibility(&first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let again = w
        .queue
        .receive(1, Duration::from_secs(2), None)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, "retry me");
}

async fn a_message_moves_to_the_dead_letter_queue_after_max_receives(w: &World) {
    w.queue
        .send_batch(vec![OutgoingMessage::new("poison")])
        .await
        .unwrap();
    for attempt in 1..=MAX_RECEIVES {
        let got = w
            .queue
            .receive(1, Duration::from_secs(2), Some(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    // The next receive finds it over the limit and redrives it.
    assert!(
        w.queue
            .receive(1, Duration::from_secs(1), None)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = w
        .dead_letters
        .receive(1, Duration::from_secs(3), None)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}

async fn a_delayed_message_waits(w: &World) {
    w.queue
        .send_batch(vec![
            OutgoingMessage::new("later").delayed(Duration::from_secs(2)),
        ])
        .await
        .unwrap();
    assert!(
        w.queue
            .receive(1, Duration::from_millis(500), None)
            .await
            .unwrap()
            .is_empty()
    );
    let got = w
        .queue
        .receive(1, Duration::from_secs(5), None)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "later");
}

async fn a_message_over_256_kib_is_refused(w: &World) {
    let huge = OutgoingMessage::new("x".repeat(256 * 1024 + 1));
    assert!(matches!(
        w.queue.send_batch(vec![huge]).await,
        Err(QueueError::Invalid(_))
    ));
    assert_eq!(
        w.queue.approximate_depth().await.unwrap(),
        0,
        "nothing of a refused batch may land"
    );
}

async fn a_delay_over_15_minutes_is_refused(w: &World) {
    let too_late = OutgoingMessage::new("x").delayed(Duration::from_secs(16 * 60));
    assert!(matches!(
        w.queue.send_batch(vec![too_late]).await,
        Err(QueueError::Invalid(_))
    ));
    assert_eq!(
        w.queue.approximate_depth().await.unwrap(),
        0,
        "nothing of a refused batch may land"
    );
}

async fn a_receive_of_more_than_10_or_of_none_is_refused(w: &World) {
    assert!(matches!(
        w.queue.receive(11, Duration::ZERO, None).await,
        Err(QueueError::Invalid(_))
    ));
    assert!(matches!(
        w.queue.receive(0, Duration::ZERO, None).await,
        Err(QueueError::Invalid(_))
    ));
}
