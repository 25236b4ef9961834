//! The events port on EventBridge.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::ports::events::{
    DomainEvent, Events, EventsError, MAX_ENTRIES_PER_CALL, SOURCE, check_event,
};

#[derive(Clone, Debug)]
pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), EventsError> {
        events.iter().try_for_each(check_event)?;
        for chunk in events.chunks(MAX_ENTRIES_PER_CALL) {
            let entries = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(SOURCE)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| EventsError::backend("put events", e))?;
            let failed = usize::try_from(out.failed_entry_count()).unwrap_or(0);
            if failed > 0 {
                let reason = out
                    .entries()
                    .iter()
                    .find_map(|e| e.error_message())
                    .unwrap_or("no reason given")
                    .to_owned();
                return Err(EventsError::Rejected { failed, reason });
            }
        }
        Ok(())
    }
}
