//! `message.received`: a member (or an unknown phone) texted a church's
//! number. The text is appended to that phone's conversation once however
//! often Telnyx delivers it; keywords opt the phone out or in at this
//! church only, or ask for help, each recorded as proof of consent; one
//! confirmation goes back through the send queue — unless Telnyx already
//! auto-responded.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ConversationError;
pub use super::Deps;
use super::keywords::{Keyword, classify};
use super::media::MediaJob;
use super::model::{
    Consent, Conversation, ConversationStatus, Delivery, Direction, InboundApplied, MediaState,
    Received as Got, ThreadMessage, kept_refiling,
};
use super::opening::open_conversation;
use super::replies::{self, Outbound};
use crate::directory::members::MemberRecord;
use crate::directory::model::{ChurchProfile, PhoneClaim};
use crate::directory::profile::church_for_number;
use crate::domain::{ChurchId, ConversationId, MessageId, PhoneNumber};
use crate::keys;
use crate::messaging::model::Status;
use crate::ports::table::{TableError, TxOp};
use crate::store::{Entities, Transaction, TransactionError};
use crate::telnyx::events::{Event, InboundPayload, Kind, Party};

/// An inbound text as Telnyx describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// Telnyx's message id (or, for payloads without one, a digest of it).
    pub carrier_id: String,
    pub from: PhoneNumber,
    pub to: PhoneNumber,
    pub text: String,
    pub media: Vec<Value>,
    /// Telnyx answered the keyword itself (`autoresponse_type`).
    pub autoresponded: bool,
}

impl Inbound {
    /// The text in a `message.received` event's `data`; `None` if it has no
    /// usable `from`/`to`.
    pub fn parse(data: &Value) -> Option<Inbound> {
        let event = Event::deserialize(data).ok()?;
        match event.kind() {
            Kind::Received(payload) => Self::of(&event, payload),
            _ => None,
        }
    }

