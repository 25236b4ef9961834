//! The messaging side's stored things: a broadcast (`Message`), each of
//! its `Recipient`s, the church's figures per day and per branch, uploaded
//! media, accepted send requests and early receipts. Their attributes are
//! named here and in `model` (the recipient state machine), nowhere else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::Status;
use crate::domain::{BranchId, ChurchId, Encoding, MediaId, MemberId, MessageId};
use crate::keys;
use crate::ports::table::{Cond, Index, Item, Key, Query, SortCond, TableError, TxOp, Update};
use crate::store::Entity;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// How many of a message's recipients are in each state (`MessageCounts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCounts {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queued_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sending_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sent_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delivered_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub opted_out_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uncertain_count: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cancelled_count: i64,
}

impl StatusCounts {
    pub fn of(&self, status: Status) -> i64 {
        match status {
            Status::Queued => self.queued_count,
            Status::Sending => self.sending_count,
            Status::Sent => self.sent_count,
            Status::Delivered => self.delivered_count,
            Status::Failed => self.failed_count,
            Status::OptedOut => self.opted_out_count,
            Status::Uncertain => self.uncertain_count,
            Status::Cancelled => self.cancelled_count,
        }
    }

    /// Recipients that reached a final state.
    pub fn settled(&self) -> i64 {
        Status::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| self.of(s))
            .sum()
    }
}

/// Where a broadcast is as a whole (its recipients have their own states).
/// `completed` is not stored: it is read from the counts (`history`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Stored to be sent at its `scheduledAt` (the due index holds it).
    Scheduled,
    /// A scheduled send found too late to send (an outage): skipped.
    Missed,
    Queued,
    Sending,
    /// Not queued at all (the fan-out queue refused it).
    Failed,
    /// An admin paused it: its recipients not yet claimed wait.
    Paused,
    /// An admin cancelled it: its recipients not yet claimed are never sent.
    Cancelled,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Scheduled => "scheduled",
            MessageState::Missed => "missed",
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Failed => "failed",
            MessageState::Paused => "paused",
            MessageState::Cancelled => "cancelled",
        }
    }

    /// The states a pause may leave: the broadcast is still on its way.
    pub const PAUSABLE: [MessageState; 2] = [MessageState::Queued, MessageState::Sending];
    /// The states a cancel may not leave: nothing is left to stop. Every
    /// other state (one still to come, too) may be cancelled.
    pub const FINAL: [MessageState; 3] = [
        MessageState::Failed,
        MessageState::Cancelled,
        MessageState::Missed,
    ];
}

fn any_of(states: &[MessageState]) -> Cond {
    Cond::In(
        "status".into(),
        states.iter().map(|s| Value::from(s.as_str())).collect(),
    )
}

/// A broadcast: what was sent to whom, and its recipients' counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub church_id: ChurchId,
    pub content: String,
    pub target_type: String,
    #[serde(default)]
    pub target_ids: Vec<String>,
    /// The audience's size when it was sent (before fan-out counts it).
    pub total_recipients: i64,
    pub status: MessageState,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    pub segments: usize,
    pub encoding: Encoding,
    /// Its recipients, counted once the fan-out wrote the last of them
    /// (a message from before the aggregator counted them as they came).
    #[serde(default)]
    pub recipients: i64,
    /// The fan-out wrote every recipient.
    #[serde(default)]
    pub fanned_out: bool,
    #[serde(default)]
    pub media_ids: Vec<MediaId>,
    /// Where its files are in the bucket (read by the sender).
    #[serde(default)]
    pub media_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When a scheduled send is to go out (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    /// How many partitions its recipients are spread over (`keys::recipients`).
    #[serde(default = "one_lane")]
    pub lanes: u32,
    /// Recipient slots the fan-out has handed out (`Recipient::slot`).
    #[serde(default)]
    pub slots: u64,
    /// Counts a message kept on itself before the aggregator counted them
    /// (`MessageCounts`); read only for such messages.
    #[serde(flatten)]
    pub legacy_counts: StatusCounts,
}

fn one_lane() -> u32 {
    1
}

/// Write units a second one lane of recipients is planned for at the
/// number's full speed: an eighth of the ~1,000 DynamoDB allows a
/// partition, so the fan-out's bursts (it writes pages ahead of the
/// sender) stay well under it too.
const LANE_WRITE_UNITS: u32 = 125;
/// Writes a recipient takes at full speed: created, claimed, sent, delivered.
const WRITES_PER_RECIPIENT: u32 = 4;
/// Most lanes of one message (a page of recipients reads them in turn).
pub const MAX_LANES: u32 = 32;

