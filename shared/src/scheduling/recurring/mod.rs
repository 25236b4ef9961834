//! `/api/recurring`: recurring messages — daily, weekly or monthly at a
//! local time in the church's zone — and what a time-zone change does to
//! them. The cron (`scheduling::cron`) sends them.

pub mod model;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;

pub use model::{Fired, RecurringMessage, Target};

use crate::directory::branches::Branch;
use crate::directory::groups::Group;
use crate::directory::model::ChurchProfile;
use crate::domain::{ChurchId, MessageText, RecurringId};
use crate::keys;
use crate::messaging::jobs::Audience;
use crate::ports::table::{Cond, Query, SortCond, Table, TableError};
use crate::scheduling::recurrence::{Frequency, TimeOfDay};
use crate::store::Entities;

/// Recurring messages one church may keep.
pub const MAX_PER_CHURCH: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RecurringError {
    #[error("recurring message not found")]
    NotFound,
    #[error("targetIds names no {0} of this church")]
    UnknownTarget(&'static str),
    #[error(
        "{time} is inside the church's quiet hours ({start}–{end}); choose a time outside them or change them on the profile"
    )]
    InQuietHours {
        time: String,
        start: String,
        end: String,
    },
    #[error("{0} is required for this frequency")]
    MissingDay(&'static str),
    #[error("a church keeps at most {MAX_PER_CHURCH} recurring messages")]
    TooMany,
    #[error("the recurring message changed while this edit was made; reload and try again")]
    Conflict,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The schedule's parts of a request (each `None` when not sent).
#[derive(Debug, Clone, Default)]
pub struct RecurringFields {
    pub name: Option<String>,
    pub content: Option<MessageText>,
    pub target: Option<(Target, Vec<Audience>)>,
    pub frequency: Option<String>,
    pub day_of_week: Option<u32>,
    pub day_of_month: Option<u32>,
    pub time_of_day: Option<TimeOfDay>,
    pub is_active: Option<bool>,
}

/// Whose recurring messages, on which table, at what time: a send's
/// context, since every occurrence is one.
pub use crate::messaging::send::Sending as Ctx;

/// `createdAt` / `updatedAt`: to the millisecond, so an edit's
/// unchanged-since check tells two edits of one second apart.
fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn list_query(church: ChurchId) -> Query {
    Query::partition(keys::church(church)).sort(SortCond::BeginsWith(keys::RECURRING_PREFIX.into()))
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Vec<Value>, RecurringError> {
    let found: Vec<RecurringMessage> = ctx.table.find_all(list_query(ctx.church)).await?;
    Ok(found.iter().map(RecurringMessage::view).collect())
}

async fn load(ctx: &Ctx<'_>, id: RecurringId) -> Result<RecurringMessage, RecurringError> {
    ctx.table
        .load(&keys::recurring(ctx.church, id))
        .await?
        .ok_or(RecurringError::NotFound)
}

async fn profile(ctx: &Ctx<'_>) -> Result<ChurchProfile, RecurringError> {
    Ok(ctx
        .table
        .load(&ChurchProfile::key_of(ctx.church))
        .await?
        .unwrap_or_else(|| ChurchProfile::new(ctx.church)))
}

/// Every branch or group the audiences name is this church's.
pub async fn check_targets(
    table: &dyn Table,
    church: ChurchId,
    audiences: &[Audience],
) -> Result<(), RecurringError> {
    for audience in audiences {
        let found = match audience {
            Audience::Branch { id } => table
                .load::<Branch>(&keys::branch(church, *id))
                .await?
                .is_some(),
            Audience::Group { id } => table
                .load::<Group>(&keys::group(church, *id))
                .await?
                .is_some(),
            Audience::All | Audience::Members { .. } => true,
        };
        if !found {
            let what = match audience {
                Audience::Branch { .. } => "branch",
                _ => "group",
            };
            return Err(RecurringError::UnknownTarget(what));
        }
    }
    Ok(())
}

/// Refuses a time inside the church's quiet hours.
fn outside_quiet_hours(profile: &ChurchProfile, time: &str) -> Result<(), RecurringError> {
    let (Some(quiet), Some(at)) = (profile.quiet_hours(), TimeOfDay::parse(time)) else {
        return Ok(());
    };
    if quiet.contains(at.time()) {
        return Err(RecurringError::InQuietHours {
            time: time.to_owned(),
            start: quiet.start.format("%H:%M").to_string(),
            end: quiet.end.format("%H:%M").to_string(),
        });
    }
    Ok(())
}

/// Applies `fields` over `r`; the schedule's parts are checked by the
/// handler, their combination here (a weekly rule needs its weekday…).
fn apply(r: &mut RecurringMessage, fields: RecurringFields, tz: Tz, now: DateTime<Utc>) {
    if let Some(name) = fields.name {
        r.name = name;
    }
    if let Some(content) = fields.content {
        r.content = content.as_str().to_owned();
    }
    if let Some((target, _)) = fields.target {
        r.target = target;
    }
    if let Some(frequency) = fields.frequency {
        r.frequency = frequency;
    }
    if fields.day_of_week.is_some() {
        r.day_of_week = fields.day_of_week;
    }
    if fields.day_of_month.is_some() {
        r.day_of_month = fields.day_of_month;
    }
    // A monthly rule without its day: the day it was set up, locally.
    if r.frequency == "monthly" && r.day_of_month.is_none() {
        r.day_of_month = Some(now.with_timezone(&tz).day());
    }
    if r.frequency != "weekly" {
        r.day_of_week = None;
    }
    if r.frequency != "monthly" {
        r.day_of_month = None;
    }
    if let Some(time) = fields.time_of_day {
        r.time_of_day = time.as_hhmm();
    }
    if let Some(active) = fields.is_active {
        r.is_active = active;
    }
}

/// The frequency named, with its day where it needs one: `Err(field)` names what is missing.
pub fn rule_of(r: &RecurringMessage) -> Result<Frequency, &'static str> {
    match r.frequency.as_str() {
        "weekly" if r.day_of_week.is_none() => Err("dayOfWeek"),
        _ => r.frequency().ok_or("frequency"),
    }
}

pub async fn create(ctx: &Ctx<'_>, fields: RecurringFields) -> Result<Value, RecurringError> {
    let profile = profile(ctx).await?;
    if let Some((_, audiences)) = &fields.target {
        check_targets(ctx.table, ctx.church, audiences).await?;
    }
    let existing = ctx
        .table
        .query(
            list_query(ctx.church)
                .limit(MAX_PER_CHURCH as u32)
                .keys_only(),
        )
        .await?;
    if existing.items.len() >= MAX_PER_CHURCH {
        return Err(RecurringError::TooMany);
    }
    let now = stamp(ctx.now);
    let tz = profile.tz();
    let mut r = RecurringMessage {
        id: RecurringId::generate(),
        church_id: ctx.church,
        name: String::new(),
        content: String::new(),
        target: Target {
            target_type: "all".into(),
            target_ids: Vec::new(),
        },
        frequency: String::new(),
        day_of_week: None,
        day_of_month: None,
        time_of_day: String::new(),
        timezone: tz.name().to_owned(),
        next_send_at: None,
        is_active: true,
        created_at: now.clone(),
        updated_at: now,
        last_sent_at: None,
        last_message_id: None,
        last_error: None,
        missed_count: 0,
        last_missed_at: None,
    };
    apply(&mut r, fields, tz, ctx.now);
    rule_of(&r).map_err(RecurringError::MissingDay)?;
    outside_quiet_hours(&profile, &r.time_of_day)?;
    r.schedule_after(tz, ctx.now);
    ctx.table.save(&r, Some(Cond::NotExists)).await?;
    Ok(r.view())
}

pub async fn update(
    ctx: &Ctx<'_>,
    id: RecurringId,
    fields: RecurringFields,
) -> Result<Value, RecurringError> {
    let before = load(ctx, id).await?;
    let profile = profile(ctx).await?;
    if let Some((_, audiences)) = &fields.target {
        check_targets(ctx.table, ctx.church, audiences).await?;
    }
    let mut after = before.clone();
    let tz = profile.tz();
    apply(&mut after, fields, tz, ctx.now);
    rule_of(&after).map_err(RecurringError::MissingDay)?;
    if after.time_of_day != before.time_of_day {
        outside_quiet_hours(&profile, &after.time_of_day)?;
    }
    after.updated_at = stamp(ctx.now);
    after.schedule_after(tz, ctx.now);
    save_over(ctx, &before, &after).await?;
    Ok(after.view())
}

async fn save_over(
    ctx: &Ctx<'_>,
    before: &RecurringMessage,
    after: &RecurringMessage,
) -> Result<(), RecurringError> {
    match ctx.table.save(after, Some(before.unchanged())).await {
        Ok(()) => Ok(()),
        Err(TableError::ConditionFailed) => Err(RecurringError::Conflict),
        Err(e) => Err(e.into()),
    }
}

pub async fn toggle(ctx: &Ctx<'_>, id: RecurringId, active: bool) -> Result<Value, RecurringError> {
    let fields = RecurringFields {
        is_active: Some(active),
        ..RecurringFields::default()
    };
    update(ctx, id, fields).await
}

pub async fn delete(ctx: &Ctx<'_>, id: RecurringId) -> Result<(), RecurringError> {
    match ctx
        .table
        .delete(&keys::recurring(ctx.church, id), Some(Cond::Exists))
        .await
    {
        Ok(_) => Ok(()),
        Err(TableError::ConditionFailed) => Err(RecurringError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The church moved to `tz`: every recurring message's next occurrence is
/// recomputed there (an edit racing it wins; the edit computes its own).
pub async fn retime(ctx: &Ctx<'_>, tz: Tz) -> Result<usize, RecurringError> {
    let found: Vec<RecurringMessage> = ctx.table.find_all(list_query(ctx.church)).await?;
    let mut moved = 0;
    for before in found {
        let mut after = before.clone();
        after.updated_at = stamp(ctx.now);
        after.schedule_after(tz, ctx.now);
        match save_over(ctx, &before, &after).await {
            Ok(()) => moved += 1,
            Err(RecurringError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(moved)
}
