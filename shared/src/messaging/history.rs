//! What an admin reads of past broadcasts: the history (newest first), one
//! message's summary, and its recipients a page at a time. Counts come from
//! what the aggregator counted (`MessageCounts`, a few seconds behind the
//! recipients at most), never from counting recipients.

use serde::Serialize;

use super::entities::{Message, MessageCounts, MessageState, Recipient};
use super::model::Status;
use super::rate::delivery_rate;
use crate::directory::model::{ChurchCounters, Counter};
use crate::domain::{ChurchId, MemberId, MessageId};
use crate::keys;
use crate::ports::table::{Cursor, Query, SortCond, Table, TableError};
use crate::store::Entities;

/// How many recipients a message has in each state (API.md's `counts`).
/// Fields in alphabetical order: the order every JSON answer has had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CountsView {
    pub cancelled: i64,
    pub delivered: i64,
    pub failed: i64,
    pub opted_out: i64,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub uncertain: i64,
}

/// A message as the history and the detail show it (fields alphabetical,
/// as the answers always were).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSummary {
    /// Recipients never sent because the message was cancelled.
    pub cancelled_count: i64,
    pub content: String,
    pub counts: CountsView,
    pub created_at: String,
    pub delivered_count: i64,
    pub delivery_rate: f64,
    pub encoding: crate::domain::Encoding,
    pub failed_count: i64,
    pub id: MessageId,
    pub segments: usize,
    pub sent_at: Option<String>,
    /// Where the message is (queued, sending, completed, scheduled, paused, cancelled, …).
    pub state: &'static str,
    /// What the frontend shows: [`shown_status`] of the state.
    pub status: &'static str,
    pub target_type: String,
    pub total_recipients: i64,
}

/// A message with its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Counted {
    pub message: Message,
    pub counts: MessageCounts,
}

/// `messages` with their counts, read in one batch.
pub async fn with_counts(
    table: &dyn Table,
    messages: Vec<Message>,
) -> Result<Vec<Counted>, TableError> {
    let keys: Vec<_> = messages
        .iter()
        .map(|m| keys::message_counts(m.church_id, m.id))
        .collect();
    let counts = table.load_many::<MessageCounts>(&keys).await?;
    Ok(messages
        .into_iter()
        .zip(counts)
        .map(|(message, found)| Counted {
            counts: MessageCounts::or_legacy(found, &message),
            message,
        })
        .collect())
}

/// A message's status in the frontend's words (the original backend's
/// three: its history badges and filter know no others): `pending` until
/// every recipient settled, then `failed` when nothing was delivered and
/// something failed — or the message went out to no one (failed whole,
/// cancelled, missed) — else `sent`.
pub fn shown_status(state: &str, delivered: i64, failed: i64) -> &'static str {
    match state {
        "completed" if delivered == 0 && failed > 0 => "failed",
        "completed" => "sent",
        "failed" | "cancelled" | "missed" => "failed",
        _ => "pending",
    }
}

/// Whether a summary answers a `?status=` filter: the frontend's words
/// (pending, sent, failed) or a state's (cancelled, scheduled, …).
fn answers_filter(summary: &MessageSummary, status: Option<&str>) -> bool {
    status.is_none_or(|s| summary.status == s || summary.state == s)
}

/// Where a broadcast is as a whole: `completed` once the fan-out wrote
/// every recipient and the aggregator counted each of them in a final
/// state (unless it was never queued, or was cancelled: a cancelled message
/// reads `cancelled` however its recipients settled); otherwise its stored
/// state (`paused` among them).
pub fn summary_state(counted: &Counted) -> &'static str {
    let Counted { message, counts } = counted;
    let all_counted = counts.recipients == message.recipients;
    let settled = counts.counts.settled() == message.recipients;
    let stays = matches!(
        message.status,
        MessageState::Failed | MessageState::Cancelled
    );
    if message.fanned_out && all_counted && settled && !stays {
        "completed"
    } else {
        message.status.as_str()
    }
}

/// Its audience: the recipients written once the fan-out is done; before,
/// the size estimated at send time (or more, if the fan-out found more).
fn total_recipients(counted: &Counted) -> i64 {
    let Counted { message, counts } = counted;
    if message.fanned_out {
        message.recipients
    } else {
        message.total_recipients.max(counts.recipients)
    }
}

pub fn summary(counted: &Counted) -> MessageSummary {
    let message = &counted.message;
    let c = &counted.counts.counts;
    let state = summary_state(counted);
    MessageSummary {
        cancelled_count: c.cancelled_count,
        content: message.content.clone(),
        counts: CountsView {
            cancelled: c.cancelled_count,
            delivered: c.delivered_count,
            failed: c.failed_count,
            opted_out: c.opted_out_count,
            queued: c.queued_count,
            sending: c.sending_count,
            sent: c.sent_count,
            uncertain: c.uncertain_count,
        },
        created_at: message.created_at.clone(),
        delivered_count: c.delivered_count,
        delivery_rate: delivery_rate(c.delivered_count, c.failed_count),
        encoding: message.encoding,
        failed_count: c.failed_count,
        id: message.id,
        segments: message.segments,
        sent_at: message.sent_at.clone(),
        state,
        status: shown_status(state, c.delivered_count, c.failed_count),
        target_type: message.target_type.clone(),
        total_recipients: total_recipients(counted),
    }
}

