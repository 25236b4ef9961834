//! What the dashboard loads on every visit: the sending number, the trial,
//! the plan with its usage, and the onboarding checklist — all from the
//! church's profile and counters (one BatchGetItem), never a scan.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{ChurchCounters, ChurchProfile, Counter, profile_and_counters};
use super::plans::{Plan, UNLIMITED};
use crate::domain::ChurchId;
use crate::error::ApiError;
use crate::keys;
use crate::ports::table::{Key, Table, TableError, Update};
use crate::store::Entities;

pub const ONBOARDING_TASKS: [&str; 3] = ["create_branch", "add_members", "send_message"];

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{step}")]
    Table {
        step: &'static str,
        #[source]
        source: TableError,
    },
}

impl From<DashboardError> for ApiError {
    fn from(e: DashboardError) -> Self {
        match e {
            DashboardError::NotFound(what) => ApiError::NotFound { what },
            DashboardError::Table { step, source } => ApiError::internal_at(step, source),
        }
    }
}

fn at(step: &'static str) -> impl FnOnce(TableError) -> DashboardError {
    move |source| DashboardError::Table { step, source }
}

/// The church's profile and counters (zeros until the first is counted).
async fn church(
    table: &dyn Table,
    church: ChurchId,
) -> Result<(ChurchProfile, ChurchCounters), DashboardError> {
    let read = "read the church's profile and counters";
    let (profile, counters) = profile_and_counters(table, church)
        .await
        .map_err(at(read))?;
    let profile = profile.ok_or(DashboardError::NotFound("church"))?;
    Ok((profile, counters.unwrap_or_default()))
}

/// The linked sending number (fields alphabetical, as answered).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendingNumber {
    pub id: String,
    pub telnyx_phone_number: String,
    /// When it was linked (null for numbers linked before that was kept).
    pub telnyx_purchased_at: serde_json::Value,
    pub telnyx_verified: bool,
}

/// `GET /api/numbers/current`: the church's sending number, if linked.
pub async fn current_number(
    table: &dyn Table,
    church_id: ChurchId,
) -> Result<SendingNumber, DashboardError> {
    let (profile, _) = church(table, church_id).await?;
    let number = profile
        .telnyx_phone_number
        .clone()
        .ok_or(DashboardError::NotFound("sending number"))?;
    Ok(SendingNumber {
        id: format!("{church_id}-number"),
        telnyx_phone_number: number,
        telnyx_purchased_at: serde_json::json!(profile.telnyx_linked_at),
        telnyx_verified: profile.telnyx_verified.unwrap_or(false),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trial {
    pub days_remaining: i64,
    pub on_trial: bool,
}

/// Whole days left of a trial, counting a started day as one.
pub fn trial_of(profile: &ChurchProfile, now: DateTime<Utc>) -> Trial {
    let ends = profile
        .trial_ends_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let on_trial = profile.subscription_status.as_deref() == Some("trialing");
    let seconds = ends.map(|e| (e - now).num_seconds()).unwrap_or(0).max(0);
    Trial {
        days_remaining: (seconds + 86_399) / 86_400,
        on_trial: on_trial && seconds > 0,
    }
}

/// `GET /api/billing/trial`.
pub async fn trial(
    table: &dyn Table,
    church_id: ChurchId,
    now: DateTime<Utc>,
) -> Result<Trial, DashboardError> {
    let (profile, _) = church(table, church_id).await?;
    Ok(trial_of(&profile, now))
}

/// What the plan counts, used (fields alphabetical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub branches: i64,
    pub co_admins: i64,
    pub members: i64,
    pub messages_this_month: i64,
}

/// What is left of each limit; [`UNLIMITED`] where the plan has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Remaining {
    pub branches: i64,
    pub co_admins: i64,
    pub members: i64,
    pub messages_per_month: i64,
}

/// A plan's limits as the billing page reads them: the price in cents,
/// [`UNLIMITED`] for no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub branches: i64,
    pub co_admins: i64,
    pub currency: &'static str,
    pub features: &'static [&'static str],
    pub members: i64,
    pub messages_per_month: i64,
    pub name: &'static str,
    pub price: u32,
}

