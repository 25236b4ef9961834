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
use crate::domain::{MemberId, PhoneNumber};
use crate::keys;
use crate::ports::carrier::{Carrier, CarrierError, OutboundMessage};
use crate::ports::table::{Table, TableError, TxOp, Update};

/// Attempts (SQS receives) after which a retryable error fails the recipient.
pub const MAX_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum SendStepError {
    #[error(transparent)]
    Table(#[from] TableError),
    /// Some recipients hit a retryable carrier error: retry the job later.
    #[error("{0} recipients will be retried")]
    Retry(usize),
}

pub struct Sender<'a> {
    pub table: &'a dyn Table,
    pub carrier: &'a dyn Carrier,
    pub vault: &'a Vault,
    pub webhook_url: Option<String>,
    pub now: String,
}

fn merge(text: &str, member: &MemberRecord, church_name: &str) -> String {
    text.replace("{firstName}", &member.first_name)
        .replace("{lastName}", &member.last_name)
        .replace("{churchName}", church_name)
}

impl Sender<'_> {
    async fn apply(&self, ops: [TxOp; 2]) -> Result<bool, TableError> {
        match self.table.transact(ops.to_vec()).await {
            Ok(()) => Ok(true),
            Err(TableError::TransactionCancelled { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn move_to(
        &self,
        job: &SendJob,
        member: MemberId,
        from: Status,
        to: Status,
        set: Vec<(&str, Value)>,
    ) -> [TxOp; 2] {
        transition(
            job.church_id,
            job.message_id,
            member,
            from,
            to,
            set,
            &self.now,
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
        for (member_id, member) in job.member_ids.iter().zip(members) {
            let member_id = *member_id;
            let claimed = self
                .apply(self.move_to(
                    job,
                    member_id,
                    Status::Queued,
                    Status::Sending,
                    vec![("attempts", json!(attempt))],
                ))
                .await?;
            if !claimed {
                let current = self
                    .table
                    .get(&recipient_key(job.message_id, member_id))
                    .await?;
                if current.as_ref().and_then(status_of) == Some(Status::Sending) {
                    // A run died after claiming it: the carrier may have it. Never resend.
                    self.apply(self.move_to(
                        job,
                        member_id,
                        Status::Sending,
                        Status::Uncertain,
                        vec![],
                    ))
                    .await?;
                }
                continue;
            }
            let record = member.map(MemberRecord::from_item).transpose()?;
            let (Some(record), Some(from)) = (record, from.clone()) else {
                let why = if from.is_none() {
                    "no_sending_number"
                } else {
                    "member_deleted"
                };
                self.apply(self.move_to(
                    job,
                    member_id,
                    Status::Sending,
                    Status::Failed,
                    vec![("errorCode", json!(why))],
                ))
                .await?;
                continue;
            };
            if !record.opt_in_sms {
                self.apply(self.move_to(job, member_id, Status::Sending, Status::OptedOut, vec![]))
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
                    self.apply(self.move_to(job, member_id, Status::Sending, Status::Sent, set))
                        .await?;
                }
                Err(CarrierError::OptedOut) => {
                    self.apply(self.move_to(
                        job,
                        member_id,
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
                        Status::Sending,
                        Status::Failed,
                        vec![("errorCode", json!(code))],
                    ))
                    .await?;
                }
                Err(CarrierError::Retryable { code, .. }) => {
                    self.apply(self.move_to(
                        job,
                        member_id,
                        Status::Sending,
                        Status::Queued,
                        vec![("errorCode", json!(code))],
                    ))
                    .await?;
                    retry += 1;
                }
            }
        }
        if retry > 0 {
            Err(SendStepError::Retry(retry))
        } else {
            Ok(())
        }
    }
}
