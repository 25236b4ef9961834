//! Groups: named sets of members (choir, youth, newcomers) with an optional
//! join keyword and welcome message. Membership is a row per member
//! (`IN#GROUP#g#m`, what a broadcast to the group pages through) plus the
//! member's `groupIds`, kept together in one transaction.

use serde::{Deserialize, Serialize};

use super::cleanup::{self, Leftover, Scope};
use super::error::DirectoryError;
use super::members::{Ctx, MemberRecord, get_record};
use super::model::{Counter, Counters, KeywordClaim, Membership};
use crate::domain::{BranchId, ChurchId, GroupId, MemberId};
use crate::keys;
use crate::ports::table::{Cond, Key, Query, SortCond, TableError, TxOp, Update};
use crate::store::{Entities, Entity, Transaction, TransactionError};

/// The condition that a record (group or member) is as it was read: its
/// `updatedAt` moves on every write.
pub(super) fn unchanged_since(updated_at: &str) -> Cond {
    Cond::eq("updatedAt", updated_at)
}

/// The group's counter of members (kept by membership changes).
pub(super) fn count_members(church: ChurchId, group: GroupId, by: i64) -> TxOp {
    TxOp::Update {
        key: keys::group(church, group),
        update: Update::default().add("memberCount", by),
        cond: Some(Cond::Exists),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: GroupId,
    pub church_id: ChurchId,
    pub branch_id: Option<BranchId>,
    pub name: String,
    pub description: Option<String>,
    pub keyword: Option<String>,
    pub welcome_message_enabled: bool,
    pub welcome_message_text: Option<String>,
    pub member_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl Entity for Group {
    const KIND: Option<&'static str> = Some("group");
    fn key(&self) -> Key {
        keys::group(self.church_id, self.id)
    }
}

/// The parts of a group's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The group, unchanged since it was read.
    Group,
    /// Its join keyword's claim: taken by another group.
    Keyword,
    /// The church's and its branch's counts (the branch must exist).
    Counts,
    /// The member, unchanged since it was read.
    Member,
    Membership,
}

/// A join keyword: one word of 2–20 letters or digits, upper-cased, not reserved.
pub fn parse_keyword(raw: &str) -> Result<String, &'static str> {
    let keyword = raw.trim().to_uppercase();
    if !(2..=20).contains(&keyword.chars().count())
        || !keyword.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err("keyword must be one word of 2 to 20 letters or digits");
    }
    // The compliance keywords (STOP, START, HELP and their synonyms) win.
    if crate::conversations::keywords::classify(&keyword).is_some() {
        return Err("keyword is reserved for opt-out, opt-in and help");
    }
    Ok(keyword)
}

#[derive(Debug, Clone, Default)]
pub struct GroupFields {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub branch_id: Option<Option<BranchId>>,
    pub keyword: Option<Option<String>>,
    pub welcome_message_enabled: Option<bool>,
    pub welcome_message_text: Option<Option<String>>,
}

fn keyword_taken() -> DirectoryError {
    DirectoryError::Conflict {
        code: "keyword_taken",
        field: "keyword",
        message: "another group already uses this keyword".into(),
    }
}

fn unknown_branch() -> DirectoryError {
    DirectoryError::NotAllowed {
        code: "unknown_branch",
        field: "branchId",
        message: "branchId names no branch of this church".into(),
    }
}