impl Limits {
    pub fn of(plan: &Plan) -> Self {
        Limits {
            branches: i64::from(plan.branches),
            co_admins: i64::from(plan.co_admins),
            currency: "usd",
            features: plan.features,
            members: plan.members.map_or(UNLIMITED, i64::from),
            messages_per_month: plan.messages_per_month.map_or(UNLIMITED, i64::from),
            name: plan.name,
            price: plan.price_cents,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanUsage {
    pub limits: Limits,
    pub plan: &'static str,
    pub remaining: Remaining,
    pub usage: Usage,
}

/// What `plan` leaves once `usage` is counted.
pub fn remaining(plan: &Plan, usage: &Usage) -> Remaining {
    let left =
        |limit: Option<u32>, used: i64| limit.map_or(UNLIMITED, |l| (i64::from(l) - used).max(0));
    Remaining {
        branches: left(Some(plan.branches), usage.branches),
        co_admins: left(Some(plan.co_admins), usage.co_admins),
        members: left(plan.members, usage.members),
        messages_per_month: left(plan.messages_per_month, usage.messages_this_month),
    }
}

/// `GET /api/billing/plan`: the plan, what this month used and what is left.
pub async fn plan(
    table: &dyn Table,
    church_id: ChurchId,
    now: DateTime<Utc>,
) -> Result<PlanUsage, DashboardError> {
    let (profile, counters) = church(table, church_id).await?;
    let plan = profile.plan();
    let month = now.format("%Y-%m").to_string();
    let usage = Usage {
        branches: counters.get(Counter::Branches),
        co_admins: counters.get(Counter::CoAdmins),
        members: counters.get(Counter::Members),
        messages_this_month: counters.get(Counter::MessagesIn(&month)),
    };
    Ok(PlanUsage {
        limits: Limits::of(&plan),
        plan: plan.name,
        remaining: remaining(&plan, &usage),
        usage,
    })
}

/// An onboarding task an admin marked done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OnboardingMark {
    #[serde(skip)]
    key: Key,
    #[serde(default)]
    completed_at: Option<String>,
}

// Stored without a `type`, as it always was.
crate::store::keyed_by_its_key!(OnboardingMark);

impl OnboardingMark {
    /// Marks it done now, unless it already was (the first time stays).
    fn complete(now: DateTime<Utc>) -> Update {
        Update::default().set_if_absent("completedAt", now.to_rfc3339())
    }
}

/// One task of the checklist (fields alphabetical).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskProgress {
    pub completed: bool,
    pub completed_at: Option<String>,
    pub task_id: &'static str,
}

/// Whether the church's data shows `task` done, marked or not — from its
/// counters, as the old backend did from its rows: a branch exists (so a
/// new church, which has its Main Campus, has done it), a member exists, a
/// broadcast was sent (or scheduled).
fn derived(task: &str, counters: &ChurchCounters) -> bool {
    match task {
        "create_branch" => counters.get(Counter::Branches) > 0,
        "add_members" => counters.get(Counter::Members) > 0,
        _ => counters.get(Counter::MessagesCreated) > 0,
    }
}

/// `GET /api/onboarding/progress`: each task, done if marked or if the
/// church's data shows it.
pub async fn progress(
    table: &dyn Table,
    church_id: ChurchId,
) -> Result<Vec<TaskProgress>, DashboardError> {
    let (_, counters) = church(table, church_id).await?;
    let keys: Vec<Key> = ONBOARDING_TASKS
        .iter()
        .map(|t| keys::onboarding_task(church_id, t))
        .collect();
    let marked = table
        .load_many::<OnboardingMark>(&keys)
        .await
        .map_err(at("read the onboarding marks"))?;
    Ok(ONBOARDING_TASKS
        .iter()
        .zip(marked)
        .map(|(task, mark)| {
            let completed_at = mark.and_then(|m| m.completed_at);
            TaskProgress {
                completed: completed_at.is_some() || derived(task, &counters),
                completed_at,
                task_id: task,
            }
        })
        .collect())
}

/// What marking a task answers (fields alphabetical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checklist {
    pub completed_tasks: usize,
    pub is_complete: bool,
    pub percentage_complete: usize,
    pub remaining_tasks: usize,
}

pub fn checklist(tasks: &[TaskProgress]) -> Checklist {
    let done = tasks.iter().filter(|t| t.completed).count();
    let all = tasks.len();
    Checklist {
        completed_tasks: done,
        is_complete: done == all,
        percentage_complete: (done * 100).checked_div(all).unwrap_or(0),
        remaining_tasks: all - done,
    }
}

/// `POST /api/onboarding/complete/:taskId`: marks `task` done.
pub async fn complete(
    table: &dyn Table,
    church_id: ChurchId,
    task: &str,
    now: DateTime<Utc>,
) -> Result<Checklist, DashboardError> {
    if !ONBOARDING_TASKS.contains(&task) {
        return Err(DashboardError::NotFound("onboarding task"));
    }
    table
        .update(
            &keys::onboarding_task(church_id, task),
            OnboardingMark::complete(now),
            None,
        )
        .await
        .map_err(at("mark the onboarding task"))?;
    Ok(checklist(&progress(table, church_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_counts_what_is_done() {
        let task = |completed| TaskProgress {
            completed,
            completed_at: None,
            task_id: "x",
        };
        assert_eq!(
            checklist(&[task(true), task(false), task(false)]),
            Checklist {
                completed_tasks: 1,
                is_complete: false,
                percentage_complete: 33,
                remaining_tasks: 2
            }
        );
        assert!(checklist(&[task(true), task(true), task(true)]).is_complete);
    }

    #[test]
    fn a_trial_counts_a_started_day_and_ends_at_zero() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut profile = ChurchProfile::new(ChurchId::generate());
        profile.subscription_status = Some("trialing".into());
        profile.trial_ends_at = Some("2026-11-26T13:00:00Z".into());
        assert_eq!(
            trial_of(&profile, now),
            Trial {
                days_remaining: 2,
                on_trial: true
            }
        );
        profile.trial_ends_at = Some("2026-11-24T12:00:00Z".into());
        assert_eq!(
            trial_of(&profile, now),
            Trial {
                days_remaining: 0,
                on_trial: false
            }
        );
    }
}
