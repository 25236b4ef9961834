//! `message.received`: a member (or an unknown phone) texted a church's
//! number. The text is appended to that phone's conversation once however
//! often Telnyx delivers it; keywords opt the phone out or in at this
//! church only, or ask for help, each recorded as proof of consent; one
//! confirmation goes back through the send queue — unless Telnyx already
//! auto-responded.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ConversationError;
use super::keywords::{Keyword, classify};
use super::media::MediaJob;
use super::model::{
    activity, by_status, consent_key, conversation_key, count_move, inbound_key, kept_refiling,
    message_key, phone_conversation_key, refile,
};
use super::replies::{self, Outbound};
use crate::crypto::Vault;
use crate::directory::members::MemberRecord;
use crate::directory::profile::church_for_number;
use crate::domain::{ChurchId, MessageId, PhoneNumber};
use crate::keys;
use crate::ports::queue::Queue;
use crate::ports::table::{Cond, Item, Table, TableError, TxOp, Update};

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
        let payload = &data["payload"];
        let from = PhoneNumber::parse(payload["from"]["phone_number"].as_str()?).ok()?;
        let to = PhoneNumber::parse(payload["to"][0]["phone_number"].as_str()?).ok()?;
        let carrier_id = payload["id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| hex::encode(Sha256::digest(payload.to_string().as_bytes())));
        Some(Inbound {
            carrier_id,
            from,
            to,
            text: payload["text"].as_str().unwrap_or_default().to_owned(),
            media: payload["media"].as_array().cloned().unwrap_or_default(),
            autoresponded: payload
                .get("autoresponse_type")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Appended to the conversation; the keyword, if the text was one.
    Appended {
        church: ChurchId,
        conversation: String,
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

pub struct Deps<'a> {
    pub table: &'a dyn Table,
    pub send_queue: &'a dyn Queue,
    /// Inbound files to copy into the bucket.
    pub media_queue: &'a dyn Queue,
    pub vault: &'a Vault,
}

fn id_of(item: &Item) -> String {
    item.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The phone's conversation at this church, opened if it has none.
pub async fn open_conversation(
    deps: &Deps<'_>,
    church: ChurchId,
    phone: &PhoneNumber,
    phone_hash: &str,
    member: Option<&MemberRecord>,
    now: &str,
) -> Result<Item, TableError> {
    let claim = phone_conversation_key(church, phone_hash);
    for _ in 0..2 {
        if let Some(found) = super::inbox::of_phone(deps.table, church, phone_hash).await? {
            return Ok(found);
        }
        let id = MessageId::generate().to_string();
        let key = conversation_key(church, &id);
        let item = json!({
            "pk": key.pk, "sk": key.sk, "type": "conversation", "id": id, "churchId": church,
            "memberId": member.map(|m| m.id), "unknown": member.is_none(),
            "phoneSealed": deps.vault.seal(phone.as_e164()), "phoneHash": phone_hash,
            "status": "open", "unreadCount": 0, "messageCount": 0, "lastMessage": null, "lastMessageAt": now,
            "createdAt": now, "updatedAt": now, "optInSms": true,
            "gsi2pk": by_status(church, "open"), "gsi2sk": activity(now, &id),
        });
        let ops = vec![
            TxOp::put_new(json!({ "pk": claim.pk, "sk": claim.sk, "conversationId": id })),
            TxOp::put_new(item.clone()),
            count_move(church, None, "open"),
        ];
        match deps.table.transact(ops).await {
            Ok(()) => return Ok(item.as_object().cloned().unwrap_or_default()),
            // Opened meanwhile by a concurrent delivery: read it.
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(TableError::Invalid(
        "the conversation could not be opened".into(),
    ))
}

/// What the church answers a keyword with.
fn confirmation(keyword: Keyword, profile: Option<&Item>) -> String {
    let field = |name: &str| {
        profile
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let name = field("name").unwrap_or_else(|| "This church".into());
    match keyword {
        Keyword::OptOut => format!(
            "{name}: you are unsubscribed and will receive no more messages. Reply START to resubscribe."
        ),
        Keyword::OptIn => format!(
            "{name}: you are subscribed again. Msg & data rates may apply. Reply HELP for help, STOP to opt out."
        ),
        Keyword::Help => field("helpReply").unwrap_or_else(|| {
            let contact = field("brandPhoneNumber")
                .or_else(|| field("website"))
                .or_else(|| field("email"))
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

async fn apply_once(
    deps: &Deps<'_>,
    inbound: &Inbound,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Received, ConversationError> {
    let table = deps.table;
    if let Some(seen) = table.get(&inbound_key(&inbound.carrier_id)).await? {
        resume(deps, &seen).await?;
        return Ok(Received::Duplicate);
    }
    let Some(church) = church_for_number(table, &inbound.to).await? else {
        tracing::warn!(carrier_id = %inbound.carrier_id, "inbound text to a number no church owns; dropped");
        return Ok(Received::UnknownNumber);
    };
    let stamp = now.to_rfc3339();
    let phone_hash = deps.vault.phone_hash(&inbound.from);
    let member = match table.get(&keys::phone_claim(church, &phone_hash)).await? {
        Some(claim) => {
            let id = claim
                .get("memberId")
                .and_then(Value::as_str)
                .and_then(|m| crate::domain::MemberId::parse(m).ok());
            match id {
                Some(id) => table
                    .get(&keys::member(church, id))
                    .await?
                    .map(MemberRecord::from_item)
                    .transpose()?,
                None => None,
            }
        }
        None => None,
    };
    let conv = open_conversation(
        deps,
        church,
        &inbound.from,
        &phone_hash,
        member.as_ref(),
        &stamp,
    )
    .await?;
    let conv_id = id_of(&conv);
    let keyword = classify(&inbound.text);
    let message_id = MessageId::generate();
    let message = message_key(&conv_id, message_id);
    let member_name = member.as_ref().map(|m| {
        format!("{} {}", m.first_name, m.last_name)
            .trim()
            .to_owned()
    });
    let mut item = json!({
        "pk": message.pk, "sk": message.sk, "type": "conversation_message", "id": message_id,
        "conversationId": conv_id, "churchId": church, "content": inbound.text, "direction": "inbound",
        "memberName": member_name, "deliveryStatus": "received", "carrierId": inbound.carrier_id,
        "createdAt": stamp,
    });
    let media = super::media::pending(&inbound.media);
    let media_job = (!media.is_empty()).then(|| MediaJob {
        church_id: church,
        conversation_id: conv_id.clone(),
        message_id,
    });
    if !media.is_empty() {
        item["media"] = Value::Array(media);
        item["mediaState"] = json!("copying");
    }
    // The keyword's confirmation is stored with the text, so a crash before
    // it is queued is repaired when Telnyx delivers the event again.
    let confirmation = match keyword.filter(|_| !inbound.autoresponded) {
        Some(keyword) => {
            let profile = table.get(&keys::church_profile(church)).await?;
            Some(Outbound::new(
                church,
                &conv_id,
                message_id.successor(),
                &confirmation(keyword, profile.as_ref()),
                true,
                vec![],
                &stamp,
            ))
        }
        None => None,
    };
    let seen = inbound_key(&inbound.carrier_id);
    let was = conv
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("open")
        .to_owned();
    let added = 1 + i64::from(confirmation.is_some());
    let mut ops = vec![
        TxOp::put_new(json!({
            "pk": seen.pk, "sk": seen.sk, "ttl": now.timestamp() + 7 * 86_400,
            "churchId": church, "conversationId": conv_id, "messageId": message_id,
            "hasMedia": media_job.is_some(),
            "confirmationId": confirmation.as_ref().map(|c| c.job.message_id),
        })),
        TxOp::put_new(item.clone()),
    ];
    // A new text reopens a closed or archived conversation (op 2; if an
    // admin refiles it meanwhile, this runs again).
    ops.extend(refile(
        church,
        &conv_id,
        &was,
        "open",
        &stamp,
        Update::default()
            .add("unreadCount", 1)
            .add("messageCount", added)
            .set("lastMessage", inbound.text.as_str())
            .set("lastMessageAt", stamp.as_str())
            .set("updatedAt", stamp.as_str()),
    ));
    if let Some(keyword) = keyword {
        let consent = consent_key(church, &phone_hash, &stamp, message_id);
        let record = json!({
            "pk": consent.pk, "sk": consent.sk, "type": "consent", "action": keyword.as_str(),
            "keyword": inbound.text.trim(), "source": "sms", "at": stamp, "carrierId": inbound.carrier_id,
            "memberId": member.as_ref().map(|m| m.id), "conversationId": conv_id,
        });
        ops.push(TxOp::put_new(record));
        let opt_in = match keyword {
            Keyword::OptOut => Some(false),
            Keyword::OptIn => Some(true),
            Keyword::Help => None,
        };
        if let Some(opt_in) = opt_in {
            if let Some(member) = &member {
                let update = if opt_in {
                    Update::default()
                        .set("optInSms", true)
                        .remove("optOutSource")
                } else {
                    Update::default()
                        .set("optInSms", false)
                        .set("optOutSource", "keyword")
                };
                ops.push(TxOp::Update {
                    key: keys::member(church, member.id),
                    update: update.set("updatedAt", stamp.as_str()),
                    cond: Some(Cond::Exists),
                });
            }
            // The phone's consent at this church, for texts to a non-member too.
            if let Some(TxOp::Update { update, .. }) = ops.get_mut(2) {
                *update = std::mem::take(update).set("optInSms", opt_in);
            }
        }
    }
    if let Some(confirmation) = &confirmation {
        ops.push(confirmation.put());
    }
    match table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCancelled { failed }) if failed == [2] => {
            return Ok(Received::Refiled);
        }
        Err(TableError::TransactionCancelled { .. }) => return Ok(Received::Duplicate),
        Err(e) => return Err(e.into()),
    }
    if let Some(job) = &media_job {
        job.enqueue(deps.media_queue).await?;
    }
    if let Some(confirmation) = &confirmation {
        replies::enqueue(deps.send_queue, &confirmation.job).await?;
    }
    tracing::info!(church_id = %church, conversation_id = %conv_id, keyword = keyword.map(Keyword::as_str), "inbound text appended");
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
        conversation: conv_id,
        keyword,
    })
}

/// Telnyx delivered an applied event again — perhaps because the process
/// died before answering. Whatever that run stored but may not have queued
/// is queued again; the consumers act on each once (the sender claims a
/// message with a conditional write, the copy skips finished files).
async fn resume(deps: &Deps<'_>, seen: &Item) -> Result<(), ConversationError> {
    let text = |attr: &str| seen.get(attr).and_then(Value::as_str);
    let (Some(church), Some(conversation)) = (
        text("churchId").and_then(|c| ChurchId::parse(c).ok()),
        text("conversationId"),
    ) else {
        return Ok(());
    };
    let state_of = |id: MessageId, attr: &'static str| async move {
        let item = deps.table.get(&message_key(conversation, id)).await?;
        Ok::<_, TableError>(
            item.and_then(|i| i.get(attr).and_then(Value::as_str).map(str::to_owned)),
        )
    };
    if seen.get("hasMedia").and_then(Value::as_bool) == Some(true)
        && let Some(id) = text("messageId").and_then(|m| MessageId::parse(m).ok())
        && state_of(id, "mediaState").await?.as_deref() == Some("copying")
    {
        let job = MediaJob {
            church_id: church,
            conversation_id: conversation.to_owned(),
            message_id: id,
        };
        job.enqueue(deps.media_queue).await?;
    }
    if let Some(id) = text("confirmationId").and_then(|m| MessageId::parse(m).ok())
        && state_of(id, "deliveryStatus").await?.as_deref() == Some("queued")
    {
        replies::enqueue(deps.send_queue, &replies::job(church, conversation, id)).await?;
    }
    Ok(())
}
