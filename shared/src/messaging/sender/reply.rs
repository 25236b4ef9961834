//! A conversation's outbound text: the same pacing, claim and carrier
//! call as a broadcast recipient, on the thread's message item (its
//! `deliveryStatus`) instead of a recipient row.

use serde_json::{Value, json};

use super::verdict::Sent;
use super::{Addressee, MEDIA_URL_TTL, Outcome, SendStepError, Sender, text_of};
use crate::conversations::model::{conversation_key, message_key as thread_key};
use crate::directory::members::MemberRecord;
use crate::domain::{MemberId, PhoneNumber};
use crate::keys;
use crate::messaging::jobs::ConversationReply;
use crate::messaging::model::Status;
use crate::messaging::pacing::{self, Reservation};
use crate::ports::carrier::OutboundMessage;
use crate::ports::table::{Cond, Key, TableError, Update};

impl Sender<'_> {
    /// Moves the thread message `key` from `from` to `to`; `false` when it
    /// was not in `from` any more (a racing run moved it).
    async fn move_message(
        &self,
        key: &Key,
        from: Status,
        to: Status,
        set: Vec<(&'static str, Value)>,
    ) -> Result<bool, TableError> {
        let mut update = Update::default()
            .set("deliveryStatus", to.as_str())
            .set("updatedAt", self.now());
        for (attr, value) in set {
            update = update.set(attr, value);
        }
        let unchanged = Cond::eq("deliveryStatus", from.as_str());
        match self.table.update(key, update, Some(unchanged)).await {
            Ok(_) => Ok(true),
            Err(TableError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends a conversation's outbound text if it is still `queued`;
    /// `attempt` is the SQS receive count.
    pub async fn reply(
        &self,
        job: &ConversationReply,
        attempt: u32,
    ) -> Result<Outcome, SendStepError> {
        let conversation = job.conversation_id.as_str();
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
        match Status::parse(&text_of(&message, "deliveryStatus")) {
            Some(Status::Queued) => {}
            Some(Status::Sending) => {
                if self.abandoned(&message) {
                    self.move_message(&key, Status::Sending, Status::Uncertain, vec![])
                        .await?;
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
            self.move_message(&key, Status::Queued, Status::OptedOut, vec![])
                .await?;
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
            self.move_message(&key, Status::Queued, Status::Failed, set)
                .await?;
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
        if !self
            .move_message(&key, Status::Queued, Status::Sending, claim)
            .await?
        {
            return Ok(Outcome::Done);
        }
        let media_urls =
            crate::conversations::media::carrier_urls(self.blobs, &message, MEDIA_URL_TTL).await?;
        let outbound = OutboundMessage {
            from,
            to,
            text: text_of(&message, "content"),
            media_urls,
            webhook_url: self.webhook_url.clone(),
        };
        let addressee = Addressee {
            church: job.church_id,
            member: member_id,
            conversation: Some(conversation),
        };
        let verdict = self
            .deliver(
                &outbound,
                slots.slot(0),
                addressee,
                attempt,
                Sent::ThreadMessage,
            )
            .await;
        let mut verdicts = [verdict];
        self.settle_early(&mut verdicts).await?;
        let [verdict] = verdicts;
        self.move_message(&key, Status::Sending, verdict.to, verdict.set)
            .await?;
        Ok(match verdict.retry_after {
            Some(after) => Outcome::Retry {
                count: 1,
                after: Some(after),
            },
            None => Outcome::Done,
        })
    }
}