/// Lanes for a broadcast to `audience` members from a number sending `mps`
/// a second: enough that its recipients' writes stay under
/// `LANE_WRITE_UNITS` a second on each partition key, and never more than
/// one per 200 recipients (a small message stays in one partition).
pub fn lanes_for(mps: u32, audience: i64) -> u32 {
    let for_speed = (mps * WRITES_PER_RECIPIENT).div_ceil(LANE_WRITE_UNITS);
    let for_size = u32::try_from(audience.max(0) / 200).unwrap_or(MAX_LANES);
    for_speed.min(for_size).clamp(1, MAX_LANES)
}

impl Entity for Message {
    const KIND: Option<&'static str> = Some("message");
    fn key(&self) -> Key {
        keys::message(self.church_id, self.id)
    }
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        match (self.status, self.scheduled()) {
            (MessageState::Scheduled, Some(at)) => vec![crate::scheduling::due::entry(
                &self.key(),
                crate::scheduling::due::DueKind::Scheduled,
                at,
            )],
            _ => Vec::new(),
        }
    }
}

impl Message {
    pub fn scheduled(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.scheduled_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// A scheduled send's time came: it is queued (its fan-out job is on
    /// the queue) and leaves the due index — if it is still scheduled.
    pub fn fire() -> (Update, Cond) {
        let update = crate::scheduling::due::unplace(
            Update::default().set("status", MessageState::Queued.as_str()),
        );
        (update, Cond::eq("status", MessageState::Scheduled.as_str()))
    }

    /// A scheduled send found too late: recorded missed, never sent.
    pub fn missed() -> (Update, Cond) {
        let update = crate::scheduling::due::unplace(
            Update::default()
                .set("status", MessageState::Missed.as_str())
                .set("error", "its time passed while sending was down; not sent"),
        );
        (update, Cond::eq("status", MessageState::Scheduled.as_str()))
    }

    /// Takes a message that is no longer scheduled out of the due index.
    pub fn off_schedule() -> Update {
        crate::scheduling::due::unplace(Update::default())
    }

    /// The update that marks a queued message as being sent (its first
    /// recipients): only from `queued`, so a pause or a cancel that came
    /// first is not overwritten (`first_sent` then records the time alone).
    pub fn started(now: &str) -> (Update, Cond) {
        (
            Update::default()
                .set("status", MessageState::Sending.as_str())
                .set_if_absent("sentAt", now),
            Cond::eq("status", MessageState::Queued.as_str()),
        )
    }

    /// When its first recipients went out, whatever its state.
    pub fn first_sent(now: &str) -> (Update, Cond) {
        (Update::default().set_if_absent("sentAt", now), Cond::Exists)
    }

    /// An admin pauses it: only while it is on its way.
    pub fn pause() -> (Update, Cond) {
        let update = Update::default().set("status", MessageState::Paused.as_str());
        (update, any_of(&MessageState::PAUSABLE))
    }

    /// An admin resumes it: only a paused one, which goes on sending.
    pub fn resume() -> (Update, Cond) {
        let update = Update::default().set("status", MessageState::Sending.as_str());
        (update, Cond::eq("status", MessageState::Paused.as_str()))
    }

    /// An admin cancels a scheduled send before its time: it leaves the
    /// due index too (its allowance is given back beside this write).
    pub fn cancel_scheduled() -> (Update, Cond) {
        let update = crate::scheduling::due::unplace(
            Update::default().set("status", MessageState::Cancelled.as_str()),
        );
        (update, Cond::eq("status", MessageState::Scheduled.as_str()))
    }

    /// An admin cancels it: any message not in a final state.
    pub fn cancel() -> (Update, Cond) {
        let update = Update::default().set("status", MessageState::Cancelled.as_str());
        let not_final = Cond::Not(Box::new(any_of(&MessageState::FINAL)));
        (update, Cond::And(vec![Cond::Exists, not_final]))
    }

    /// The fan-out wrote every recipient: `recipients` of them.
    pub fn fanned_out(recipients: i64) -> Update {
        Update::default()
            .set("fannedOut", true)
            .set("recipients", recipients)
    }

    /// The fan-out queue refused it: nothing will send it.
    pub fn not_queued() -> Update {
        Update::default()
            .set("status", MessageState::Failed.as_str())
            .set("error", "could not be queued")
    }

    /// Hands out `n` more recipient slots (of a message that exists).
    pub fn take_slots(n: u64) -> (Update, Cond) {
        (Update::default().add("slots", n as i64), Cond::Exists)
    }

    /// The first of the `n` slots `take_slots` handed out, read from the
    /// message as the update left it.
    pub fn slots_taken(after: &Item, n: u64) -> Result<u64, TableError> {
        after
            .get("slots")
            .and_then(serde_json::Value::as_u64)
            .and_then(|end| end.checked_sub(n))
            .ok_or_else(|| TableError::Invalid("a message's slots did not count up".into()))
    }
}

#[cfg(test)]
impl Message {
    /// A fanned-out "Hi" to everyone with `recipients` recipients, for the
    /// unit tests of what reads a message.
    pub(crate) fn sample(status: MessageState, recipients: i64, created_at: &str) -> Message {
        Message {
            id: MessageId::generate(),
            church_id: ChurchId::generate(),
            content: "Hi".into(),
            target_type: "all".into(),
            target_ids: Vec::new(),
            total_recipients: recipients,
            status,
            created_at: created_at.into(),
            sent_at: None,
            segments: 1,
            encoding: Encoding::Gsm7,
            recipients,
            fanned_out: true,
            media_ids: Vec::new(),
            media_keys: Vec::new(),
            error: None,
            scheduled_at: None,
            lanes: 1,
            slots: 0,
            legacy_counts: StatusCounts::default(),
        }
    }
}

/// A message's recipients per state, as the counts aggregator has counted
/// them from the change stream (`messaging::aggregate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageCounts {
    /// Recipients written by the fan-out so far.
    #[serde(default)]
    pub recipients: i64,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

impl Entity for MessageCounts {
    const KIND: Option<&'static str> = None;
    /// Only ever written by the aggregator's counter updates, read by key.
    fn key(&self) -> Key {
        Key::default()
    }
}

impl MessageCounts {
    /// The attribute counting recipients written.
    pub const RECIPIENTS: &'static str = "recipients";

