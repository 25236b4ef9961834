//! A recurring message as stored, and as the API shows it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::{ChurchId, MessageId, RecurringId};
use crate::keys;
use crate::ports::table::{Cond, Index, Key, Update};
use crate::scheduling::due::{self, DueKind, utc_text};
use crate::scheduling::recurrence::{Frequency, Recurrence, TimeOfDay};
use crate::store::Entity;

/// What it is sent to: as for a send (all, branches, groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub target_type: String,
    pub target_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurringMessage {
    pub id: RecurringId,
    pub church_id: ChurchId,
    pub name: String,
    pub content: String,
    #[serde(flatten)]
    pub target: Target,
    pub frequency: String,
    pub day_of_week: Option<u32>,
    pub day_of_month: Option<u32>,
    pub time_of_day: String,
    /// The IANA zone `nextSendAt` was computed in: the church's.
    pub timezone: String,
    /// The next occurrence (UTC), also shown while inactive.
    pub next_send_at: Option<String>,
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub last_sent_at: Option<String>,
    #[serde(default)]
    pub last_message_id: Option<MessageId>,
    /// Why the last occurrence was not sent (`no_sending_number`, `plan_limit`…).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Occurrences skipped because they were found too late (an outage).
    #[serde(default)]
    pub missed_count: u32,
    #[serde(default)]
    pub last_missed_at: Option<String>,
}

const NEXT_SEND_AT: &str = "nextSendAt";
const IS_ACTIVE: &str = "isActive";

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Entity for RecurringMessage {
    const KIND: Option<&'static str> = Some("recurring");
    fn key(&self) -> Key {
        keys::recurring(self.church_id, self.id)
    }
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        match (self.is_active, self.next()) {
            (true, Some(at)) => vec![due::entry(&self.key(), DueKind::Recurring, at)],
            _ => Vec::new(),
        }
    }
}

/// What became of the occurrence due at `due`, for [`RecurringMessage::fired`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Sent(MessageId),
    /// The send was refused for a reason of the church's (its code).
    Refused(&'static str),
    /// Found too late: skipped, never sent.
    Missed,
}

impl RecurringMessage {
    pub fn frequency(&self) -> Option<Frequency> {
        match self.frequency.as_str() {
            "daily" => Some(Frequency::Daily),
            "weekly" => Frequency::weekday(self.day_of_week?).map(Frequency::Weekly),
            "monthly" => self
                .day_of_month
                .filter(|d| (1..=31).contains(d))
                .map(Frequency::Monthly),
            _ => None,
        }
    }

    pub fn recurrence(&self) -> Option<Recurrence> {
        Some(Recurrence {
            frequency: self.frequency()?,
            time: TimeOfDay::parse(&self.time_of_day)?,
        })
    }

    pub fn tz(&self) -> Tz {
        self.timezone
            .parse()
            .unwrap_or(crate::directory::churches::DEFAULT_TZ)
    }

    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.next_send_at.as_deref().and_then(parse_time)
    }

    /// Sets the next occurrence after `after` in `tz` (none when it has no valid rule).
    pub fn schedule_after(&mut self, tz: Tz, after: DateTime<Utc>) {
        self.timezone = tz.name().to_owned();
        self.next_send_at = self
            .recurrence()
            .and_then(|r| r.next_after(tz, after))
            .map(utc_text);
    }

    /// The idempotency key of its occurrence at `at`: a send made for it
    /// once is never made again, however many runs find it.
    pub fn occurrence_key(&self, at: DateTime<Utc>) -> String {
        format!("recurring:{}:{}", self.id, utc_text(at))
    }

    /// Records what became of the occurrences up to `due` and moves it on to
    /// `next` — only if it still waits for `due` (another run, or an edit,
    /// has not moved it), so each occurrence is recorded once.
    pub fn fired(
        &self,
        due: DateTime<Utc>,
        outcome: &Fired,
        missed: u32,
        last_missed: Option<DateTime<Utc>>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> (Update, Cond) {
        let updated = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut update = Update::default().set("updatedAt", updated);
        update = match next {
            Some(at) => due::place(update, &self.key(), DueKind::Recurring, at)
                .set(NEXT_SEND_AT, utc_text(at)),
            None => due::unplace(update).set(NEXT_SEND_AT, Value::Null),
        };
        update = match outcome {
            Fired::Sent(message) => update
                .set("lastSentAt", utc_text(due))
                .set("lastMessageId", message.to_string())
                .set("lastError", Value::Null),
            Fired::Refused(code) => update.set("lastError", *code),
            Fired::Missed => update,
        };
        if missed > 0 {
            update = update.add("missedCount", i64::from(missed));
        }
        if let Some(at) = last_missed {
            update = update.set("lastMissedAt", utc_text(at));
        }
        let cond = Cond::And(vec![
            Cond::eq(NEXT_SEND_AT, utc_text(due)),
            Cond::eq(IS_ACTIVE, true),
        ]);
        (update, cond)
    }

    /// Unchanged since it was read (an edit is refused if another came first).
    pub fn unchanged(&self) -> Cond {
        Cond::eq("updatedAt", self.updated_at.clone())
    }

    /// The answer of every recurring route (`targetIds` a JSON string, as
    /// the frontend reads it).
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "churchId": self.church_id,
            "name": self.name,
            "content": self.content,
            "targetType": self.target.target_type,
            "targetIds": serde_json::to_string(&self.target.target_ids).unwrap_or_else(|_| "[]".into()),
            "frequency": self.frequency,
            "dayOfWeek": self.day_of_week,
            "dayOfMonth": self.day_of_month,
            "timeOfDay": self.time_of_day,
            "timezone": self.timezone,
            "nextSendAt": self.next_send_at,
            "isActive": self.is_active,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "lastSentAt": self.last_sent_at,
            "lastMessageId": self.last_message_id,
            "lastError": self.last_error,
            "missedCount": self.missed_count,
            "lastMissedAt": self.last_missed_at,
        })
    }
}
