//! The send consumer's step: each recipient of a send job is claimed
//! (`queued → sending`), sent, and recorded (`sending → sent`), each move a
//! conditional write. A recipient found already `sending` was claimed by a
//! run that died between the carrier's answer and the write: it becomes
//! `uncertain` and is reported, never sent again.

use serde_json::{Value, json};

use super::fanout::SendJob;
use super::model::{Status, carrier_index, message_key, recipient_key, status_of, transition};
use crate::crypto::Vault;
use crate::directory::members::MemberRecord;
use crate::domain::{BranchId, MemberId, PhoneNumber};
use crate::keys;
use crate::ports::carrier::{Carrier, CarrierError, OutboundMessage};
use crate::ports::table::{Table, TableError, TxOp, Update};

/// How long a claim (`sending`) is trusted to a live run: longer than a
/// carrier request may take; shorter than the send queue's visibility
/// timeout, after which a crashed run's job comes back.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// Attempts (SQS receives) after which a retryable error fails the recipient.
pub const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SendStepError {
    #[error(transparent)]
    Table(#[from] TableError),
    /// Some recipients hit a retryable carrier error: retry the job later,
    /// not before `after` when the carrier said so (429's reset).
    #[error("{count} recipients will be retried")]
    Retry {
        count: usize,
        after: Option<std::time::Duration>,
    },
}

pub struct Sender<'a> {
    pub table: &'a dyn Table,
    pub carrier: &'a dyn Carrier,
    pub vault: &'a Vault,
    pub webhook_url: Option<String>,
    pub now: chrono::DateTime<chrono::Utc>,
}

fn merge(text: &str, member: &MemberRecord, church_name: &str) -> String {
    text.replace("{firstName}", &member.first_name)
        .replace("{lastName}", &member.last_name)
        .replace("{churchName}", church_name)
}