/// One page of the history and how many messages the church ever created.
pub struct HistoryPage {
    pub messages: Vec<MessageSummary>,
    pub total: u64,
}

/// The church's messages, newest first, skipping `skip` and showing at most
/// `limit`, only those whose summary status is `status` when one is asked.
pub async fn history(
    table: &dyn Table,
    church: ChurchId,
    skip: usize,
    limit: usize,
    status: Option<&str>,
) -> Result<HistoryPage, TableError> {
    let query = Query::partition(keys::church(church))
        .sort(SortCond::BeginsWith(keys::MESSAGE_PREFIX.into()))
        .descending();
    let wanted = skip + limit;
    let page_size = match status {
        Some(_) => 1_000,
        None => wanted.min(1_000),
    };
    let mut shown = Vec::new();
    let mut cursor = None;
    loop {
        let (found, next) = table
            .find::<Message>(query.clone().limit(page_size as u32).after(cursor))
            .await?;
        shown.extend(
            with_counts(table, found)
                .await?
                .iter()
                .map(summary)
                .filter(|m| answers_filter(m, status)),
        );
        cursor = next;
        // Filtered, the total is what matches: every message is read (a
        // filter is the rare view; a church's history is thousands, not
        // millions). Unfiltered, the counter says it without reading.
        if cursor.is_none() || (shown.len() >= wanted && status.is_none()) {
            break;
        }
    }
    let total = match status {
        Some(_) => shown.len() as u64,
        None => table
            .load::<ChurchCounters>(&ChurchCounters::key_of(church))
            .await?
            .map_or(0, |c| c.get(Counter::MessagesCreated).max(0) as u64),
    };
    Ok(HistoryPage {
        messages: shown.into_iter().skip(skip).take(limit).collect(),
        total,
    })
}

/// One message of the church with its counts, if it has it.
pub async fn message(
    table: &dyn Table,
    church: ChurchId,
    id: MessageId,
) -> Result<Option<Counted>, TableError> {
    let Some(message) = table.load::<Message>(&keys::message(church, id)).await? else {
        return Ok(None);
    };
    Ok(with_counts(table, vec![message]).await?.pop())
}

/// A recipient as the recipients listing shows it (fields alphabetical).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientRow {
    pub error_code: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub member_id: MemberId,
    pub status: Status,
    pub updated_at: String,
}

impl From<Recipient> for RecipientRow {
    fn from(r: Recipient) -> Self {
        Self {
            error_code: r.error_code,
            first_name: r.first_name,
            last_name: r.last_name,
            member_id: r.member_id,
            status: r.status,
            updated_at: r.updated_at,
        }
    }
}

/// One page of a message's recipients, where the next begins, and how many
/// there are in all (in `status`, if asked).
pub struct RecipientsPage {
    pub rows: Vec<RecipientRow>,
    pub next: Option<Cursor>,
    pub total: u64,
}

