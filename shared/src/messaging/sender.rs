//! The send consumer's step. A job's texts get their slots on the sending
//! number (pacing), and each is then claimed (`queued → sending`), sent,
//! and recorded (`sending → sent`), every move a conditional write — so a
//! duplicated or racing job can never send twice. A text found `sending`
//! past its lease was claimed by a run that died between the carrier's
//! answer and the write: it becomes `uncertain` and is reported, never
//! resent.
//!
//! Two kinds of job share that path: a broadcast's [`RecipientBatch`](super::jobs::RecipientBatch)
//! (`recipients.rs`) and a conversation's reply (`reply.rs`). What they
//! share — the wait for a slot, the carrier call, a carrier-reported STOP,
//! receipts that beat the answer, what an answer means — is here.
//!
//! A broadcast's job claims nothing while its message is paused, or while
//! the church's quiet hours hold over it (`hold.rs`): it comes back later
//! (`Outcome::Later`). A cancelled message's queued recipients become
//! `cancelled` instead of being claimed.
//!
//! Texts of one invocation are sent concurrently, at most `in_flight`
//! carrier requests at a time across all its jobs.

mod hold;
mod recipients;
mod reply;
mod verdict;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use super::jobs::SendJob;
use super::model::{Mark, Status};
use super::pacing::{self, Reservation};
use super::receipts;
use crate::crypto::Vault;
use crate::domain::{ChurchId, ConversationId, MemberId, PhoneNumber};
use crate::keys;
use crate::metrics::{Count, Tally, Timing};
use crate::ports::blobs::{BlobError, Blobs};
use crate::ports::carrier::{Carrier, CarrierError, OutboundMessage, SentMessage};
use crate::ports::clock::Clock;
use crate::ports::table::{Cond, Table, TableError};
pub use verdict::backoff;
use verdict::{Sent, Verdict, verdict};

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
    /// Every text reached a state this job does not own any more.
    Done,
    /// Some texts hit a retryable carrier error: retry the job later,
    /// not before `after` when the carrier said so (429's reset).
    Retry {
        count: usize,
        after: Option<std::time::Duration>,
    },
    /// Nothing was claimed: the number is booked beyond the pacing horizon,
    /// the message is paused, or the church's quiet hours hold.
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

/// Whose opt-out a carrier-reported STOP (40300) records.
struct Addressee {
    church: ChurchId,
    member: Option<MemberId>,
    conversation: Option<ConversationId>,
}

impl Sender<'_> {
    /// Sends what is still queued of a send-queue job; `attempt` is its SQS
    /// receive count.
    pub async fn run(&self, job: &SendJob, attempt: u32) -> Result<Outcome, SendStepError> {
        match job {
            SendJob::Recipients(batch) => self.step(batch, attempt).await,
            SendJob::Reply(reply) => self.reply(reply, attempt).await,
        }
    }

    fn now(&self) -> String {
        self.clock.now().to_rfc3339()
    }

    /// Whether a claimed (`sending`) item's claim is older than the lease: a
    /// younger one belongs to a run still sending (a duplicate delivery
    /// racing it), an older one to a run that died.
    fn abandoned(&self, claimed_at: Option<&str>) -> bool {
        claimed_at
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
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

    /// Sends one claimed text at its `slot` on the number, within the
    /// invocation's cap on carrier requests in flight; where it moves next.
    async fn deliver(
        &self,
        outbound: &OutboundMessage,
        slot: Option<DateTime<Utc>>,
        to: Addressee,
        attempt: u32,
        kind: Sent,
    ) -> Verdict {
        let wait = slot
            .and_then(|s| (s - self.clock.now()).to_std().ok())
            .unwrap_or_default();
        self.metrics.time(Timing::PacingWait, wait);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let _permit = self.in_flight.acquire().await;
        let result = self.carry(outbound).await;
        if matches!(result, Err(CarrierError::OptedOut)) {
            self.carrier_opt_out(&to).await;
        }
        verdict(result, attempt, kind)
    }

    /// One text to the carrier, timed and counted.
    async fn carry(&self, outbound: &OutboundMessage) -> Result<SentMessage, CarrierError> {
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
    async fn carrier_opt_out(&self, to: &Addressee) {
        let mut updates = Vec::new();
        if let Some(member) = to.member {
            let stop = crate::directory::members::carrier_opt_out();
            updates.push((keys::member(to.church, member), stop));
        }
        if let Some(conversation) = to.conversation {
            let stop = crate::conversations::model::Conversation::carrier_opt_out();
            updates.push((keys::conversation(to.church, conversation), stop));
        }
        for (key, stop) in updates {
            if let Err(e) = self.table.update(&key, stop, Some(Cond::Exists)).await {
                tracing::warn!(error = %e, "could not record the carrier's opt-out");
            }
        }
    }

    /// Receipts stored early after [`settle_early`](Self::settle_early) read
    /// them (a receipt that raced the record): where each text recorded
    /// `sent` under these carrier ids moves on to. With the webhook's own
    /// second look (`receipts::apply`), one of the two sides always sees
    /// the other's write, so a receipt is not lost when Telnyx stops retrying.
    async fn settle_late(
        &self,
        recorded_sent: &[String],
    ) -> Result<std::collections::HashMap<String, receipts::Early>, TableError> {
        if recorded_sent.is_empty() {
            return Ok(Default::default());
        }
        receipts::early(self.table, recorded_sent).await
    }

    /// Receipts that arrived before these answers were recorded: each
    /// accepted send is recorded at the furthest state they say (one read).
    async fn settle_early(&self, verdicts: &mut [Verdict]) -> Result<(), TableError> {
        let sent = |v: &&mut Verdict| v.to == Status::Sent;
        let ids: Vec<String> = verdicts
            .iter_mut()
            .filter(sent)
            .filter_map(|v| v.carrier_id().map(str::to_owned))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let early = receipts::early(self.table, &ids).await?;
        for v in verdicts.iter_mut().filter(sent) {
            let Some((said, code)) = v.carrier_id().and_then(|id| early.get(id).cloned()) else {
                continue;
            };
            v.to = said;
            if let (Status::Failed, Some(code)) = (said, code) {
                v.marks.push(Mark::ErrorCode(code));
            }
        }
        Ok(())
    }
}