    /// The counts of `message`: the aggregator's, or (for a message sent
    /// before it) those the message kept on itself.
    pub fn or_legacy(found: Option<MessageCounts>, message: &Message) -> MessageCounts {
        found.unwrap_or(MessageCounts {
            recipients: message.recipients,
            counts: message.legacy_counts,
        })
    }

    /// The update adding `changes` (attribute, by) to the counts.
    pub fn add(changes: impl IntoIterator<Item = (&'static str, i64)>) -> Update {
        changes
            .into_iter()
            .filter(|(_, by)| *by != 0)
            .fold(Update::default(), |u, (attr, by)| u.add(attr, by))
    }
}

/// One member's copy of a broadcast, in the message's own partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub church_id: ChurchId,
    pub message_id: MessageId,
    pub member_id: MemberId,
    pub branch_id: Option<BranchId>,
    pub first_name: String,
    pub last_name: String,
    pub status: Status,
    #[serde(default)]
    pub attempts: u32,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// When a run claimed it (`sending`): an old claim is a dead run's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<String>,
    /// Which of the message's lanes (partitions) it lives in.
    #[serde(default)]
    pub lane: u32,
    /// Its place in the message's tallies (`messaging::tally`); `None` for
    /// a recipient written before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// Goes up by one with every write, so the aggregator can tell a
    /// redelivered change from a new one.
    #[serde(default)]
    pub version: u32,
}

impl Recipient {
    /// The recipients in one of a message's lanes, in member-id order.
    pub fn lane(message: MessageId, lane: u32) -> Query {
        Query::partition(keys::recipients(message, lane))
            .sort(SortCond::BeginsWith(keys::RECIPIENT_PREFIX.into()))
    }
}

/// The kind of thing a carrier id points back to (the carrier index's sort key).
pub const RECIPIENT_KIND: &str = "RCPT";
pub const THREAD_MESSAGE_KIND: &str = "CMSG";

impl Entity for Recipient {
    const KIND: Option<&'static str> = Some("recipient");
    fn key(&self) -> Key {
        keys::recipient(self.message_id, self.lane, self.member_id)
    }
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        self.carrier_id
            .iter()
            .map(|id| {
                (
                    Index::Gsi1,
                    keys::carrier_message(id),
                    RECIPIENT_KIND.to_owned(),
                )
            })
            .collect()
    }
}

/// A church's figures: one UTC day's (`DAY#`), or a branch's (`BRANCHSTATS#`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Figures {
    /// Broadcasts created (days only).
    pub messages: i64,
    /// Texts the carrier took.
    pub sent: i64,
    pub delivered: i64,
    /// Texts that failed, refused or after the carrier took them.
    pub failed: i64,
    /// Texts that failed without the carrier taking them (also in `failed`).
    pub refused: i64,
    pub opted_out: i64,
    /// Recipients whose broadcast was cancelled before they were sent.
    pub cancelled: i64,
}

impl Entity for Figures {
    const KIND: Option<&'static str> = None;
    /// Only ever written by the aggregator's counter updates, read by key.
    fn key(&self) -> Key {
        Key::default()
    }
}

impl Figures {
    /// The day's attribute counting broadcasts created.
    pub fn message_created() -> Update {
        Update::default().add("messages", 1)
    }