pub async fn create(ctx: &Ctx<'_>, fields: GroupFields) -> Result<Group, DirectoryError> {
    let stamp = ctx.now.to_rfc3339();
    let group = Group {
        id: GroupId::generate(),
        church_id: ctx.church,
        branch_id: fields.branch_id.flatten(),
        name: fields.name.unwrap_or_default(),
        description: fields.description.flatten(),
        keyword: fields.keyword.flatten(),
        welcome_message_enabled: fields.welcome_message_enabled.unwrap_or(false),
        welcome_message_text: fields.welcome_message_text.flatten(),
        member_count: 0,
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    let mut creation = Transaction::new()
        .with(Part::Group, TxOp::create(&group)?)
        .with(
            Part::Counts,
            Counters::default().add(Counter::Groups, 1).op(ctx.church),
        );
    if let Some(keyword) = &group.keyword {
        let claim = KeywordClaim::new(ctx.church, keyword, group.id);
        creation.add(Part::Keyword, TxOp::create(&claim)?);
    }
    if let Some(branch) = group.branch_id {
        creation.add(
            Part::Counts,
            super::branches::count_groups(ctx.church, branch, 1),
        );
    }
    match creation.commit(ctx.table).await {
        Ok(()) => Ok(group),
        Err(e) if e.failed(Part::Keyword) => Err(keyword_taken()),
        Err(TransactionError::Cancelled(_)) => Err(unknown_branch()),
        Err(e) => Err(e.into()),
    }
}

pub async fn get(ctx: &Ctx<'_>, id: GroupId) -> Result<Group, DirectoryError> {
    ctx.table
        .load(&keys::group(ctx.church, id))
        .await?
        .ok_or(DirectoryError::NotFound("group"))
}

pub async fn list(ctx: &Ctx<'_>) -> Result<Vec<Group>, DirectoryError> {
    let query = Query::partition(keys::church(ctx.church))
        .sort(SortCond::BeginsWith(keys::GROUP_PREFIX.into()));
    Ok(ctx.table.find_all::<Group>(query).await?)
}

pub async fn update(
    ctx: &Ctx<'_>,
    id: GroupId,
    fields: GroupFields,
) -> Result<Group, DirectoryError> {
    let before = get(ctx, id).await?;
    let mut after = before.clone();
    if let Some(name) = fields.name {
        after.name = name;
    }
    if let Some(description) = fields.description {
        after.description = description;
    }
    if let Some(enabled) = fields.welcome_message_enabled {
        after.welcome_message_enabled = enabled;
    }
    if let Some(text) = fields.welcome_message_text {
        after.welcome_message_text = text;
    }
    if let Some(branch) = fields.branch_id {
        after.branch_id = branch;
    }
    if let Some(keyword) = fields.keyword {
        after.keyword = keyword;
    }
    after.updated_at = ctx.now.to_rfc3339();
    let mut change = Transaction::new().with(
        Part::Group,
        TxOp::put(&after, Some(unchanged_since(&before.updated_at)))?,
    );
    if after.keyword != before.keyword {
        if let Some(old) = &before.keyword {
            let key = keys::keyword_claim(ctx.church, old);
            change.add(Part::Keyword, TxOp::Delete { key, cond: None });
        }
        if let Some(new) = &after.keyword {
            let claim = KeywordClaim::new(ctx.church, new, id);
            change.add(Part::Keyword, TxOp::create(&claim)?);
        }
    }
    if after.branch_id != before.branch_id {
        if let Some(old) = before.branch_id {
            change.add(
                Part::Counts,
                super::branches::count_groups(ctx.church, old, -1),
            );
        }
        if let Some(new) = after.branch_id {
            change.add(
                Part::Counts,
                super::branches::count_groups(ctx.church, new, 1),
            );
        }
    }
    match change.commit(ctx.table).await {
        Ok(()) => Ok(after),
        Err(e) if e.failed(Part::Keyword) => Err(keyword_taken()),
        Err(e) if e.failed(Part::Group) => Err(DirectoryError::Conflict {
            code: "concurrent_update",
            field: "id",
            message: "the group changed while this update was made; try again".into(),
        }),
        Err(TransactionError::Cancelled(_)) => Err(unknown_branch()),
        Err(e) => Err(e.into()),
    }
}

/// Attempts at a membership change that raced another change of the member.
pub(super) const MEMBERSHIP_ATTEMPTS: usize = 5;

/// Adds (`join = true`) or removes a member; `Ok(false)` when nothing changed.
pub async fn set_membership(
    ctx: &Ctx<'_>,
    group: GroupId,
    member: MemberId,
    join: bool,
) -> Result<bool, DirectoryError> {
    get(ctx, group).await?;
    for _ in 0..MEMBERSHIP_ATTEMPTS {
        let record: MemberRecord = get_record(ctx, member).await?;
        let already = record.group_ids.contains(&group);
        if already == join {
            return Ok(false);
        }
        let mut after = record.clone();
        if join {
            after.group_ids.push(group);
        } else {
            after.group_ids.retain(|g| *g != group);
        }
        after.updated_at = ctx.now.to_rfc3339();
        let container = keys::group_container(group);
        let row_op = if join {
            let row = Membership::new(ctx.church, &container, member, &after.updated_at);
            TxOp::put(&row, None)?
        } else {
            let key = keys::membership(ctx.church, &container, member);
            TxOp::Delete { key, cond: None }
        };
        let change = Transaction::new()
            .with(
                Part::Member,
                TxOp::put(&after, Some(unchanged_since(&record.updated_at)))?,
            )
            .with(Part::Membership, row_op)
            .with(
                Part::Group,
                count_members(ctx.church, group, if join { 1 } else { -1 }),
            );
        match change.commit(ctx.table).await {
            Ok(()) => return Ok(true),
            Err(TransactionError::Cancelled(parts)) if parts == [Part::Member] => continue,
            Err(TransactionError::Cancelled(_)) => {
                return Err(DirectoryError::NotFound("group"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(DirectoryError::Conflict {
        code: "concurrent_update",
        field: "memberId",
        message: "the member keeps changing; try again".into(),
    })
}

/// What deleting a group did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDeleted {
    pub memberships_removed: u64,
    /// More memberships than one request removes: the fan-out queue finishes.
    pub memberships_pending: bool,
}

/// Deletes a group and its keyword, then every membership; members stay. A
/// retry after a failure part-way finishes what the first left.
pub async fn delete(
    ctx: &Ctx<'_>,
    queue: &dyn crate::ports::Queue,
    id: GroupId,
) -> Result<GroupDeleted, DirectoryError> {
    let leftover = Leftover::GroupMemberships { group_id: id };
    let scope = Scope {
        table: ctx.table,
        church: ctx.church,
        now: ctx.now,
    };
    match get(ctx, id).await {
        Ok(group) => remove(ctx, &group).await?,
        Err(DirectoryError::NotFound(_)) if cleanup::remains(&scope, leftover).await? => {}
        Err(e) => return Err(e),
    }
    let (memberships_removed, memberships_pending) =
        cleanup::work(&scope, leftover, cleanup::INLINE_ROWS).await?;
    if memberships_pending {
        cleanup::hand_off(queue, ctx.church, leftover).await?;
    }
    Ok(GroupDeleted {
        memberships_removed,
        memberships_pending,
    })
}

/// The group, its keyword and its counts, in one transaction.
async fn remove(ctx: &Ctx<'_>, group: &Group) -> Result<(), DirectoryError> {
    let mut ops = vec![
        TxOp::Delete {
            key: keys::group(ctx.church, group.id),
            cond: Some(Cond::Exists),
        },
        Counters::default().add(Counter::Groups, -1).op(ctx.church),
    ];
    if let Some(keyword) = &group.keyword {
        ops.push(TxOp::Delete {
            key: keys::keyword_claim(ctx.church, keyword),
            cond: None,
        });
    }
    if let Some(branch) = group.branch_id
        && ctx
            .table
            .get(&keys::branch(ctx.church, branch))
            .await?
            .is_some()
    {
        ops.push(super::branches::count_groups(ctx.church, branch, -1));
    }
    match ctx.table.transact(ops).await {
        Ok(()) => Ok(()),
        Err(TableError::TransactionCancelled { .. }) => Err(DirectoryError::NotFound("group")),
        Err(e) => Err(e.into()),
    }
}

/// Takes every group out of a deleted branch; returns how many.
pub async fn unassign_branch(ctx: &Ctx<'_>, branch: BranchId) -> Result<u64, DirectoryError> {
    let mut count = 0;
    for group in list(ctx)
        .await?
        .into_iter()
        .filter(|g| g.branch_id == Some(branch))
    {
        let update = Update::default()
            .remove("branchId")
            .set("updatedAt", ctx.now.to_rfc3339());
        match ctx
            .table
            .update(
                &keys::group(ctx.church, group.id),
                update,
                Some(Cond::eq("branchId", branch.to_string())),
            )
            .await
        {
            Ok(_) => count += 1,
            Err(TableError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(count)
}
