//! Lambda's DynamoDB stream event and the change stream port's `Change`,
//! both ways: the aggregator reads the event Lambda sends, and the local
//! stack sends it the same event built from the embedded stream.

use aws_lambda_events::event::dynamodb::{Event, EventRecord, StreamRecord, StreamViewType};

use crate::ports::changes::{Change, ChangeKind};
use crate::ports::table::{Item, Key};

#[derive(Debug, thiserror::Error)]
pub enum StreamEventError {
    #[error("stream record {event_id}: {what}")]
    Record { event_id: String, what: String },
}

fn image(raw: serde_dynamo::Item) -> Result<Option<Item>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    serde_dynamo::from_item(raw)
        .map(Some)
        .map_err(|e| format!("an image in DynamoDB's format does not read: {e}"))
}

fn change(record: EventRecord) -> Result<Change, StreamEventError> {
    let fail = |what: String| StreamEventError::Record {
        event_id: record.event_id.clone(),
        what,
    };
    let Some(kind) = ChangeKind::from_name(&record.event_name) else {
        return Err(fail(format!("unknown eventName `{}`", record.event_name)));
    };
    let c = record.change;
    let keys = image(c.keys).map_err(&fail)?.unwrap_or_default();
    let key = Key::of(&keys).map_err(|e| fail(e.to_string()))?;
    Ok(Change {
        sequence: c.sequence_number.unwrap_or_default(),
        kind,
        key,
        old: image(c.old_image).map_err(&fail)?,
        new: image(c.new_image).map_err(&fail)?,
        at_unix: c.approximate_creation_date_time.timestamp(),
    })
}

/// The changes an event carries, in its order. A record that does not
/// read is logged and left out: one bad record must not hold its whole
/// shard back (the stream would deliver it again and again).
pub fn changes_of(event: Event) -> Vec<Change> {
    event
        .records
        .into_iter()
        .filter_map(|record| match change(record) {
            Ok(change) => Some(change),
            Err(e) => {
                tracing::error!(error = %e, "stream record unreadable; left out of the counts");
                None
            }
        })
        .collect()
}

fn wire(item: Option<&Item>) -> serde_dynamo::Item {
    item.and_then(|i| serde_dynamo::to_item(i).ok())
        .unwrap_or_default()
}

/// The event Lambda's event source mapping would send for `changes` of the
/// stream `stream_arn`.
pub fn event_of(changes: &[Change], stream_arn: &str) -> Event {
    let records = changes
        .iter()
        .map(|c| {
            let mut keys = Item::new();
            keys.insert("pk".into(), c.key.pk.clone().into());
            keys.insert("sk".into(), c.key.sk.clone().into());
            let mut change = StreamRecord::default();
            change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp(c.at_unix, 0).unwrap_or_default();
            change.keys = wire(Some(&keys));
            change.new_image = wire(c.new.as_ref());
            change.old_image = wire(c.old.as_ref());
            change.sequence_number = Some(c.sequence.clone());
            change.stream_view_type = Some(StreamViewType::NewAndOldImages);
            let mut record = EventRecord::default();
            record.aws_region = "local".into();
            record.change = change;
            record.event_id = c.sequence.clone();
            record.event_name = c.kind.name().into();
            record.event_source = Some("aws:dynamodb".into());
            record.event_version = Some("1.1".into());
            record.event_source_arn = Some(stream_arn.to_owned());
            record
        })
        .collect();
    let mut event = Event::default();
    event.records = records;
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_survives_the_lambda_event_both_ways() {
        let new = json!({"pk": "MSG#1", "sk": "RCPT#2", "type": "recipient", "version": 3, "slot": 12, "ok": true, "carrierId": null});
        let change = Change {
            sequence: "000000000000000000042".into(),
            kind: ChangeKind::Modify,
            key: Key::new("MSG#1", "RCPT#2"),
            old: Some(
                json!({"pk": "MSG#1", "sk": "RCPT#2", "version": 2})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            new: Some(new.as_object().unwrap().clone()),
            at_unix: 1_764_583_200,
        };
        let event = event_of(
            std::slice::from_ref(&change),
            "arn:aws:dynamodb:local:0:table/t/stream/x",
        );
        // Through JSON, as Lambda delivers it.
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(
            wire["Records"][0]["dynamodb"]["NewImage"]["slot"],
            json!({"N": "12"})
        );
        let back = changes_of(serde_json::from_value(wire).unwrap());
        assert_eq!(back, vec![change]);
    }
}