    /// These figures added to `other`'s.
    pub fn plus(self, other: Figures) -> Figures {
        Figures {
            messages: self.messages + other.messages,
            sent: self.sent + other.sent,
            delivered: self.delivered + other.delivered,
            failed: self.failed + other.failed,
            refused: self.refused + other.refused,
            opted_out: self.opted_out + other.opted_out,
            cancelled: self.cancelled + other.cancelled,
        }
    }

    /// Texts that went out or were refused: what the analytics page calls
    /// messages, so that delivered, failed and pending add up to it.
    pub fn texts(&self) -> i64 {
        self.sent + self.refused
    }

    /// Texts the carrier took that have no final receipt yet.
    pub fn pending(&self) -> i64 {
        (self.texts() - self.delivered - self.failed).max(0)
    }

    pub fn is_zero(&self) -> bool {
        *self == Figures::default()
    }

    /// The update adding these figures to a day's or a branch's.
    pub fn added(&self) -> Update {
        [
            ("messages", self.messages),
            ("sent", self.sent),
            ("delivered", self.delivered),
            ("failed", self.failed),
            ("refused", self.refused),
            ("optedOut", self.opted_out),
            ("cancelled", self.cancelled),
        ]
        .into_iter()
        .filter(|(_, by)| *by != 0)
        .fold(Update::default(), |u, (attr, by)| u.add(attr, by))
    }
}

/// A file uploaded for an MMS, before any message uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaUpload {
    #[serde(skip)]
    key: Key,
    pub id: MediaId,
    pub blob_key: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
}

crate::store::keyed_by_its_key!(MediaUpload, Some("media"));

impl MediaUpload {
    pub fn new(
        church: ChurchId,
        id: MediaId,
        blob_key: &str,
        content_type: &str,
        size: u64,
        created_at: &str,
    ) -> Self {
        Self {
            key: keys::media(church, id),
            id,
            blob_key: blob_key.to_owned(),
            content_type: content_type.to_owned(),
            size,
            created_at: created_at.to_owned(),
        }
    }
}

/// A send request already accepted, under its `Idempotency-Key`: the same
/// body answers the same message; another body is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedSend {
    #[serde(skip)]
    key: Key,
    pub body_hash: String,
    pub answer: Value,
    /// The message it made (absent on claims from before it was kept).
    #[serde(default)]
    pub message_id: Option<MessageId>,
    pub ttl: i64,
}

crate::store::keyed_by_its_key!(AcceptedSend);

impl AcceptedSend {
    pub fn new(
        church: ChurchId,
        key_hash: &str,
        body_hash: String,
        answer: Value,
        message_id: MessageId,
        ttl: i64,
    ) -> Self {
        Self {
            key: keys::idempotency(church, key_hash),
            body_hash,
            answer,
            message_id: Some(message_id),
            ttl,
        }
    }

    /// Stored unless a live one holds the key (an expired one is replaced).
    pub fn claim(&self, now_unix: i64) -> Result<TxOp, crate::ports::table::TableError> {
        let expired = Cond::Lt(crate::ports::table::TTL.into(), serde_json::json!(now_unix));
        TxOp::put(self, Some(Cond::Or(vec![Cond::NotExists, expired])))
    }
}

/// What a carrier's final receipt said, kept until its send is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalState {
    pub error_code: Option<String>,
}

/// Receipts that arrived before their send was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarlyReceipt {
    pub delivered: Option<FinalState>,
    pub failed: Option<FinalState>,
}

impl Entity for EarlyReceipt {
    const KIND: Option<&'static str> = None;
    /// Only ever written by [`EarlyReceipt::record`], read by key.
    fn key(&self) -> Key {
        Key::default()
    }
}

impl EarlyReceipt {
    /// The furthest state it records, and a failure's code.
    pub fn furthest(&self) -> Option<(Status, Option<String>)> {
        match (&self.delivered, &self.failed) {
            (Some(d), _) => Some((Status::Delivered, d.error_code.clone())),
            (None, Some(f)) => Some((Status::Failed, f.error_code.clone())),
            (None, None) => None,
        }
    }

    /// The update recording a final receipt `to` (delivered or failed).
    pub fn record(to: Status, error_code: Option<String>, ttl: i64) -> Update {
        let state = serde_json::to_value(FinalState { error_code }).unwrap_or_default();
        Update::default()
            .set(to.as_str(), state)
            .set(crate::ports::table::TTL, ttl)
    }
}

/// What a carrier id points back to: a broadcast's recipient or a
/// conversation's outbound message (told apart by their `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Texted {
    #[serde(rename = "recipient")]
    Recipient(Recipient),
    #[serde(rename = "conversation_message")]
    ThreadMessage(crate::conversations::model::ThreadMessage),
}

impl Entity for Texted {
    const KIND: Option<&'static str> = None;
    fn key(&self) -> Key {
        match self {
            Texted::Recipient(r) => r.key(),
            Texted::ThreadMessage(m) => m.key(),
        }
    }
}
