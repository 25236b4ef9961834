//! A broadcast's recipient batch: the recipients are read in one batch;
//! the ones still `queued` get their slots on the sending number, and are
//! claimed, sent and recorded, each recipient its own conditional write.
//! Unless the message holds them (`hold`): paused or in quiet hours they
//! wait unclaimed; cancelled, they move `queued → cancelled`.

use super::hold::{Hold, hold};
use super::verdict::{Sent, Verdict};
use super::{Addressee, MEDIA_URL_TTL, Outcome, SendStepError, Sender};
use crate::crypto::Field;
use crate::directory::members::MemberRecord;
use crate::directory::model::ChurchProfile;
use crate::domain::{MemberId, PhoneNumber};
use crate::keys;
use crate::messaging::entities::{Message, Recipient};
use crate::messaging::jobs::RecipientBatch;
use crate::messaging::model::{Mark, Move, Status, apply, apply_one};
use crate::messaging::pacing::Reservation;
use crate::ports::blobs::BlobKey;
use crate::ports::carrier::OutboundMessage;
use crate::ports::table::{Key, TableError};
use crate::store::{Entities, Entity};

/// What a job needs of its message and church, read once.
struct Broadcast {
    text: String,
    church_name: String,
    from: Option<PhoneNumber>,
    mps: u32,
    media_urls: Vec<String>,
    lanes: u32,
    hold: Hold,
}

/// One queued recipient of the job, with its member (if still there).
struct Pending {
    key: Key,
    member_id: MemberId,
    member: Option<MemberRecord>,
}

fn merge(text: &str, member: &MemberRecord, church_name: &str) -> String {
    text.replace("{firstName}", &member.first_name)
        .replace("{lastName}", &member.last_name)
        .replace("{churchName}", church_name)
}

/// Recipients settled without the carrier (and why), `None` for the ones to send to.
fn settled_without_carrier(
    r: &Pending,
    broadcast: &Broadcast,
) -> Option<(Status, Option<&'static str>)> {
    match (&r.member, &broadcast.from) {
        (_, None) => Some((Status::Failed, Some("no_sending_number"))),
        (None, _) => Some((Status::Failed, Some("member_deleted"))),
        (Some(m), _) if !m.opt_in_sms => Some((Status::OptedOut, None)),
        _ => None,
    }
}

