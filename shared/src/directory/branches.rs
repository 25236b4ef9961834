//! Branches (campuses) of a church, with member and group counts kept as
//! counters on the branch item.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cleanup::{self, Leftover, Scope};
use super::error::DirectoryError;
use super::members::Ctx;
use super::model::{Counter, Counters};
use super::plans;
use crate::domain::{BranchId, ChurchId};
use crate::keys;
use crate::ports::Queue;
use crate::ports::table::{Cond, Key, Query, SortCond, TableError, TxOp, Update};
use crate::store::{Entities, Entity, Transaction, TransactionError, from_item};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Branch {
    pub id: BranchId,
    pub church_id: ChurchId,
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub is_active: bool,
    pub member_count: i64,
    pub group_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Entity for Branch {
    const KIND: Option<&'static str> = Some("branch");
    fn key(&self) -> Key {
        keys::branch(self.church_id, self.id)
    }
}

/// The branch's counter of members (its own attribute, kept by membership changes).
pub(crate) fn count_members(church: ChurchId, branch: BranchId, by: i64) -> TxOp {
    TxOp::Update {
        key: keys::branch(church, branch),
        update: Update::default().add("memberCount", by),
        cond: Some(Cond::Exists),
    }
}

/// The branch's counter of groups.
pub(crate) fn count_groups(church: ChurchId, branch: BranchId, by: i64) -> TxOp {
    TxOp::Update {
        key: keys::branch(church, branch),
        update: Update::default().add("groupCount", by),
        cond: Some(Cond::Exists),
    }
}

/// The parts of a branch's creation and deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The church's branch count, under the plan's limit (or above one).
    Count,
    Branch,
}

/// The editable fields; `None` leaves one as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct BranchFields {
    pub name: Option<String>,
    pub address: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub is_active: Option<bool>,
}

pub async fn create(ctx: &Ctx<'_>, fields: BranchFields) -> Result<Branch, DirectoryError> {
    let stamp = ctx.now.to_rfc3339();
    let branch = Branch {
        id: BranchId::generate(),
        church_id: ctx.church,
        name: fields.name.unwrap_or_default(),
        address: fields.address.flatten(),
        phone: fields.phone.flatten(),
        description: fields.description.flatten(),
        is_active: fields.is_active.unwrap_or(true),
        member_count: 0,
        group_count: 0,
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    let limit = plans::of_church(ctx.table, ctx.church).await?.branches;
    let counted = Counters::default()
        .add(Counter::Branches, 1)
        .below(Counter::Branches, i64::from(limit));
    let creation = Transaction::new()
        .with(Part::Count, counted.op(ctx.church))
        .with(Part::Branch, TxOp::create(&branch)?);
    match creation.commit(ctx.table).await {
        Ok(()) => Ok(branch),
        Err(TransactionError::Cancelled(_)) => Err(DirectoryError::PlanLimit { limit: "branches" }),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Vec<Branch>, DirectoryError> {
    Ok(of_church(ctx.table, ctx.church).await?)
}

/// Every branch of a church, by id; for readers without the vault (analytics).
pub async fn of_church(
    table: &dyn crate::ports::table::Table,
    church: ChurchId,
) -> Result<Vec<Branch>, TableError> {
    let query = Query::partition(keys::church(church))
        .sort(SortCond::BeginsWith(keys::BRANCH_PREFIX.into()));
    table.find_all::<Branch>(query).await
}

/// The church's first branch: its oldest (ids sort by creation), the Main
/// Campus unless deleted. A member added without a branch joins it, so the
/// branch cards count every member (the old backend had no member–branch
/// link at all, and its frontend sends none). One item read.
pub(crate) async fn first(
    table: &dyn crate::ports::table::Table,
    church: ChurchId,
) -> Result<Option<BranchId>, TableError> {
    let query = Query::partition(keys::church(church))
        .sort(SortCond::BeginsWith(keys::BRANCH_PREFIX.into()))
        .limit(1);
    let (found, _) = table.find::<Branch>(query).await?;
    Ok(found.first().map(|b| b.id))
}

pub async fn update(
    ctx: &Ctx<'_>,
    id: BranchId,
    fields: BranchFields,
) -> Result<Branch, DirectoryError> {
    let mut update = Update::default().set("updatedAt", ctx.now.to_rfc3339());
    if let Some(name) = fields.name {
        update = update.set("name", name);
    }
    for (attr, value) in [
        ("address", fields.address),
        ("phone", fields.phone),
        ("description", fields.description),
    ] {
        if let Some(value) = value {
            update = update.set(attr, json!(value));
        }
    }
    if let Some(active) = fields.is_active {
        update = update.set("isActive", active);
    }
    match ctx
        .table
        .update(&keys::branch(ctx.church, id), update, Some(Cond::Exists))
        .await
    {
        Ok(item) => Ok(from_item::<Branch>(item)?),
        Err(TableError::ConditionFailed) => Err(DirectoryError::NotFound("branch")),
        Err(e) => Err(e.into()),
    }
}

/// What deleting a branch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// Groups are kept too, without a branch. Always 0; the frontend reads it.
    pub groups_deleted: u64,
    pub groups_unassigned: u64,
    /// Members are people, not part of the campus: they stay in the church,
    /// without a branch. Always 0; kept because the frontend reads it.
    pub members_deleted: u64,
    pub members_unassigned: u64,
    /// More members than one request unassigns: the fan-out queue finishes.
    pub members_pending: bool,
}

/// Deletes a branch; its members and groups stay, without a branch. A
/// retry after a failure part-way finishes what the first left.
pub async fn delete(
    ctx: &Ctx<'_>,
    queue: &dyn Queue,
    id: BranchId,
) -> Result<Deleted, DirectoryError> {
    let key = keys::branch(ctx.church, id);
    let leftover = Leftover::BranchMembers { branch_id: id };
    let scope = Scope {
        table: ctx.table,
        church: ctx.church,
        now: ctx.now,
    };
    if ctx.table.get(&key).await?.is_some() {
        let counted = Counters::default()
            .add(Counter::Branches, -1)
            .above(Counter::Branches, 1);
        let deletion = Transaction::new()
            .with(
                Part::Branch,
                TxOp::Delete {
                    key,
                    cond: Some(Cond::Exists),
                },
            )
            .with(Part::Count, counted.op(ctx.church));
        match deletion.commit(ctx.table).await {
            Ok(()) => {}
            Err(e) if e.failed(Part::Count) => {
                return Err(DirectoryError::NotAllowed {
                    code: "last_branch",
                    field: "branchId",
                    message: "a church keeps at least one branch".into(),
                });
            }
            Err(TransactionError::Cancelled(_)) => return Err(DirectoryError::NotFound("branch")),
            Err(e) => return Err(e.into()),
        }
    } else if !cleanup::remains(&scope, leftover).await? {
        return Err(DirectoryError::NotFound("branch"));
    }
    let (members_unassigned, members_pending) =
        cleanup::work(&scope, leftover, cleanup::INLINE_ROWS).await?;
    if members_pending {
        cleanup::hand_off(queue, ctx.church, leftover).await?;
    }
    let groups_unassigned = super::groups::unassign_branch(ctx, id).await?;
    Ok(Deleted {
        groups_deleted: 0,
        groups_unassigned,
        members_deleted: 0,
        members_unassigned,
        members_pending,
    })
}
