//! The send consumer's step. A job's recipients are read in one batch; the
//! ones still `queued` get their slots on the sending number (pacing), and
//! each is then claimed (`queued → sending`), sent, and recorded
//! (`sending → sent`), every move a conditional write — so a duplicated
//! or racing job can never send twice. A recipient found `sending` past
//! its lease was claimed by a run that died between the carrier's answer
//! and the write: it becomes `uncertain` and is reported, never resent.
//!
//! Recipients of one invocation are sent concurrently, at most `in_flight`
//! carrier requests at a time across all its jobs.

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::fanout::SendJob;
use super::model::{
    Move, Status, carrier_index, message_key, recipient_key, status_of, transition, transitions,
};
use super::pacing::{self, Reservation};
use super::receipts;
use crate::crypto::Vault;
use crate::directory::members::MemberRecord;
use crate::domain::{BranchId, MemberId, PhoneNumber};
use crate::keys;
use crate::metrics::{Count, Tally, Timing};
use crate::ports::blobs::{BlobError, BlobKey, Blobs};
use crate::ports::carrier::{Carrier, CarrierError, OutboundMessage};
use crate::ports::clock::Clock;
use crate::ports::table::{Cond, Item, Table, TableError, TxOp, Update};

/// How long a claim (`sending`) is trusted to a live run: longer than a
/// carrier request may take; shorter than the send queue's visibility
/// timeout, after which a crashed run's job comes back.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// Attempts (SQS receives) after which a retryable error fails the recipient.
pub const MAX_ATTEMPTS: u32 = 5;

/// How long Telnyx may take to fetch an MMS's media.
const MEDIA_URL_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum SendStepError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("could not presign the message's media")]
    Media(#[from] BlobError),
}

/// What became of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every recipient reached a state this job does not own any more.
    Done,
    /// Some recipients hit a retryable carrier error: retry the job later,
    /// not before `after` when the carrier said so (429's reset).
    Retry {
        count: usize,
        after: Option<std::time::Duration>,
    },
    /// Nothing was claimed: the number is booked beyond the pacing horizon.
    Later(std::time::Duration),
}

pub struct Sender<'a> {
    pub table: &'a dyn Table,
    pub carrier: &'a dyn Carrier,
    pub blobs: &'a dyn Blobs,
    pub vault: &'a Vault,
    pub clock: &'a dyn Clock,
    pub webhook_url: Option<String>,
    /// Carrier requests in flight at once, shared by all jobs of an invocation.
    pub in_flight: &'a Semaphore,
    /// One booking at a time per invocation: its jobs mostly share a number,
    /// and racing each other for the same pacing item only wastes writes.
    pub booking: &'a tokio::sync::Mutex<()>,
    /// What the invocation's sends looked like (EMF metrics).
    pub metrics: &'a Tally,
}

/// What a job needs of its message and church, read once.
struct Broadcast {
    text: String,
    church_name: String,
    from: Option<PhoneNumber>,
    mps: u32,
    media_urls: Vec<String>,
}

/// One queued recipient of the job, with its member (if still there).
struct Pending {
    member_id: MemberId,
    branch: Option<BranchId>,
    member: Option<MemberRecord>,
}