impl Sender<'_> {
    async fn move_to(
        &self,
        recipient: &Pending,
        from: Status,
        to: Status,
    ) -> Result<bool, TableError> {
        let one = Move {
            recipient: recipient.key.clone(),
            from,
            to,
            marks: vec![],
        };
        apply_one(self.table, one, &self.now()).await
    }

    async fn broadcast(&self, job: &RecipientBatch) -> Result<Option<Broadcast>, SendStepError> {
        let message: Option<Message> = self
            .table
            .load(&keys::message(job.church_id, job.message_id))
            .await?;
        let profile: Option<ChurchProfile> = self
            .table
            .load(&ChurchProfile::key_of(job.church_id))
            .await?;
        let (Some(message), Some(profile)) = (message, profile) else {
            return Ok(None);
        };
        let mut media_urls = Vec::new();
        for key in &message.media_keys {
            let Ok(key) = BlobKey::parse(key) else {
                continue;
            };
            media_urls.push(self.blobs.presign_get(&key, MEDIA_URL_TTL).await?);
        }
        let hold = hold(&message, &profile, self.clock.now());
        Ok(Some(Broadcast {
            hold,
            church_name: profile.name.clone().unwrap_or_default(),
            from: profile.sending_number(),
            mps: profile.mps(),
            text: message.content,
            media_urls,
            lanes: message.lanes,
        }))
    }

    /// The job's recipients still `queued`; abandoned claims become `uncertain`.
    async fn pending(&self, job: &RecipientBatch, lanes: u32) -> Result<Vec<Pending>, TableError> {
        let recipient_keys: Vec<_> = job
            .member_ids
            .iter()
            .map(|m| keys::recipient(job.message_id, keys::lane_of(*m, lanes), *m))
            .collect();
        let member_keys: Vec<_> = job
            .member_ids
            .iter()
            .map(|m| keys::member(job.church_id, *m))
            .collect();
        let recipients = self.table.load_many::<Recipient>(&recipient_keys).await?;
        let members = self.table.load_many::<MemberRecord>(&member_keys).await?;
        let mut pending = Vec::new();
        for ((member_id, recipient), member) in job.member_ids.iter().zip(recipients).zip(members) {
            let Some(recipient) = recipient else { continue };
            let entry = Pending {
                key: recipient.key(),
                member_id: *member_id,
                member,
            };
            match recipient.status {
                Status::Queued => pending.push(entry),
                Status::Sending if self.abandoned(recipient.claimed_at.as_deref()) => {
                    // The run died after claiming it: the carrier may have it.
                    self.move_to(&entry, Status::Sending, Status::Uncertain)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(pending)
    }

    /// Sends what is still queued of a broadcast's recipient batch;
    /// `attempt` is the SQS receive count.
    pub async fn step(&self, job: &RecipientBatch, attempt: u32) -> Result<Outcome, SendStepError> {
        let Some(broadcast) = self.broadcast(job).await? else {
            tracing::warn!(message_id = %job.message_id, "send job for a missing message or church; dropped");
            return Ok(Outcome::Done);
        };
        match broadcast.hold {
            Hold::Go => {}
            Hold::Wait(wait) => return Ok(Outcome::Later(wait)),
            Hold::Cancel => {
                self.cancel(job, broadcast.lanes).await?;
                return Ok(Outcome::Done);
            }
        }
        let pending = self.pending(job, broadcast.lanes).await?;
        let settled = |r: &Pending| settled_without_carrier(r, &broadcast);
        let sendable = pending.iter().filter(|r| settled(r).is_none()).count();
        let slots = match &broadcast.from {
            Some(from) if sendable > 0 => self.book(from, broadcast.mps, sendable).await?,
            _ => Reservation::Later(std::time::Duration::ZERO),
        };
        if let (Reservation::Later(wait), true) = (slots, sendable > 0) {
            return Ok(Outcome::Later(wait));
        }
        // Claims and settlements: a conditional write each.
        let now = self.now();
        let moves = pending
            .iter()
            .map(|r| match settled(r) {
                Some((to, code)) => Move {
                    recipient: r.key.clone(),
                    from: Status::Queued,
                    to,
                    marks: code
                        .map(|c| vec![Mark::ErrorCode(c.to_owned())])
                        .unwrap_or_default(),
                },
                None => Move {
                    recipient: r.key.clone(),
                    from: Status::Queued,
                    to: Status::Sending,
                    marks: vec![Mark::Claimed {
                        attempt,
                        at: now.clone(),
                    }],
                },
            })
            .collect::<Vec<_>>();
        let held = apply(self.table, &moves, &now).await?;
        let claimed: Vec<&Pending> = pending
            .iter()
            .zip(held)
            .filter(|(r, held)| *held && settled(r).is_none())
            .map(|(r, _)| r)
            .collect();
        let sends: Vec<_> = claimed
            .iter()
            .enumerate()
            .map(|(i, recipient)| self.send_one(job, &broadcast, recipient, slots.slot(i), attempt))
            .collect();
        let mut verdicts = futures_util::future::join_all(sends).await;
        self.settle_early(&mut verdicts).await?;
        // What the carrier said: a conditional write each.
        let mut retry = 0;
        let mut after = None;
        let mut moves = Vec::with_capacity(verdicts.len());
        let mut recorded_sent = Vec::new();
        for (recipient, verdict) in claimed.iter().zip(verdicts) {
            if let (Status::Sent, Some(id)) = (verdict.to, verdict.carrier_id()) {
                recorded_sent.push((recipient.key.clone(), id.to_owned()));
            }
            if let Some(at_least) = verdict.retry_after {
                retry += 1;
                after = after.max(Some(at_least));
            }
            moves.push(Move {
                recipient: recipient.key.clone(),
                from: Status::Sending,
                to: verdict.to,
                marks: verdict.marks,
            });
        }
        apply(self.table, &moves, &self.now()).await?;
        let ids: Vec<String> = recorded_sent.iter().map(|(_, id)| id.clone()).collect();
        let late = self.settle_late(&ids).await?;
        let late_moves: Vec<Move> = recorded_sent
            .into_iter()
            .filter_map(|(key, id)| {
                let (to, code) = late.get(&id)?.clone();
                Some(Move {
                    recipient: key,
                    from: Status::Sent,
                    to,
                    marks: code.map(Mark::ErrorCode).into_iter().collect(),
                })
            })
            .collect();
        if !late_moves.is_empty() {
            apply(self.table, &late_moves, &self.now()).await?;
        }
        Ok(if retry > 0 {
            Outcome::Retry {
                count: retry,
                after,
            }
        } else {
            Outcome::Done
        })
    }

    /// The message was cancelled: the job's recipients still queued are
    /// never sent. Each move is conditional on `queued`, so one a racing
    /// run claimed first is left to that run.
    async fn cancel(&self, job: &RecipientBatch, lanes: u32) -> Result<(), TableError> {
        let moves: Vec<Move> = self
            .pending(job, lanes)
            .await?
            .into_iter()
            .map(|r| Move {
                recipient: r.key,
                from: Status::Queued,
                to: Status::Cancelled,
                marks: vec![],
            })
            .collect();
        apply(self.table, &moves, &self.now()).await.map(drop)
    }

    /// Sends one claimed recipient at its slot; where it moves next.
    async fn send_one(
        &self,
        job: &RecipientBatch,
        broadcast: &Broadcast,
        recipient: &Pending,
        slot: Option<chrono::DateTime<chrono::Utc>>,
        attempt: u32,
    ) -> Verdict {
        let (Some(member), Some(from)) = (&recipient.member, &broadcast.from) else {
            return Verdict::failed("member_deleted");
        };
        let to = self
            .vault
            .open(member.church_id, Field::MemberPhone, &member.phone_sealed)
            .ok()
            .and_then(|p| PhoneNumber::parse(&p).ok());
        let Some(to) = to else {
            return Verdict::failed("unreadable_phone");
        };
        let outbound = OutboundMessage {
            from: from.clone(),
            to,
            text: merge(&broadcast.text, member, &broadcast.church_name),
            media_urls: broadcast.media_urls.clone(),
            webhook_url: self.webhook_url.clone(),
        };
        let addressee = Addressee {
            church: job.church_id,
            member: Some(recipient.member_id),
            conversation: None,
        };
        self.deliver(&outbound, slot, addressee, attempt, Sent::Recipient)
            .await
    }
}
