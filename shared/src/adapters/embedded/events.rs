//! The events port as an append-only log in the embedded store.

use async_trait::async_trait;
use rusqlite::params;

use super::store::{Store, StoreError};
use crate::ports::events::{DomainEvent, Events, EventsError, check_event};

#[derive(Clone)]
pub struct EmbeddedEvents {
    store: Store,
}

/// An event as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub id: String,
    pub event: DomainEvent,
    pub published_at: String,
}

impl EmbeddedEvents {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The whole log, oldest first.
    pub async fn all(&self) -> Result<Vec<PublishedEvent>, EventsError> {
        self.store
            .run(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, detail_type, detail, published_at FROM events ORDER BY seq",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?;
                rows.map(|row| {
                    let (id, detail_type, detail, published_at) = row?;
                    let detail = serde_json::from_str(&detail)
                        .map_err(|e| EventsError::backend("decode an event", e))?;
                    Ok(PublishedEvent {
                        id,
                        event: DomainEvent {
                            detail_type,
                            detail,
                        },
                        published_at,
                    })
                })
                .collect()
            })
            .await
    }
}

impl From<StoreError> for EventsError {
    fn from(e: StoreError) -> Self {
        EventsError::backend("use the embedded store", e)
    }
}

impl From<rusqlite::Error> for EventsError {
    fn from(e: rusqlite::Error) -> Self {
        EventsError::backend("append to the event log", e)
    }
}

#[async_trait]
impl Events for EmbeddedEvents {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), EventsError> {
        events.iter().try_for_each(check_event)?;
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let now = chrono::Utc::now().to_rfc3339();
                for event in events {
                    tx.execute(
                        "INSERT INTO events (id, detail_type, detail, published_at) VALUES (?1, ?2, ?3, ?4)",
                        params![ulid::Ulid::new().to_string(), event.detail_type, event.detail.to_string(), now],
                    )?;
                }
                Ok(tx.commit()?)
            })
            .await
    }
}