    /// The text `payload` (of `event`) carries.
    pub fn of(event: &Event, payload: InboundPayload) -> Option<Inbound> {
        let number =
            |party: Option<&Party>| PhoneNumber::parse(party?.phone_number.as_deref()?).ok();
        let from = number(Some(&payload.from))?;
        let to = number(payload.to.first())?;
        let carrier_id = payload
            .id
            .unwrap_or_else(|| hex::encode(Sha256::digest(event.payload.to_string().as_bytes())));
        Some(Inbound {
            carrier_id,
            from,
            to,
            text: payload.text.unwrap_or_default(),
            media: payload.media,
            autoresponded: payload.autoresponse_type.is_some_and(|t| !t.is_empty()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Appended to the conversation; the keyword, if the text was one.
    Appended {
        church: ChurchId,
        conversation: ConversationId,
        keyword: Option<Keyword>,
    },
    /// Already applied (Telnyx delivers at least once).
    Duplicate,
    /// The conversation changed status while the text was applied; nothing
    /// was written, and [`receive`] runs again.
    Refiled,
    /// No church owns the `to` number: acknowledged, logged, dropped.
    UnknownNumber,
}

/// The parts of applying an inbound text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The record that the text was applied, and the text on the thread:
    /// there already means a duplicate delivery.
    Text,
    /// The conversation, still filed as it was read: changed means refile.
    Conversation,
    /// The status counters' move, consent records, the member's opt-out and
    /// the keyword's confirmation.
    FollowUps,
}

/// What the church answers a keyword with.
fn confirmation(keyword: Keyword, profile: Option<&ChurchProfile>) -> String {
    let name = profile.map_or_else(|| "This church".into(), ChurchProfile::display_name);
    match keyword {
        Keyword::OptOut => format!(
            "{name}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
        ),
        Keyword::OptIn => format!(
            "{name}: you are subscribed again. Msg & data rates may apply. Reply HELP for help, STOP to opt out."
        ),
        Keyword::Help => profile.and_then(ChurchProfile::help_reply).unwrap_or_else(|| {
            let contact = profile
                .and_then(ChurchProfile::contact)
                .map(|c| format!(" Contact: {c}."))
                .unwrap_or_default();
            format!("{name}: church messages.{contact} Msg & data rates may apply. Reply STOP to opt out.")
        }),
    }
}

/// Applies one inbound text.
pub async fn receive(
    deps: &Deps<'_>,
    inbound: &Inbound,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Received, ConversationError> {
    for _ in 0..3 {
        match apply_once(deps, inbound, now).await? {
            Received::Refiled => continue,
            received => return Ok(received),
        }
    }
    Err(kept_refiling().into())
}

/// The member whose phone this is at `church`, if any.
async fn member_of(
    deps: &Deps<'_>,
    church: ChurchId,
    phone_hash: &str,
) -> Result<Option<MemberRecord>, TableError> {
    let claim: Option<PhoneClaim> = deps
        .table
        .load(&keys::phone_claim(church, phone_hash))
        .await?;
    match claim {
        Some(claim) => {
            deps.table
                .load(&keys::member(church, claim.member_id))
                .await
        }
        None => Ok(None),
    }
}

async fn apply_once(
    deps: &Deps<'_>,
    inbound: &Inbound,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Received, ConversationError> {
    let table = deps.table;
    if let Some(seen) = table
        .load::<InboundApplied>(&keys::inbound(&inbound.carrier_id))
        .await?
    {
        resume(deps, &seen).await?;
        return Ok(Received::Duplicate);
    }
    let Some(church) = church_for_number(table, &inbound.to).await? else {
        tracing::warn!(carrier_id = %inbound.carrier_id, "inbound text to a number no church owns; dropped");
        return Ok(Received::UnknownNumber);
    };
    let stamp = now.to_rfc3339();
    let phone_hash = deps.vault.phone_hash(&inbound.from);
    let member = member_of(deps, church, &phone_hash).await?;
    let conv = open_conversation(
        deps,
        church,
        &inbound.from,
        &phone_hash,
        member.as_ref(),
        &stamp,
    )
    .await?;
    let keyword = classify(&inbound.text);
    let message_id = MessageId::generate();
    let media = super::media::pending(&inbound.media);
    let media_job = (!media.is_empty()).then_some(MediaJob {
        church_id: church,
        conversation_id: conv.id,
        message_id,
    });
    let text = ThreadMessage {
        id: message_id,
        conversation_id: conv.id,
        church_id: church,
        content: inbound.text.clone(),
        direction: Direction::Inbound,
        member_name: member.as_ref().map(|m| {
            format!("{} {}", m.first_name, m.last_name)
                .trim()
                .to_owned()
        }),
        delivery_status: Delivery::Inbound(Got::Received),
        carrier_id: Some(inbound.carrier_id.clone()),
        compliance: None,
        created_at: stamp.clone(),
        media_state: (!media.is_empty()).then_some(MediaState::Copying),
        media,
        reply_to_id: None,
        reactions: Vec::new(),
        reactions_version: None,
        claimed_at: None,
    };
    // The keyword's confirmation is stored with the text, so a crash before
    // it is queued is repaired when Telnyx delivers the event again.
    let confirmation = match keyword.filter(|_| !inbound.autoresponded) {
        Some(keyword) => {
            let profile: Option<ChurchProfile> = table.load(&ChurchProfile::key_of(church)).await?;
            Some(Outbound::new(
                church,
                conv.id,
                message_id.successor(),
                &confirmation(keyword, profile.as_ref()),
                true,
                vec![],
                &stamp,
            ))
        }
        None => None,
    };
    let added = 1 + i64::from(confirmation.is_some());
    let seen = InboundApplied::new(
        &inbound.carrier_id,
        now.timestamp() + 7 * 86_400,
        &conv,
        message_id,
        media_job.is_some(),
        confirmation.as_ref().map(|c| c.job.message_id),
    );
    let opt_in = match keyword {
        Some(Keyword::OptOut) => Some(false),
        Some(Keyword::OptIn) => Some(true),
        Some(Keyword::Help) | None => None,
    };
    // A new text reopens a closed or archived conversation (if an admin
    // refiles it meanwhile, this runs again); a keyword records the phone's
    // consent at this church, for a non-member too.
    let mut update = Conversation::appended(&inbound.text, &stamp, added, 1);
    if let Some(opt_in) = opt_in {
        update = Conversation::consent(update, opt_in);
    }
    let mut refile = conv
        .refile(ConversationStatus::Open, &stamp, update)
        .into_iter();
    let mut applying = Transaction::new()
        .with(Part::Text, TxOp::create(&seen)?)
        .with(Part::Text, TxOp::create(&text)?);
    if let Some(filed) = refile.next() {
        applying.add(Part::Conversation, filed);
    }
    applying.add_all(Part::FollowUps, refile);
    if let Some(keyword) = keyword {
        let consent = Consent::texted(
            church,
            &phone_hash,
            message_id,
            keyword.as_str(),
            inbound.text.trim(),
            &stamp,
            &inbound.carrier_id,
            member.as_ref().map(|m| m.id),
            conv.id,
        );
        applying.add(Part::FollowUps, TxOp::create(&consent)?);
        if let (Some(opt_in), Some(member)) = (opt_in, &member) {
            applying.add(
                Part::FollowUps,
                crate::directory::members::keyword_consent(church, member.id, opt_in, &stamp),
            );
        }
    }
    if let Some(confirmation) = &confirmation {
        applying.add(Part::FollowUps, confirmation.put()?);
    }
    match applying.commit(table).await {
        Ok(()) => {}
        Err(TransactionError::Cancelled(parts)) if parts == [Part::Conversation] => {
            return Ok(Received::Refiled);
        }
        Err(TransactionError::Cancelled(_)) => return Ok(Received::Duplicate),
        Err(TransactionError::Table(e)) => return Err(e.into()),
    }
    if let Some(job) = &media_job {
        job.enqueue(deps.media_queue).await?;
    }
    if let Some(confirmation) = &confirmation {
        replies::enqueue(deps.send_queue, &confirmation.job).await?;
    }
    tracing::info!(church_id = %church, conversation_id = %conv.id, keyword = keyword.map(Keyword::as_str), "inbound text appended");
    if keyword.is_none()
        && let Some(group) = super::welcome::group_for(deps, church, &inbound.text).await?
    {
        // A join keyword: failures (a plan's member limit) are logged, and the
        // text stays in the inbox for an admin.
        if let Err(e) = super::welcome::join(deps, church, group, &inbound.from, member, now).await
        {
            tracing::warn!(church_id = %church, error = %e, "join keyword not applied");
        }
    }
    Ok(Received::Appended {
        church,
        conversation: conv.id,
        keyword,
    })
}

/// Telnyx delivered an applied event again — perhaps because the process
/// died before answering. Whatever that run stored but may not have queued
/// is queued again; the consumers act on each once (the sender claims a
/// message with a conditional write, the copy skips finished files).
async fn resume(deps: &Deps<'_>, seen: &InboundApplied) -> Result<(), ConversationError> {
    let (church, conversation) = (seen.church_id, seen.conversation_id);
    let message = |id: MessageId| async move {
        deps.table
            .load::<ThreadMessage>(&keys::thread_message(conversation, id))
            .await
    };
    if seen.has_media
        && message(seen.message_id)
            .await?
            .is_some_and(|m| m.media_state == Some(MediaState::Copying))
    {
        let job = MediaJob {
            church_id: church,
            conversation_id: conversation,
            message_id: seen.message_id,
        };
        job.enqueue(deps.media_queue).await?;
    }
    if let Some(id) = seen.confirmation_id
        && message(id)
            .await?
            .is_some_and(|m| m.delivery_status == Delivery::Outbound(Status::Queued))
    {
        replies::enqueue(deps.send_queue, &replies::job(church, conversation, id)).await?;
    }
    Ok(())
}