/// Where a sent recipient moves, what to record on it, and — for a
/// retryable error — the least wait before the retry.
type Verdict = (
    Status,
    Vec<(&'static str, Value)>,
    Option<std::time::Duration>,
);

/// Recipient moves per transaction: with the message, day and branch
/// counters, within DynamoDB's 100 items.
const MOVES_PER_TRANSACTION: usize = 40;

fn merge(text: &str, member: &MemberRecord, church_name: &str) -> String {
    text.replace("{firstName}", &member.first_name)
        .replace("{lastName}", &member.last_name)
        .replace("{churchName}", church_name)
}

fn text_of(item: &Item, attr: &str) -> String {
    item.get(attr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Sender<'_> {
    fn now(&self) -> String {
        self.clock.now().to_rfc3339()
    }

    /// Whether a claimed (`sending`) item's claim is older than the lease: a
    /// younger one belongs to a run still sending (a duplicate delivery
    /// racing it), an older one to a run that died.
    fn abandoned(&self, claimed: &Item) -> bool {
        chrono::DateTime::parse_from_rfc3339(&text_of(claimed, "claimedAt"))
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok()
            .is_none_or(|t| self.clock.now() - t > CLAIM_LEASE)
    }

    /// Books `n` sends on `from`, one booking at a time in this invocation.
    async fn book(
        &self,
        from: &PhoneNumber,
        mps: u32,
        n: usize,
    ) -> Result<Reservation, TableError> {
        let _one_at_a_time = self.booking.lock().await;
        pacing::reserve(self.table, from, mps, n, self.clock.now()).await
    }

    /// Applies a transition; `false` when its condition no longer holds.
    async fn apply(&self, ops: Vec<TxOp>) -> Result<bool, TableError> {
        match self.table.transact(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCancelled { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn move_to(
        &self,
        job: &SendJob,
        recipient: &Pending,
        from: Status,
        to: Status,
        set: Vec<(&str, Value)>,
    ) -> Result<bool, TableError> {
        self.apply(transition(
            job.church_id,
            job.message_id,
            recipient.member_id,
            recipient.branch,
            from,
            to,
            set,
            &self.now(),
        ))
        .await
    }

    async fn broadcast(&self, job: &SendJob) -> Result<Option<Broadcast>, SendStepError> {
        let message = self
            .table
            .get(&message_key(job.church_id, job.message_id))
            .await?;
        let profile = self.table.get(&keys::church_profile(job.church_id)).await?;
        let (Some(message), Some(profile)) = (message, profile) else {
            return Ok(None);
        };
        let mut media_urls = Vec::new();
        for key in message
            .get("mediaKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let Ok(key) = BlobKey::parse(key) else {
                continue;
            };
            media_urls.push(self.blobs.presign_get(&key, MEDIA_URL_TTL).await?);
        }
        Ok(Some(Broadcast {
            text: text_of(&message, "content"),
            church_name: text_of(&profile, "name"),
            from: PhoneNumber::parse(&text_of(&profile, "telnyxPhoneNumber")).ok(),
            mps: pacing::mps_of(Some(&profile)),
            media_urls,
        }))
    }

    /// The job's recipients still `queued`; abandoned claims become `uncertain`.
    async fn pending(&self, job: &SendJob) -> Result<Vec<Pending>, TableError> {
        let recipient_keys: Vec<_> = job
            .member_ids
            .iter()
            .map(|m| recipient_key(job.message_id, *m))
            .collect();
        let member_keys: Vec<_> = job
            .member_ids
            .iter()
            .map(|m| keys::member(job.church_id, *m))
            .collect();
        let recipients = self.table.get_many(&recipient_keys).await?;
        let members = self.table.get_many(&member_keys).await?;
        let mut pending = Vec::new();
        for ((member_id, recipient), member) in job.member_ids.iter().zip(recipients).zip(members) {
            let Some(recipient) = recipient else { continue };
            let entry = Pending {
                member_id: *member_id,
                branch: BranchId::parse(&text_of(&recipient, "branchId")).ok(),
                member: member.map(MemberRecord::from_item).transpose()?,
            };
            match status_of(&recipient) {
                Some(Status::Queued) => pending.push(entry),
                Some(Status::Sending) if self.abandoned(&recipient) => {
                    // The run died after claiming it: the carrier may have it.
                    self.move_to(job, &entry, Status::Sending, Status::Uncertain, vec![])
                        .await?;
                }
                _ => {}
            }
        }
        Ok(pending)
    }

    /// Applies `moves` in as few transactions as fit; which of them held
    /// (a move whose recipient left its `from` state, to a racing run, fails
    /// alone: the batch is then retried one move at a time).
    async fn apply_all(
        &self,
        job: &SendJob,
        moves: Vec<Move<'_>>,
    ) -> Result<Vec<bool>, TableError> {
        let mut held = Vec::with_capacity(moves.len());
        let mut moves = moves.into_iter().peekable();
        while moves.peek().is_some() {
            let chunk: Vec<Move<'_>> = moves.by_ref().take(MOVES_PER_TRANSACTION).collect();
            let n = chunk.len();
            let singles: Vec<Move<'_>> = chunk.iter().map(Move::clone).collect();
            if self
                .apply(transitions(
                    job.church_id,
                    job.message_id,
                    chunk,
                    &self.now(),
                ))
                .await?
            {
                held.extend(std::iter::repeat_n(true, n));
                continue;
            }
            for one in singles {
                held.push(
                    self.apply(transitions(
                        job.church_id,
                        job.message_id,
                        vec![one],
                        &self.now(),
                    ))
                    .await?,
                );
            }
        }
        Ok(held)
    }

    /// Sends what is still queued of `job`; `attempt` is the SQS receive count.
    pub async fn step(&self, job: &SendJob, attempt: u32) -> Result<Outcome, SendStepError> {
        if let Some(conversation) = job.conversation_id.as_deref() {
            return self.step_reply(job, conversation, attempt).await;
        }
        let Some(broadcast) = self.broadcast(job).await? else {
            tracing::warn!(message_id = %job.message_id, "send job for a missing message or church; dropped");
            return Ok(Outcome::Done);
        };
        let pending = self.pending(job).await?;
        // Recipients settled without the carrier, and the ones to send to.
        let verdict = |r: &Pending| match (&r.member, &broadcast.from) {
            (_, None) => Some((Status::Failed, Some("no_sending_number"))),
            (None, _) => Some((Status::Failed, Some("member_deleted"))),
            (Some(m), _) if !m.opt_in_sms => Some((Status::OptedOut, None)),
            _ => None,
        };
        let sendable = pending.iter().filter(|r| verdict(r).is_none()).count();
        let slots = match &broadcast.from {
            Some(from) if sendable > 0 => self.book(from, broadcast.mps, sendable).await?,
            _ => Reservation::Later(std::time::Duration::ZERO),
        };
        if let (Reservation::Later(wait), true) = (slots, sendable > 0) {
            return Ok(Outcome::Later(wait));
        }
        // Claims and settlements: one transaction for the job.
        let now = self.now();
        let moves = pending
            .iter()
            .map(|r| match verdict(r) {
                Some((to, code)) => Move {
                    member: r.member_id,
                    branch: r.branch,
                    from: Status::Queued,
                    to,
                    set: code
                        .map(|c| vec![("errorCode", json!(c))])
                        .unwrap_or_default(),
                },
                None => Move {
                    member: r.member_id,
                    branch: r.branch,
                    from: Status::Queued,
                    to: Status::Sending,
                    set: vec![("attempts", json!(attempt)), ("claimedAt", json!(now))],
                },
            })
            .collect();
        let held = self.apply_all(job, moves).await?;
        let claimed: Vec<&Pending> = pending
            .iter()
            .zip(held)
            .filter(|(r, held)| *held && verdict(r).is_none())
            .map(|(r, _)| r)
            .collect();
        let sends: Vec<_> = claimed
            .iter()
            .enumerate()
            .map(|(i, recipient)| self.paced(job, &broadcast, recipient, slots.slot(i), attempt))
            .collect();
        let mut results = futures_util::future::join_all(sends).await;
        self.settle_early(&mut results).await?;
        // What the carrier said: one transaction for the job.
        let mut retry = 0;
        let mut after = None;
        let mut moves = Vec::with_capacity(results.len());
        for (recipient, result) in claimed.iter().zip(results) {
            let (to, set, retry_after) = result;
            if let Some(at_least) = retry_after {
                retry += 1;
                after = after.max(Some(at_least));
            }
            moves.push(Move {
                member: recipient.member_id,
                branch: recipient.branch,
                from: Status::Sending,
                to,
                set,
            });
        }
        self.apply_all(job, moves).await?;
        Ok(if retry > 0 {
            Outcome::Retry {
                count: retry,
                after,
            }
        } else {
            Outcome::Done
        })
    }

    /// Sends to `recipient` at its slot on the number.
    async fn paced(
        &self,
        job: &SendJob,
        broadcast: &Broadcast,
        recipient: &Pending,
        slot: Option<chrono::DateTime<chrono::Utc>>,
        attempt: u32,
    ) -> Verdict {
        let wait = slot
            .and_then(|s| (s - self.clock.now()).to_std().ok())
            .unwrap_or_default();
        self.metrics.time(Timing::PacingWait, wait);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let _permit = self.in_flight.acquire().await;
        self.send_one(job, broadcast, recipient, attempt).await
    }

    /// Sends one claimed recipient; where it moves next.
    async fn send_one(
        &self,
        job: &SendJob,
        broadcast: &Broadcast,
        recipient: &Pending,
        attempt: u32,
    ) -> Verdict {
        let code = |c: &str| vec![("errorCode", json!(c))];
        let (Some(member), Some(from)) = (&recipient.member, &broadcast.from) else {
            return (Status::Failed, code("member_deleted"), None);
        };
        let to = self
            .vault
            .open(&member.phone_sealed)
            .ok()
            .and_then(|p| PhoneNumber::parse(&p).ok());
        let Some(to) = to else {
            return (Status::Failed, code("unreadable_phone"), None);
        };
        let outbound = OutboundMessage {
            from: from.clone(),
            to,
            text: merge(&broadcast.text, member, &broadcast.church_name),
            media_urls: broadcast.media_urls.clone(),
            webhook_url: self.webhook_url.clone(),
        };
        let result = self.carry(&outbound).await;
        if matches!(result, Err(CarrierError::OptedOut)) {
            self.carrier_opt_out(job.church_id, Some(recipient.member_id), None)
                .await;
        }
        verdict(result, attempt, "RCPT")
    }

    /// One text to the carrier, timed and counted.
    async fn carry(
        &self,
        outbound: &OutboundMessage,
    ) -> Result<crate::ports::carrier::SentMessage, CarrierError> {
        let started = std::time::Instant::now();
        let result = self.carrier.send(outbound).await;
        self.metrics.time(Timing::CarrierLatency, started.elapsed());
        match &result {
            Ok(_) => self.metrics.count(Count::SmsSent),
            Err(e) => self.metrics.failed(Count::SmsSendFailed, e.code()),
        }
        result
    }

    /// The member texted STOP to the carrier (40300): honour it at this church.
    async fn carrier_opt_out(
        &self,
        church: crate::domain::ChurchId,
        member: Option<MemberId>,
        conversation: Option<&str>,
    ) {
        let stop = || {
            Update::default()
                .set("optInSms", false)
                .set("optOutSource", "carrier")
        };
        let mut keys_to_update = Vec::new();
        if let Some(member) = member {
            keys_to_update.push(keys::member(church, member));
        }
        if let Some(conversation) = conversation {
            keys_to_update.push(crate::conversations::model::conversation_key(
                church,
                conversation,
            ));
        }
        for key in keys_to_update {
            if let Err(e) = self.table.update(&key, stop(), Some(Cond::Exists)).await {
                tracing::warn!(error = %e, "could not record the carrier's opt-out");
            }
        }
    }

    /// Receipts that arrived before these answers were recorded: each
    /// accepted send is recorded at the furthest state they say (one read).
    async fn settle_early(&self, verdicts: &mut [Verdict]) -> Result<(), TableError> {
        let carrier_id = |set: &[(&'static str, Value)]| {
            set.iter()
                .find(|(attr, _)| *attr == "carrierId")
                .and_then(|(_, id)| id.as_str().map(str::to_owned))
        };
        let ids: Vec<String> = verdicts
            .iter()
            .filter(|v| v.0 == Status::Sent)
            .filter_map(|v| carrier_id(&v.1))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let early = receipts::early(self.table, &ids).await?;
        for (to, set, _) in verdicts.iter_mut().filter(|v| v.0 == Status::Sent) {
            let Some((said, code)) = carrier_id(set).and_then(|id| early.get(&id).cloned()) else {
                continue;
            };
            *to = said;
            if let (Status::Failed, Some(code)) = (said, code) {
                set.push(("errorCode", json!(code)));
            }
        }
        Ok(())
    }

    /// A conversation's outbound text: the same pacing, claim and carrier
    /// mapping as a broadcast recipient, on the thread's message.
    async fn step_reply(
        &self,
        job: &SendJob,
        conversation: &str,
        attempt: u32,
    ) -> Result<Outcome, SendStepError> {
        use crate::conversations::model::{conversation_key, message_key as thread_key};
        let key = thread_key(conversation, job.message_id);
        let message = self.table.get(&key).await?;
        let conv = self
            .table
            .get(&conversation_key(job.church_id, conversation))
            .await?;
        let profile = self.table.get(&keys::church_profile(job.church_id)).await?;
        let (Some(message), Some(conv), Some(profile)) = (message, conv, profile) else {
            tracing::warn!(message_id = %job.message_id, "reply job for a missing message; dropped");
            return Ok(Outcome::Done);
        };
        let move_to = |from: Status, to: Status, set: Vec<(&'static str, Value)>| {
            let key = key.clone();
            async move {
                let mut update = Update::default()
                    .set("deliveryStatus", to.as_str())
                    .set("updatedAt", self.now());
                for (attr, value) in set {
                    update = update.set(attr, value);
                }
                match self
                    .table
                    .update(
                        &key,
                        update,
                        Some(Cond::eq("deliveryStatus", from.as_str())),
                    )
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(TableError::ConditionFailed) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        };
        match Status::parse(&text_of(&message, "deliveryStatus")) {
            Some(Status::Queued) => {}
            Some(Status::Sending) => {
                if self.abandoned(&message) {
                    move_to(Status::Sending, Status::Uncertain, vec![]).await?;
                }
                return Ok(Outcome::Done);
            }
            _ => return Ok(Outcome::Done),
        }
        let member_id = MemberId::parse(&text_of(&conv, "memberId")).ok();
        let member = match member_id {
            Some(id) => self
                .table
                .get(&keys::member(job.church_id, id))
                .await?
                .map(MemberRecord::from_item)
                .transpose()?,
            None => None,
        };
        let opted_in = match &member {
            Some(m) => m.opt_in_sms,
            None => conv
                .get("optInSms")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        let compliance = message
            .get("compliance")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !opted_in && !compliance {
            // Opted out: nothing but the one confirmation reaches them.
            move_to(Status::Queued, Status::OptedOut, vec![]).await?;
            return Ok(Outcome::Done);
        }
        let from = PhoneNumber::parse(&text_of(&profile, "telnyxPhoneNumber")).ok();
        let to = self
            .vault
            .open(&text_of(&conv, "phoneSealed"))
            .ok()
            .and_then(|p| PhoneNumber::parse(&p).ok());
        let (Some(from), Some(to)) = (from, to) else {
            let set = vec![("errorCode", json!("no_sending_number"))];
            move_to(Status::Queued, Status::Failed, set).await?;
            return Ok(Outcome::Done);
        };
        let mps = pacing::mps_of(Some(&profile));
        let slots = self.book(&from, mps, 1).await?;
        if let Reservation::Later(wait) = slots {
            return Ok(Outcome::Later(wait));
        }
        let claim = vec![
            ("attempts", json!(attempt)),
            ("claimedAt", json!(self.now())),
        ];
        if !move_to(Status::Queued, Status::Sending, claim).await? {
            return Ok(Outcome::Done);
        }
        if let Some(wait) = slots
            .slot(0)
            .and_then(|s| (s - self.clock.now()).to_std().ok())
        {
            tokio::time::sleep(wait).await;
        }
        let _permit = self.in_flight.acquire().await;
        let media_urls =
            crate::conversations::media::carrier_urls(self.blobs, &message, MEDIA_URL_TTL).await?;
        let outbound = OutboundMessage {
            from,
            to,
            text: text_of(&message, "content"),
            media_urls,
            webhook_url: self.webhook_url.clone(),
        };
        let result = self.carry(&outbound).await;
        if matches!(result, Err(CarrierError::OptedOut)) {
            self.carrier_opt_out(job.church_id, member_id, Some(conversation))
                .await;
        }
        let mut verdicts = [verdict(result, attempt, "CMSG")];
        self.settle_early(&mut verdicts).await?;
        let [(to, set, retry)] = verdicts;
        move_to(Status::Sending, to, set).await?;
        Ok(match retry {
            Some(after) => Outcome::Retry {
                count: 1,
                after: Some(after),
            },
            None => Outcome::Done,
        })
    }
}

/// Where the carrier's answer moves a claimed text; `kind` marks what the
/// carrier-id index entry points at (a recipient or a thread message).
fn verdict(
    result: Result<crate::ports::carrier::SentMessage, CarrierError>,
    attempt: u32,
    kind: &'static str,
) -> Verdict {
    let code = |c: &str| vec![("errorCode", json!(c))];
    match result {
        Ok(sent) => (
            Status::Sent,
            vec![
                ("carrierId", json!(sent.carrier_id)),
                ("gsi1pk", json!(carrier_index(&sent.carrier_id))),
                ("gsi1sk", json!(kind)),
            ],
            None,
        ),
        Err(CarrierError::OptedOut) => (Status::OptedOut, code("40300"), None),
        Err(CarrierError::Permanent { code: c, .. }) => (Status::Failed, code(&c), None),
        Err(CarrierError::Retryable { code: c, .. }) if attempt >= MAX_ATTEMPTS => {
            (Status::Failed, code(&c), None)
        }
        // Back to queued; the job returns after a backoff.
        Err(CarrierError::Retryable {
            code: c,
            retry_after,
        }) => (
            Status::Queued,
            code(&c),
            Some(retry_after.unwrap_or_default()),
        ),
    }
}

/// When a job with retryable failures comes back: exponential in the
/// attempt (1, 2, 4 … 60 s) with full jitter, never before the carrier's reset.
pub fn backoff(attempt: u32, at_least: Option<std::time::Duration>) -> std::time::Duration {
    use rand::Rng;
    let cap = 1u64 << attempt.clamp(1, 6);
    let jittered =
        std::time::Duration::from_millis(rand::rng().random_range(500..=cap.min(60) * 1000));
    jittered.max(at_least.unwrap_or_default())
}
