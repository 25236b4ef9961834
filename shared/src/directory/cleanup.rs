//! What a delete leaves to do over many members: a deleted branch's
//! members lose their branch, a deleted group's memberships go.
//!
//! A delete does the first [`INLINE_ROWS`] itself, so a small branch or
//! group is done by the time it answers, and hands what remains to the
//! fan-out queue, a page per job. An HTTP function never runs past its 29 s
//! whatever the size of the branch, and a large church's partition is
//! written at the fan-out consumer's pace, not in one burst.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::DirectoryError;
use super::members::MemberRecord;
use super::model::Membership;
use crate::domain::{BranchId, ChurchId, GroupId, MemberId};
use crate::keys;
use crate::ports::table::{Item, Key, Query, SortCond, Table, TableError, TxOp};
use crate::ports::{OutgoingMessage, Queue};
use crate::store::{Entities, from_item};

/// Rows a delete works through before it answers.
pub const INLINE_ROWS: usize = 200;
/// Rows one queued step works through.
const PAGE: usize = 100;

/// The rows a deleted branch or group leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cleanup", rename_all = "camelCase")]
pub enum Leftover {
    #[serde(rename_all = "camelCase")]
    BranchMembers { branch_id: BranchId },
    #[serde(rename_all = "camelCase")]
    GroupMemberships { group_id: GroupId },
}

/// A fan-out queue job: finish a delete's leftover, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupJob {
    pub church_id: ChurchId,
    #[serde(flatten)]
    pub leftover: Leftover,
}

/// Where the work happens: the church's rows, at `now`.
pub struct Scope<'a> {
    pub table: &'a dyn Table,
    pub church: ChurchId,
    pub now: DateTime<Utc>,
}

impl Leftover {
    fn rows(&self, church: ChurchId, limit: usize) -> Query {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let container = match self {
            Leftover::BranchMembers { branch_id } => keys::branch_container(*branch_id),
            Leftover::GroupMemberships { group_id } => keys::group_container(*group_id),
        };
        Query::partition(keys::church(church))
            .sort(SortCond::BeginsWith(keys::memberships_prefix(&container)))
            .limit(limit)
    }
}

/// Works through up to `budget` rows: how many members changed, and
/// whether rows remain.
pub async fn work(
    scope: &Scope<'_>,
    leftover: Leftover,
    budget: usize,
) -> Result<(u64, bool), DirectoryError> {
    let mut changed = 0;
    let mut seen = 0;
    while seen < budget {
        let page = scope
            .table
            .query(leftover.rows(scope.church, PAGE.min(budget - seen)))
            .await?;
        if page.items.is_empty() {
            return Ok((changed, false));
        }
        for row in page.items {
            seen += 1;
            if clear(scope, leftover, &row).await? {
                changed += 1;
            }
        }
    }
    Ok((changed, remains(scope, leftover).await?))
}

/// Whether any of `leftover`'s rows remain (a delete retried after a failure).
pub async fn remains(scope: &Scope<'_>, leftover: Leftover) -> Result<bool, DirectoryError> {
    Ok(!scope
        .table
        .query(leftover.rows(scope.church, 1))
        .await?
        .items
        .is_empty())
}

/// Hands the rest of `leftover` to the fan-out queue.
pub async fn hand_off(
    queue: &dyn Queue,
    church: ChurchId,
    leftover: Leftover,
) -> Result<(), DirectoryError> {
    let job = CleanupJob {
        church_id: church,
        leftover,
    };
    let body =
        serde_json::to_string(&job).map_err(|e| TableError::backend("encode a cleanup job", e))?;
    queue
        .send_batch(vec![OutgoingMessage::new(body)])
        .await
        .map_err(|e| TableError::backend("queue a cleanup job", e))?;
    Ok(())
}

/// One queued step: a page, then the job again while rows remain.
pub async fn step(
    scope: &Scope<'_>,
    queue: &dyn Queue,
    job: &CleanupJob,
) -> Result<(), DirectoryError> {
    let (_, more) = work(scope, job.leftover, PAGE).await?;
    if more {
        hand_off(queue, job.church_id, job.leftover).await?;
    }
    Ok(())
}

/// Clears one membership row (and the member's side of it); whether the
/// member changed. A row whose member moved, left or never parsed is
/// dropped all the same.
async fn clear(scope: &Scope<'_>, leftover: Leftover, row: &Item) -> Result<bool, DirectoryError> {
    let row_key = Key::of(row)?;
    let member = from_item::<Membership>(row.clone())
        .ok()
        .map(|r| r.member_id);
    let changed = match (member, leftover) {
        (Some(member), Leftover::BranchMembers { branch_id }) => {
            unassign(scope, &row_key, member, branch_id).await?
        }
        (Some(member), Leftover::GroupMemberships { group_id }) => {
            forget(scope, &row_key, member, group_id).await?
        }
        (None, _) => false,
    };
    if !changed {
        scope.table.delete(&row_key, None).await?;
    }
    Ok(changed)
}

/// The member leaves the deleted branch, with its row, in one transaction.
async fn unassign(
    scope: &Scope<'_>,
    row: &Key,
    member: MemberId,
    branch: BranchId,
) -> Result<bool, DirectoryError> {
    let ops = vec![
        TxOp::Delete {
            key: row.clone(),
            cond: None,
        },
        super::members::leave_deleted_branch(scope.church, member, branch),
    ];
    match scope.table.transact(ops).await {
        Ok(()) => Ok(true),
        // The member moved or left meanwhile: only the row goes.
        Err(TableError::TransactionCancelled { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The deleted group leaves the member's `groupIds`, with its row, in one
/// transaction (the group's own count went with the group).
async fn forget(
    scope: &Scope<'_>,
    row: &Key,
    member: MemberId,
    group: GroupId,
) -> Result<bool, DirectoryError> {
    for _ in 0..super::groups::MEMBERSHIP_ATTEMPTS {
        let key = keys::member(scope.church, member);
        let Some(record) = scope.table.load::<MemberRecord>(&key).await? else {
            return Ok(false);
        };
        if !record.group_ids.contains(&group) {
            return Ok(false);
        }
        let mut after = record.clone();
        after.group_ids.retain(|g| *g != group);
        after.updated_at = scope.now.to_rfc3339();
        let ops = vec![
            TxOp::put(
                &after,
                Some(super::groups::unchanged_since(&record.updated_at)),
            )?,
            TxOp::Delete {
                key: row.clone(),
                cond: None,
            },
        ];
        match scope.table.transact(ops).await {
            Ok(()) => return Ok(true),
            Err(TableError::TransactionCancelled { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DirectoryError::Conflict {
        code: "concurrent_update",
        field: "memberId",
        message: "the member keeps changing; the cleanup job retries".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleanup_job_reads_back_as_written_and_never_as_a_broadcast() {
        let job = CleanupJob {
            church_id: ChurchId::generate(),
            leftover: Leftover::GroupMemberships {
                group_id: GroupId::generate(),
            },
        };
        let body = serde_json::to_string(&job).unwrap();
        assert!(body.contains(r#""cleanup":"groupMemberships""#), "{body}");
        assert_eq!(serde_json::from_str::<CleanupJob>(&body).unwrap(), job);
        assert!(serde_json::from_str::<crate::messaging::jobs::FanoutJob>(&body).is_err());
    }
}
