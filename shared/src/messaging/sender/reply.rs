//! A conversation's outbound text: the same pacing, claim and carrier
//! call as a broadcast recipient, on the thread's message item (its
//! `deliveryStatus`) instead of a recipient row.

use super::verdict::Sent;
use super::{Addressee, MEDIA_URL_TTL, Outcome, SendStepError, Sender};
use crate::conversations::model::{Conversation, ThreadMessage};
use crate::crypto::Field;
use crate::directory::members::MemberRecord;
use crate::directory::model::ChurchProfile;
use crate::domain::PhoneNumber;
use crate::keys;
use crate::messaging::jobs::ConversationReply;
use crate::messaging::model::{Mark, Status};
use crate::messaging::pacing::Reservation;
use crate::ports::carrier::OutboundMessage;
use crate::ports::table::{Key, TableError};
use crate::store::Entities;

impl Sender<'_> {
    /// Moves the thread message `key` from `from` to `to`; `false` when it
    /// was not in `from` any more (a racing run moved it).
    async fn move_message(
        &self,
        key: &Key,
        from: Status,
        to: Status,
        marks: Vec<Mark>,
    ) -> Result<bool, TableError> {
        let (update, unchanged) = ThreadMessage::moved(from, to, &self.now());
        let update = Mark::all_onto(&marks, update);
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
        let conversation = job.conversation_id;
        let key = keys::thread_message(conversation, job.message_id);
        let message: Option<ThreadMessage> = self.table.load(&key).await?;
        let conv: Option<Conversation> = self
            .table
            .load(&keys::conversation(job.church_id, conversation))
            .await?;
        let profile: Option<ChurchProfile> = self
            .table
            .load(&ChurchProfile::key_of(job.church_id))
            .await?;
        let (Some(message), Some(conv), Some(profile)) = (message, conv, profile) else {
            tracing::warn!(message_id = %job.message_id, "reply job for a missing message; dropped");
            return Ok(Outcome::Done);
        };
        match message.delivery_status.outbound() {
            Some(Status::Queued) => {}
            Some(Status::Sending) => {
                if self.abandoned(message.claimed_at.as_deref()) {
                    self.move_message(&key, Status::Sending, Status::Uncertain, vec![])
                        .await?;
                }
                return Ok(Outcome::Done);
            }
            _ => return Ok(Outcome::Done),
        }
        let member_id = conv.member_id;
        let member: Option<MemberRecord> = match member_id {
            Some(id) => self.table.load(&keys::member(job.church_id, id)).await?,
            None => None,
        };
        let opted_in = match &member {
            Some(m) => m.opt_in_sms,
            None => conv.opt_in_sms,
        };
        let compliance = message.compliance.unwrap_or(false);
        if !opted_in && !compliance {
            // Opted out: nothing but the one confirmation reaches them.
            self.move_message(&key, Status::Queued, Status::OptedOut, vec![])
                .await?;
            return Ok(Outcome::Done);
        }
        let from = profile.sending_number();
        let to = self
            .vault
            .open(conv.church_id, Field::ConversationPhone, &conv.phone_sealed)
            .ok()
            .and_then(|p| PhoneNumber::parse(&p).ok());
        let (Some(from), Some(to)) = (from, to) else {
            let marks = vec![Mark::ErrorCode("no_sending_number".into())];
            self.move_message(&key, Status::Queued, Status::Failed, marks)
                .await?;
            return Ok(Outcome::Done);
        };
        let mps = profile.mps();
        let slots = self.book(&from, mps, 1).await?;
        if let Reservation::Later(wait) = slots {
            return Ok(Outcome::Later(wait));
        }
        let claim = vec![Mark::Claimed {
            attempt,
            at: self.now(),
        }];
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
            text: message.content.clone(),
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
        let recorded_sent = match (verdict.to, verdict.carrier_id()) {
            (Status::Sent, Some(id)) => vec![id.to_owned()],
            _ => Vec::new(),
        };
        let retry_after = verdict.retry_after;
        self.move_message(&key, Status::Sending, verdict.to, verdict.marks)
            .await?;
        if let Some((to, code)) = self.settle_late(&recorded_sent).await?.into_values().next() {
            let marks = code.map(Mark::ErrorCode).into_iter().collect();
            self.move_message(&key, Status::Sent, to, marks).await?;
        }
        Ok(match retry_after {
            Some(after) => Outcome::Retry {
                count: 1,
                after: Some(after),
            },
            None => Outcome::Done,
        })
    }
}
