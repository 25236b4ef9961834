//! Join keywords and welcome messages: a group's keyword texted to the
//! church adds the texter to that group (creating the member from the
//! phone if needed), and every member joining a group with a welcome gets
//! it once — whether they texted the keyword or an admin added them.

use super::model::WelcomeSent;
use super::opening::open_conversation;
use super::replies;
use super::{ConversationError, Deps};
use crate::crypto::Field;
use crate::directory::error::DirectoryError;
use crate::directory::groups::{self, parse_keyword};
use crate::directory::members::{self, Ctx, MemberRecord, NewMember};
use crate::directory::model::{ChurchProfile, KeywordClaim};
use crate::domain::{ChurchId, GroupId, MessageId, PhoneNumber};
use crate::keys;
use crate::ports::table::{Cond, TableError};
use crate::store::Entities;

/// The consent wording 10DLC requires on a subscription confirmation.
pub const CONSENT_WORDING: &str =
    "Msg & data rates may apply. Reply HELP for help, STOP to opt out.";

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl From<TableError> for JoinError {
    fn from(e: TableError) -> Self {
        JoinError::Conversation(e.into())
    }
}

fn ctx<'a>(deps: &Deps<'a>, church: ChurchId, now: chrono::DateTime<chrono::Utc>) -> Ctx<'a> {
    Ctx {
        church,
        table: deps.table,
        vault: deps.vault,
        now,
    }
}

/// The group whose join keyword `text` is, at this church.
pub async fn group_for(
    deps: &Deps<'_>,
    church: ChurchId,
    text: &str,
) -> Result<Option<GroupId>, TableError> {
    let Ok(keyword) = parse_keyword(text) else {
        return Ok(None);
    };
    let claim: Option<KeywordClaim> = deps
        .table
        .load(&keys::keyword_claim(church, &keyword))
        .await?;
    Ok(claim.map(|c| c.group_id))
}

/// The texter joins `group`: made a member if they are not one (which
/// links their conversation), added, and welcomed once.
pub async fn join(
    deps: &Deps<'_>,
    church: ChurchId,
    group: GroupId,
    phone: &PhoneNumber,
    member: Option<MemberRecord>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), JoinError> {
    let ctx = ctx(deps, church, now);
    let member = match member {
        Some(member) => member,
        None => {
            // Texting the keyword is the consent to receive this church's texts.
            let created = members::create(
                &ctx,
                NewMember {
                    first_name: "Guest".into(),
                    last_name: String::new(),
                    phone: phone.clone(),
                    email: None,
                    opt_in_sms: true,
                    branch_id: None,
                },
            )
            .await?;
            members::get_record(&ctx, created.id).await?
        }
    };
    // A new member's conversation was linked when they were created (`links`).
    groups::set_membership(&ctx, group, member.id, true).await?;
    welcome_once(deps, church, group, &member, now).await
}

/// Sends `group`'s welcome (else the church's) to `member`, once ever.
pub async fn welcome_once(
    deps: &Deps<'_>,
    church: ChurchId,
    group: GroupId,
    member: &MemberRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), JoinError> {
    let ctx = ctx(deps, church, now);
    let group = groups::get(&ctx, group).await?;
    let profile: Option<ChurchProfile> = deps.table.load(&ChurchProfile::key_of(church)).await?;
    let church_welcome = profile.as_ref().and_then(ChurchProfile::welcome_message);
    let text = if group.welcome_message_enabled {
        group.welcome_message_text.clone().or(church_welcome)
    } else {
        church_welcome.filter(|_| group.keyword.is_some())
    };
    let Some(text) = text else {
        return Ok(());
    };
    let stamp = now.to_rfc3339();
    let once = WelcomeSent::new(church, group.id, member.id, &stamp);
    match deps.table.save(&once, Some(Cond::NotExists)).await {
        Ok(()) => {}
        Err(TableError::ConditionFailed) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let phone = deps
        .vault
        .open(church, Field::MemberPhone, &member.phone_sealed)
        .ok()
        .and_then(|p| PhoneNumber::parse(&p).ok());
    let Some(phone) = phone else {
        return Ok(());
    };
    let conversation = open_conversation(
        deps,
        church,
        &phone,
        &member.phone_hash,
        Some(member),
        &stamp,
    )
    .await?;
    let text = format!("{} {CONSENT_WORDING}", text.trim());
    let outbound = replies::Outbound::new(
        church,
        conversation.id,
        MessageId::generate(),
        &text,
        false,
        vec![],
        &stamp,
    );
    replies::queue(deps.table, deps.send_queue, outbound).await?;
    Ok(())
}