/// Which recipients of a message to show.
pub struct RecipientsWanted {
    pub status: Option<Status>,
    /// Rows to pass over first (pages by number; 0 when a cursor is given).
    pub skip: usize,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Where a page of recipients ends: a lane, and where in it.
fn encode_cursor(lane: u32, inner: Option<Cursor>) -> Cursor {
    Cursor(format!("{lane}~{}", inner.map(|c| c.0).unwrap_or_default()))
}

fn decode_cursor(cursor: Option<Cursor>) -> Result<(u32, Option<Cursor>), TableError> {
    let Some(Cursor(raw)) = cursor else {
        return Ok((0, None));
    };
    let (lane, inner) = raw.split_once('~').ok_or(TableError::BadCursor)?;
    let lane = lane.parse().map_err(|_| TableError::BadCursor)?;
    Ok((
        lane,
        Some(Cursor(inner.to_owned())).filter(|c| !c.0.is_empty()),
    ))
}

/// A page of `message`'s recipients: lane by lane, in member-id order in each.
pub async fn recipients(
    table: &dyn Table,
    counted: &Counted,
    wanted: RecipientsWanted,
) -> Result<RecipientsPage, TableError> {
    let message = &counted.message;
    let limit = wanted.limit as usize;
    let (mut lane, mut next) = decode_cursor(wanted.cursor)?;
    let (mut rows, mut skipped) = (Vec::new(), 0);
    while lane < message.lanes.max(1) {
        // Never more than the page still needs: the cursor goes past every
        // row read, so a row read and not shown would be lost to the next page.
        let needed = (wanted.skip - skipped) + (limit - rows.len());
        let query = Recipient::lane(message.id, lane).limit(needed.clamp(1, 1_000) as u32);
        let (found, cursor) = table.find::<Recipient>(query.after(next)).await?;
        next = cursor;
        for recipient in found {
            if wanted.status.is_some_and(|s| recipient.status != s) {
                continue;
            }
            if skipped < wanted.skip {
                skipped += 1;
            } else if rows.len() < limit {
                rows.push(RecipientRow::from(recipient));
            }
        }
        if next.is_none() {
            lane += 1;
        }
        if rows.len() >= limit {
            break;
        }
    }
    let more = lane < message.lanes.max(1);
    let counts = &counted.counts;
    let total = match wanted.status {
        Some(s) => counts.counts.of(s),
        None => counts.recipients,
    };
    Ok(RecipientsPage {
        rows,
        next: more.then(|| encode_cursor(lane, next)),
        total: total.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::entities::StatusCounts;

    fn message(fanned_out: bool, recipients: i64, counts: StatusCounts) -> Counted {
        let message = Message {
            total_recipients: 12,
            recipients: if fanned_out { recipients } else { 0 },
            fanned_out,
            ..Message::sample(
                MessageState::Sending,
                recipients,
                "2026-11-25T12:00:00+00:00",
            )
        };
        Counted {
            message,
            counts: MessageCounts { recipients, counts },
        }
    }

    #[test]
    fn completed_once_fanned_out_and_every_recipient_settled() {
        let settled = StatusCounts {
            delivered_count: 10,
            failed_count: 1,
            opted_out_count: 1,
            ..StatusCounts::default()
        };
        assert_eq!(summary_state(&message(true, 12, settled)), "completed");
    }

    #[test]
    fn not_completed_until_the_aggregator_counted_every_recipient_written() {
        let settled = StatusCounts {
            delivered_count: 10,
            ..StatusCounts::default()
        };
        let mut m = message(true, 10, settled);
        m.message.recipients = 12;
        assert_eq!(summary_state(&m), "sending");
    }

    #[test]
    fn not_completed_while_recipients_wait_or_the_fan_out_runs() {
        let waiting = StatusCounts {
            delivered_count: 10,
            sent_count: 2,
            ..StatusCounts::default()
        };
        assert_eq!(summary_state(&message(true, 12, waiting)), "sending");
        let settled = StatusCounts {
            delivered_count: 12,
            ..StatusCounts::default()
        };
        assert_eq!(summary_state(&message(false, 12, settled)), "sending");
    }

    #[test]
    fn a_cancelled_message_reads_cancelled_once_its_recipients_settle() {
        let settled = StatusCounts {
            sent_count: 4,
            cancelled_count: 8,
            ..StatusCounts::default()
        };
        let mut m = message(true, 12, settled);
        m.message.status = MessageState::Cancelled;
        assert_eq!(summary_state(&m), "cancelled");
        assert_eq!(summary(&m).cancelled_count, 8);
        assert_eq!(summary(&m).counts.cancelled, 8);
    }

    #[test]
    fn a_paused_message_reads_paused_while_recipients_wait() {
        let waiting = StatusCounts {
            sent_count: 4,
            queued_count: 8,
            ..StatusCounts::default()
        };
        let mut m = message(true, 12, waiting);
        m.message.status = MessageState::Paused;
        assert_eq!(summary_state(&m), "paused");
    }

    #[test]
    fn a_message_never_queued_stays_failed() {
        let mut m = message(true, 0, StatusCounts::default());
        m.message.status = MessageState::Failed;
        assert_eq!(summary_state(&m), "failed");
    }

    #[test]
    fn the_audience_is_the_estimate_until_the_fan_out_is_done() {
        assert_eq!(
            summary(&message(false, 3, StatusCounts::default())).total_recipients,
            12
        );
        assert_eq!(
            summary(&message(true, 11, StatusCounts::default())).total_recipients,
            11
        );
    }

    #[test]
    fn the_summary_keeps_the_answer_s_fields() {
        let counts = StatusCounts {
            delivered_count: 11,
            opted_out_count: 1,
            ..StatusCounts::default()
        };
        let m = message(true, 12, counts);
        let view = serde_json::to_value(summary(&m)).unwrap();
        let expected = serde_json::json!({
            "id": m.message.id, "cancelledCount": 0, "content": "Hi", "targetType": "all", "totalRecipients": 12, "deliveredCount": 11,
            "failedCount": 0, "state": "completed", "status": "sent", "createdAt": m.message.created_at, "sentAt": null,
            "deliveryRate": 100.0, "segments": 1, "encoding": m.message.encoding,
            "counts": {"cancelled": 0, "queued": 0, "sending": 0, "sent": 0, "delivered": 11, "failed": 0, "optedOut": 1, "uncertain": 0},
        });
        assert_eq!(view, expected);
        // Serialised directly, the fields come in the same (alphabetical) order as before.
        assert_eq!(
            serde_json::to_string(&summary(&m)).unwrap(),
            expected.to_string()
        );
    }
}
