//! The events port: every event published reaches the bus.

use serde_json::json;
use shared::ports::events::{DomainEvent, EventsError};

use crate::support::{World, conformance};

conformance!(
    every_event_of_a_large_publish_reaches_the_bus,
    malformed_events_are_refused_whole
);

async fn every_event_of_a_large_publish_reaches_the_bus(w: &World) {
    let events: Vec<DomainEvent> = (0..23)
        .map(|i| {
            DomainEvent::new(
                "message.completed",
                json!({ "churchId": "01J", "messageId": format!("m{i}") }),
            )
        })
        .collect();
    w.events.publish(events).await.unwrap();
    let seen = w.published(23).await;
    assert_eq!(seen.len(), 23);
    let mut ids: Vec<String> = seen
        .iter()
        .map(|e| e.detail["messageId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..23).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(seen.iter().all(|e| e.detail_type == "message.completed"));
}

async fn malformed_events_are_refused_whole(w: &World) {
    let events = vec![
        DomainEvent::new("member.opted_out", json!({ "memberId": "01K" })),
        DomainEvent::new("member.opted_out", json!("not an object")),
    ];
    assert!(matches!(
        w.events.publish(events).await,
        Err(EventsError::Invalid(_))
    ));
    assert!(matches!(
        w.events
            .publish(vec![DomainEvent::new("", json!({}))])
            .await,
        Err(EventsError::Invalid(_))
    ));
    assert!(
        w.published(0).await.is_empty(),
        "nothing of a refused publish may land"
    );
}
