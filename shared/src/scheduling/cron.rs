//! The cron job: one EventBridge schedule, every minute, fires what is due.
//!
//! It reads the due index (`due`) with key queries — one per shard, `sort
//! key <= now` — then reads the items those keys name, consistently (the
//! index trails the table). Per due item:
//!
//! - **A recurring message** is sent through the same send use case as
//!   `POST /api/messages/send`, with its occurrence (id + scheduled time)
//!   as the idempotency key: that claim is a conditional put in the send's
//!   own transaction, so overlapping, duplicated or retried runs can never
//!   send an occurrence twice. Then its `nextSendAt` moves on, conditioned
//!   on still being the occurrence it sent.
//! - **A scheduled send**: its fan-out job is queued, then it is marked
//!   queued (conditioned on still being scheduled). A run that dies between
//!   the two leaves it due: the next run queues it again, and the fan-out
//!   writes each recipient once.
//!
//! Lateness: an occurrence found up to [`MAX_LATENESS`] after its time (a
//! slow run, a short outage) is still sent. Older ones are recorded missed
//! and skipped — an outage never ends in a burst of stale texts at 3 a.m.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::due::{self, SHARDS};
use super::recurring::{Fired, RecurringMessage};
use crate::directory::model::{Counter, Counters};
use crate::domain::{MessageId, MessageText};
use crate::messaging::entities::{Message, MessageState};
use crate::messaging::send::{self, SendError, SendRequest, Sending};
use crate::messaging::send_request::audiences;
use crate::ports::queue::Queue;
use crate::ports::table::{Cond, Key, Table, TableError, TxOp};
use crate::store::{Entities, Entity, Transaction, TransactionError};

/// How late an occurrence may still be sent.
pub const MAX_LATENESS: Duration = Duration::minutes(15);
/// Due items fired at once.
const IN_FLIGHT: usize = 32;
/// A run takes no new page after this long; what is left is due for the
/// next run a minute on (the function's timeout is 60 s).
pub const RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);
/// Missed occurrences counted one by one (a daily message down for years
/// counts this many).
const MISSED_COUNTED: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("could not send an occurrence: {0}")]
    Send(#[source] SendError),
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Due keys the index gave.
    pub found: usize,
    /// Recurring occurrences sent (their message queued).
    pub sent: usize,
    /// Scheduled sends queued.
    pub fired: usize,
    /// Occurrences or scheduled sends skipped as too late.
    pub missed: usize,
    /// Occurrences the send refused for the church's reasons (no number, plan limit).
    pub refused: usize,
    /// Items that failed for now: still due, the next run tries again.
    pub failed: usize,
    /// Stopped at its budget with pages left.
    pub cut_short: bool,
}

impl RunReport {
    fn plus(mut self, o: RunReport) -> RunReport {
        self.found += o.found;
        self.sent += o.sent;
        self.fired += o.fired;
        self.missed += o.missed;
        self.refused += o.refused;
        self.failed += o.failed;
        self.cut_short |= o.cut_short;
        self
    }
}

/// What became of one due item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Sent,
    Fired,
    Missed,
    Refused,
    /// Not due after all (the index trailed an edit, a toggle, a cancel).
    Skipped,
}

pub struct Cron<'a> {
    pub table: &'a dyn Table,
    pub fanout: &'a dyn Queue,
    pub blobs: &'a dyn crate::ports::Blobs,
    pub now: DateTime<Utc>,
}

