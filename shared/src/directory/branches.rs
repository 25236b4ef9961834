//! Branches (campuses) of a church, with member and group counts kept as
//! counters on the branch item.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cleanup::{self, Leftover, Scope};
use super::error::DirectoryError;
use super::members::Ctx;
use super::plans;
use crate::domain::{BranchId, ChurchId};
use crate::keys;
use crate::ports::Queue;
use crate::ports::table::{Cond, Item, Query, SortCond, TableError, TxOp, Update, query_all};

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

impl Branch {
    fn to_item(&self) -> Result<Item, TableError> {
        super::record::to_item(self, keys::branch(self.church_id, self.id), "branch")
    }

    fn from_item(item: Item) -> Result<Self, TableError> {
        super::record::from_item(item, "branch")
    }
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
    let ops = vec![
        TxOp::Update {
            key: keys::church_counters(ctx.church),
            update: Update::default().add("branches", 1),
            cond: Some(Cond::Lt("branches".into(), json!(limit))),
        },
        TxOp::Put {
            item: branch.to_item()?,
            cond: Some(Cond::NotExists),
        },
    ];
    match ctx.table.transact(ops).await {
        Ok(()) => Ok(branch),
        Err(TableError::TransactionCancelled { .. }) => {
            Err(DirectoryError::PlanLimit { limit: "branches" })
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Vec<Branch>, DirectoryError> {
    let query = Query::partition(keys::church(ctx.church))
        .sort(SortCond::BeginsWith(keys::BRANCH_PREFIX.into()));
    let items = query_all(ctx.table, query).await?;
    Ok(items
        .into_iter()
        .map(Branch::from_item)
        .collect::<Result<_, _>>()?)
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
        Ok(item) => Ok(Branch::from_item(item)?),
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
        let ops = vec![
            TxOp::Delete {
                key,
                cond: Some(Cond::Exists),
            },
            TxOp::Update {
                key: keys::church_counters(ctx.church),
                update: Update::default().add("branches", -1),
                cond: Some(Cond::Gt("branches".into(), json!(1))),
            },
        ];
        match ctx.table.transact(ops).await {
            Ok(()) => {}
            Err(TableError::TransactionCancelled { failed }) if failed.contains(&1) => {
                return Err(DirectoryError::NotAllowed {
                    code: "last_branch",
                    field: "branchId",
                    message: "a church keeps at least one branch".into(),
                });
            }
            Err(TableError::TransactionCancelled { .. }) => {
                return Err(DirectoryError::NotFound("branch"));
            }
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