impl Sender<'_> {
    async fn apply(&self, ops: Vec<TxOp>) -> Result<bool, TableError> {
        match self.table.transact(ops).await {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCancelled { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn move_to(
        &self,
        job: &SendJob,
        member: MemberId,
        branch: Option<BranchId>,
        from: Status,
        to: Status,
        set: Vec<(&str, Value)>,
    ) -> Vec<TxOp> {
        transition(
            job.church_id,
            job.message_id,
            member,
            branch,
            from,
            to,
            set,
            &self.now.to_rfc3339(),
        )
    }

    /// Sends what is still queued of `job`; `attempt` is the SQS receive count.
    pub async fn step(&self, job: &SendJob, attempt: u32) -> Result<(), SendStepError> {
        let message = self
            .table
            .get(&message_key(job.church_id, job.message_id))
            .await?;
        let profile = self.table.get(&keys::church_profile(job.church_id)).await?;
        let (Some(message), Some(profile)) = (message, profile) else {
            tracing::warn!(message_id = %job.message_id, "send job for a missing message or church; dropped");
            return Ok(());
        };
        let text = message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let church_name = profile
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let from = profile
            .get("telnyxPhoneNumber")
            .and_then(Value::as_str)
            .and_then(|n| PhoneNumber::parse(n).ok());
        let member_keys: Vec<_> = job
            .member_ids
            .iter()
            .map(|m| keys::member(job.church_id, *m))
            .collect();
        let members = self.table.get_many(&member_keys).await?;
        let mut retry = 0;
        let mut after: Option<std::time::Duration> = None;
        for (member_id, member) in job.member_ids.iter().zip(members) {
            let member_id = *member_id;
            let record = member.map(MemberRecord::from_item).transpose()?;
            let branch = record.as_ref().and_then(|r| r.branch_id);
            let claimed = self
                .apply(self.move_to(
                    job,
                    member_id,
                    branch,
                    Status::Queued,
                    Status::Sending,
                    vec![
                        ("attempts", json!(attempt)),
                        ("claimedAt", json!(self.now.to_rfc3339())),
                    ],
                ))
                .await?;
            if !claimed {
                let current = self
                    .table
                    .get(&recipient_key(job.message_id, member_id))
                    .await?;
                let claimed_at = current
                    .as_ref()
                    .and_then(|c| c.get("claimedAt"))
                    .and_then(Value::as_str)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                // A claim younger than the lease belongs to a run still sending
                // (a duplicate delivery racing it): leave it to that run.
                let abandoned = claimed_at.is_none_or(|t| self.now - t > CLAIM_LEASE);
                if current.as_ref().and_then(status_of) == Some(Status::Sending) && abandoned {
                    // A run died after claiming it: the carrier may have it. Never resend.
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::Uncertain,
                        vec![],
                    ))
                    .await?;
                }
                continue;
            }
            let (Some(record), Some(from)) = (record, from.clone()) else {
                let why = if from.is_none() {
                    "no_sending_number"
                } else {
                    "member_deleted"
                };
                self.apply(self.move_to(
                    job,
                    member_id,
                    branch,
                    Status::Sending,
                    Status::Failed,
                    vec![("errorCode", json!(why))],
                ))
                .await?;
                continue;
            };
            if !record.opt_in_sms {
                self.apply(self.move_to(
                    job,
                    member_id,
                    branch,
                    Status::Sending,
                    Status::OptedOut,
                    vec![],
                ))
                .await?;
                continue;
            }
            let to = self
                .vault
                .open(&record.phone_sealed)
                .ok()
                .and_then(|p| PhoneNumber::parse(&p).ok());
            let Some(to) = to else {
                self.apply(self.move_to(
                    job,
                    member_id,
                    branch,
                    Status::Sending,
                    Status::Failed,
                    vec![("errorCode", json!("unreadable_phone"))],
                ))
                .await?;
                continue;
            };
            let outbound = OutboundMessage {
                from,
                to,
                text: merge(&text, &record, &church_name),
                media_urls: vec![],
                webhook_url: self.webhook_url.clone(),
            };
            match self.carrier.send(&outbound).await {
                Ok(sent) => {
                    let set = vec![
                        ("carrierId", json!(sent.carrier_id)),
                        ("gsi1pk", json!(carrier_index(&sent.carrier_id))),
                        ("gsi1sk", json!("RCPT")),
                    ];
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::Sent,
                        set,
                    ))
                    .await?;
                }
                Err(CarrierError::OptedOut) => {
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::OptedOut,
                        vec![("errorCode", json!("40300"))],
                    ))
                    .await?;
                    let stop = Update::default()
                        .set("optInSms", false)
                        .set("optOutSource", "carrier");
                    self.table
                        .update(
                            &keys::member(job.church_id, member_id),
                            stop,
                            Some(crate::ports::table::Cond::Exists),
                        )
                        .await
                        .ok();
                }
                Err(CarrierError::Permanent { code, .. }) => {
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::Failed,
                        vec![("errorCode", json!(code))],
                    ))
                    .await?;
                }
                Err(CarrierError::Retryable { code, .. }) if attempt >= MAX_ATTEMPTS => {
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::Failed,
                        vec![("errorCode", json!(code))],
                    ))
                    .await?;
                }
                Err(CarrierError::Retryable { code, retry_after }) => {
                    self.apply(self.move_to(
                        job,
                        member_id,
                        branch,
                        Status::Sending,
                        Status::Queued,
                        vec![("errorCode", json!(code))],
                    ))
                    .await?;
                    retry += 1;
                    after = after.max(retry_after);
                }
            }
        }
        if retry > 0 {
            Err(SendStepError::Retry {
                count: retry,
                after,
            })
        } else {
            Ok(())
        }
    }
}

/// When a job with retryable failures comes back: exponential in the
/// attempt (1, 2, 4 … 60 s) with full jitter, never before the carrier's reset.
pub fn backoff(attempt: u32, at_least: Option<std::time::Duration>) -> std::time::Duration {
    use rand::Rng;
    let cap = 1u64 << attempt.clamp(1, 6).min(6);
    let jittered =
        std::time::Duration::from_millis(rand::rng().random_range(500..=cap.min(60) * 1000));
    jittered.max(at_least.unwrap_or_default())
}