impl Cron<'_> {
    /// One run: every shard's due items, fired.
    pub async fn run(&self) -> Result<RunReport, CronError> {
        let deadline = Instant::now() + RUN_BUDGET;
        let shards = (0..SHARDS).map(|shard| self.shard(shard, deadline));
        let mut report = RunReport::default();
        let mut first_error = None;
        for result in futures_util::future::join_all(shards).await {
            match result {
                Ok(r) => report = report.plus(r),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        tracing::info!(
            found = report.found,
            sent = report.sent,
            fired = report.fired,
            missed = report.missed,
            refused = report.refused,
            failed = report.failed,
            cut_short = report.cut_short,
            "cron run"
        );
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }

    async fn shard(&self, shard: u32, deadline: Instant) -> Result<RunReport, TableError> {
        let mut report = RunReport::default();
        let mut cursor = None;
        loop {
            if Instant::now() > deadline {
                report.cut_short = true;
                return Ok(report);
            }
            let page = self
                .table
                .query(due::query(shard, self.now).after(cursor))
                .await?;
            let keys = page
                .items
                .iter()
                .map(Key::of)
                .collect::<Result<Vec<_>, _>>()?;
            report.found += keys.len();
            report = report.plus(self.fire_all(&keys).await?);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// The items `keys` name, read consistently, fired `IN_FLIGHT` at a time.
    async fn fire_all(&self, keys: &[Key]) -> Result<RunReport, TableError> {
        let (recurring, scheduled): (Vec<Key>, Vec<Key>) = keys
            .iter()
            .cloned()
            .partition(|k| k.sk.starts_with(crate::keys::RECURRING_PREFIX));
        let recurring = self.table.load_many::<RecurringMessage>(&recurring).await?;
        let scheduled = self.table.load_many::<Message>(&scheduled).await?;
        let mut work: Vec<BoxFuture<'_, Result<Done, CronError>>> = Vec::new();
        for r in recurring.into_iter().flatten() {
            work.push(async move { self.recurring(&r).await }.boxed());
        }
        for m in scheduled.into_iter().flatten() {
            work.push(async move { self.scheduled(&m).await }.boxed());
        }
        let mut fired = futures_util::stream::iter(work).buffer_unordered(IN_FLIGHT);
        let mut report = RunReport::default();
        while let Some(done) = fired.next().await {
            match done {
                Ok(Done::Sent) => report.sent += 1,
                Ok(Done::Fired) => report.fired += 1,
                Ok(Done::Missed) => report.missed += 1,
                Ok(Done::Refused) => report.refused += 1,
                Ok(Done::Skipped) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a due item failed; the next run tries again");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Fires a recurring message's due occurrence (or records it missed).
    async fn recurring(&self, r: &RecurringMessage) -> Result<Done, CronError> {
        let (Some(due_at), Some(rule), true) = (r.next(), r.recurrence(), r.is_active) else {
            return Ok(Done::Skipped);
        };
        if due_at > self.now {
            return Ok(Done::Skipped);
        }
        let tz = r.tz();
        let cutoff = self.now - MAX_LATENESS;
        let missed = rule.between(tz, due_at, cutoff, MISSED_COUNTED);
        // The first occurrence not too late: sent now if its time has come.
        let first_in_time = match missed.last() {
            Some(last) => rule.next_after(tz, *last),
            None => Some(due_at),
        };
        let occurrence = first_in_time.filter(|t| *t <= self.now);
        let outcome = match occurrence {
            Some(at) => self.send_occurrence(r, at).await?,
            None => Fired::Missed,
        };
        let next = match occurrence {
            Some(at) => rule.next_after(tz, at),
            None => first_in_time,
        };
        let (update, cond) = r.fired(
            due_at,
            &outcome,
            missed.len() as u32,
            missed.last().copied(),
            next,
            self.now,
        );
        match self.table.update(&r.key(), update, Some(cond)).await {
            // Moved on by another run, or edited since: either way it is not ours.
            Ok(_) | Err(TableError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(match outcome {
            Fired::Sent(_) => Done::Sent,
            Fired::Refused(_) => Done::Refused,
            Fired::Missed => Done::Missed,
        })
    }

    /// Sends one occurrence through the send use case.
    async fn send_occurrence(
        &self,
        r: &RecurringMessage,
        at: DateTime<Utc>,
    ) -> Result<Fired, CronError> {
        let target = &r.target;
        let (Ok(content), Ok(audiences)) = (
            MessageText::parse(&r.content),
            audiences(&target.target_type, &target.target_ids),
        ) else {
            return Ok(Fired::Refused("invalid_message"));
        };
        let key = r.occurrence_key(at);
        let request = SendRequest {
            content,
            target_type: target.target_type.clone(),
            target_ids: target.target_ids.clone(),
            audiences,
            media: Vec::new(),
            idempotency_key: Some(key.clone()),
            scheduled_at: None,
        };
        let ctx = Sending {
            church: r.church_id,
            table: self.table,
            now: self.now,
        };
        // The occurrence is the whole request: an edit between two runs
        // does not make its second try a different one.
        match send::send(&ctx, self.fanout, self.blobs, request, &key).await {
            Ok(answer) => {
                let id = answer["id"]
                    .as_str()
                    .and_then(|id| MessageId::parse(id).ok());
                Ok(id.map_or(Fired::Refused("no_message"), Fired::Sent))
            }
            Err(SendError::NoSendingNumber) => Ok(Fired::Refused("no_sending_number")),
            Err(SendError::MonthlyLimit { .. }) => Ok(Fired::Refused("plan_limit")),
            Err(SendError::UnknownTarget(_)) => Ok(Fired::Refused("unknown_target")),
            Err(e @ (SendError::Table(_) | SendError::Queue(_) | SendError::Blob(_))) => {
                Err(CronError::Send(e))
            }
            Err(_) => Ok(Fired::Refused("refused")),
        }
    }

    /// Fires a scheduled send whose time came (or records it missed).
    async fn scheduled(&self, m: &Message) -> Result<Done, CronError> {
        let key = m.key();
        let at = m
            .scheduled()
            .filter(|_| m.status == MessageState::Scheduled);
        let Some(at) = at else {
            // Cancelled or already fired: it only leaves the index.
            match self
                .table
                .update(&key, Message::off_schedule(), Some(Cond::Exists))
                .await
            {
                Ok(_) | Err(TableError::ConditionFailed) => return Ok(Done::Skipped),
                Err(e) => return Err(e.into()),
            }
        };
        if at > self.now {
            return Ok(Done::Skipped);
        }
        if at < self.now - MAX_LATENESS {
            let (update, cond) = Message::missed();
            // Its reserved allowance goes back to the month it was for.
            let month = at.format("%Y-%m").to_string();
            let refund = Counters::default()
                .add(Counter::MessagesIn(&month), -m.total_recipients)
                .op(m.church_id);
            let missed = Transaction::new()
                .with(
                    0,
                    TxOp::Update {
                        key,
                        update,
                        cond: Some(cond),
                    },
                )
                .with(1, refund);
            return match missed.commit(self.table).await {
                Ok(()) => Ok(Done::Missed),
                Err(TransactionError::Cancelled(_)) => Ok(Done::Skipped),
                Err(TransactionError::Table(e)) => Err(e.into()),
            };
        }
        let audiences = audiences(&m.target_type, &m.target_ids).unwrap_or_default();
        send::enqueue(self.fanout, m.church_id, m.id, audiences)
            .await
            .map_err(CronError::Send)?;
        let (update, cond) = Message::fire();
        match self.table.update(&key, update, Some(cond)).await {
            Ok(_) => Ok(Done::Fired),
            // Cancelled meanwhile: the fan-out finds it cancelled and stops.
            Err(TableError::ConditionFailed) => Ok(Done::Skipped),
            Err(e) => Err(e.into()),
        }
    }
}
