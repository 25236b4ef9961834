//! Members: the people a church texts. Phones are sealed at rest and found
//! by their keyed hash; one member per phone per church; names are indexed
//! twice ("first last" on GSI1, "last first" on GSI2) so a prefix search
//! finds either without scanning the church.

use super::error::DirectoryError;
use super::model::{ChurchCounters, Counter, Counters, Membership, PhoneClaim};
use super::plans;
use crate::conversations::links;
use crate::crypto::Field;
use crate::crypto::Vault;
use crate::domain::{BranchId, ChurchId, GroupId, MemberId, PhoneNumber};
use crate::keys;
use crate::ports::table::window;
use crate::ports::table::{Cond, Index, Item, Key, Query, SortCond, Table, TableError, TxOp};
use crate::store::{Entities, Entity, Transaction, TransactionError, all_from, from_item};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Everything a use case needs: the caller's church (from the token), the
/// table, the vault and the time.
pub struct Ctx<'a> {
    pub church: ChurchId,
    pub table: &'a dyn Table,
    pub vault: &'a Vault,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewMember {
    pub first_name: String,
    pub last_name: String,
    pub phone: PhoneNumber,
    pub email: Option<String>,
    pub opt_in_sms: bool,
    pub branch_id: Option<BranchId>,
}

/// A member as the frontend reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub id: MemberId,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub email: Option<String>,
    pub opt_in_sms: bool,
    pub created_at: String,
    pub branch_id: Option<BranchId>,
    pub group_ids: Vec<GroupId>,
}

/// The stored member (phone sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    pub id: MemberId,
    pub church_id: ChurchId,
    pub first_name: String,
    pub last_name: String,
    pub phone_sealed: String,
    pub phone_hash: String,
    pub email: Option<String>,
    pub opt_in_sms: bool,
    /// `keyword` when the member texted STOP: only START turns SMS back on.
    pub opt_out_source: Option<String>,
    pub branch_id: Option<BranchId>,
    #[serde(default)]
    pub group_ids: Vec<GroupId>,
    pub created_at: String,
    pub updated_at: String,
}

impl Entity for MemberRecord {
    const KIND: Option<&'static str> = Some("member");
    fn key(&self) -> Key {
        keys::member(self.church_id, self.id)
    }
    /// Names sort the directory both ways: "first last" and "last first".
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        let last = keys::name_key(&self.last_name, &self.first_name);
        vec![
            (
                Index::Gsi1,
                keys::members_by_first_name(self.church_id),
                self.first_name_order(),
            ),
            (
                Index::Gsi2,
                keys::members_by_last_name(self.church_id),
                format!("{last}#{}", self.id),
            ),
        ]
    }
}

impl MemberRecord {
    /// Where the member sorts by "first last" (the first-name index's key).
    fn first_name_order(&self) -> String {
        let first = keys::name_key(&self.first_name, &self.last_name);
        format!("{first}#{}", self.id)
    }

    pub fn view(&self, vault: &Vault) -> Result<MemberView, DirectoryError> {
        Ok(MemberView {
            id: self.id,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            phone: vault.open(self.church_id, Field::MemberPhone, &self.phone_sealed)?,
            email: self.email.clone(),
            opt_in_sms: self.opt_in_sms,
            created_at: self.created_at.clone(),
            branch_id: self.branch_id,
            group_ids: self.group_ids.clone(),
        })
    }
}

async fn plan_member_limit(ctx: &Ctx<'_>) -> Result<Option<u32>, TableError> {
    Ok(plans::of_church(ctx.table, ctx.church).await?.members)
}

/// The ops that add `member` to a branch: its membership row and the count.
fn join_branch(
    church: ChurchId,
    branch: BranchId,
    member: MemberId,
    now: &str,
) -> Result<[TxOp; 2], TableError> {
    let row = Membership::new(church, &keys::branch_container(branch), member, now);
    Ok([
        TxOp::put(&row, None)?,
        super::branches::count_members(church, branch, 1),
    ])
}

fn leave_branch(church: ChurchId, branch: BranchId, member: MemberId) -> [TxOp; 2] {
    [
        TxOp::Delete {
            key: keys::membership(church, &keys::branch_container(branch), member),
            cond: None,
        },
        super::branches::count_members(church, branch, -1),
    ]
}

/// The member leaves `branch`, deleted, unless it moved meanwhile.
pub(crate) fn leave_deleted_branch(church: ChurchId, member: MemberId, branch: BranchId) -> TxOp {
    TxOp::Update {
        key: keys::member(church, member),
        update: crate::ports::table::Update::default().remove("branchId"),
        cond: Some(Cond::eq("branchId", branch.to_string())),
    }
}

/// The member texted STOP (`opt_in` false) or START: only START undoes a STOP.
pub(crate) fn keyword_consent(church: ChurchId, member: MemberId, opt_in: bool, now: &str) -> TxOp {
    let update = crate::ports::table::Update::default();
    let update = if opt_in {
        update.set("optInSms", true).remove("optOutSource")
    } else {
        update.set("optInSms", false).set("optOutSource", "keyword")
    };
    TxOp::Update {
        key: keys::member(church, member),
        update: update.set("updatedAt", now),
        cond: Some(Cond::Exists),
    }
}

/// The carrier reported the member's STOP (Telnyx 40300).
pub(crate) fn carrier_opt_out() -> crate::ports::table::Update {
    crate::ports::table::Update::default()
        .set("optInSms", false)
        .set("optOutSource", "carrier")
}

/// The parts of a member's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The new phone's claim: another member has it.
    Phone,
    /// The member, new or unchanged since it was read.
    Member,
    /// The church's member count, under the plan's limit.
    PlanLimit,
    /// Branch memberships and counts (the branch must exist).
    Branch,
    /// The phone's conversation, linked or unlinked.
    Conversation,
}

/// Creates a member, in the church's first branch unless `branch_id` names
/// one. A phone that already texted the church (an unknown texter in the
/// inbox) has its conversation linked to the new member in the same write,
/// and an opt-out it texted still holds.
pub async fn create(ctx: &Ctx<'_>, new: NewMember) -> Result<MemberView, DirectoryError> {
    if new.branch_id.is_some() {
        return create_in(ctx, new).await;
    }
    // The first branch may be deleted between its read and the write: then
    // the next one is the first.
    for _ in 0..2 {
        let branch_id = super::branches::first(ctx.table, ctx.church).await?;
        match create_in(
            ctx,
            NewMember {
                branch_id,
                ..new.clone()
            },
        )
        .await
        {
            Err(DirectoryError::NotAllowed { code, .. }) if code == UNKNOWN_BRANCH => continue,
            created => return created,
        }
    }
    Err(unknown_branch())
}

async fn create_in(ctx: &Ctx<'_>, new: NewMember) -> Result<MemberView, DirectoryError> {
    let id = MemberId::generate();
    let stamp = ctx.now.to_rfc3339();
    let phone_hash = ctx.vault.phone_hash(&new.phone);
    let conversation = links::find(ctx.table, ctx.church, &phone_hash).await?;
    let texted_stop = conversation.as_ref().is_some_and(|c| c.texted_stop);
    let opt_in_sms = new.opt_in_sms && !texted_stop;
    let opt_out_source = match (opt_in_sms, texted_stop) {
        (true, _) => None,
        (false, true) => Some("keyword".to_owned()),
        (false, false) => Some("admin".to_owned()),
    };
    let record = MemberRecord {
        id,
        church_id: ctx.church,
        first_name: new.first_name,
        last_name: new.last_name,
        phone_sealed: ctx
            .vault
            .seal(ctx.church, Field::MemberPhone, new.phone.as_e164()),
        phone_hash,
        email: new.email,
        opt_in_sms,
        opt_out_source,
        branch_id: new.branch_id,
        group_ids: Vec::new(),
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
    };
    let claim = PhoneClaim::new(ctx.church, &record.phone_hash, id);
    let mut counted = Counters::default().add(Counter::Members, 1);
    if let Some(limit) = plan_member_limit(ctx).await? {
        counted = counted.below(Counter::Members, i64::from(limit));
    }
    let mut creation = Transaction::new()
        .with(Part::Phone, TxOp::create(&claim)?)
        .with(Part::Member, TxOp::create(&record)?)
        .with(Part::PlanLimit, counted.op(ctx.church));
    if let Some(branch) = new.branch_id {
        creation.add_all(Part::Branch, join_branch(ctx.church, branch, id, &stamp)?);
    }
    if let Some(conversation) = &conversation {
        creation.add(Part::Conversation, conversation.link(id, &stamp));
    }
    match creation.commit(ctx.table).await {
        Ok(()) => record.view(ctx.vault),
        Err(e) if e.failed(Part::Phone) => Err(duplicate_phone()),
        Err(e) if e.failed(Part::PlanLimit) => Err(DirectoryError::PlanLimit { limit: "members" }),
        Err(TransactionError::Cancelled(_)) => Err(unknown_branch()),
        Err(e) => Err(e.into()),
    }
}

const UNKNOWN_BRANCH: &str = "unknown_branch";

fn unknown_branch() -> DirectoryError {
    DirectoryError::NotAllowed {
        code: UNKNOWN_BRANCH,
        field: "branchId",
        message: "branchId names no branch of this church".into(),
    }
}

fn duplicate_phone() -> DirectoryError {
    DirectoryError::Conflict {
        code: "duplicate_phone",
        field: "phone",
        message: "a member with this phone number already exists".into(),
    }
}

pub async fn get_record(ctx: &Ctx<'_>, id: MemberId) -> Result<MemberRecord, DirectoryError> {
    ctx.table
        .load(&keys::member(ctx.church, id))
        .await?
        .ok_or(DirectoryError::NotFound("member"))
}

/// Changes to a member; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<PhoneNumber>,
    /// `Some(None)` clears the email.
    pub email: Option<Option<String>>,
    pub opt_in_sms: Option<bool>,
    /// `Some(None)` takes the member out of their branch.
    pub branch_id: Option<Option<BranchId>>,
}

pub async fn update(
    ctx: &Ctx<'_>,
    id: MemberId,
    patch: MemberPatch,
) -> Result<MemberView, DirectoryError> {
    let before = get_record(ctx, id).await?;
    let mut after = before.clone();
    let stamp = ctx.now.to_rfc3339();
    if let Some(first) = patch.first_name {
        after.first_name = first;
    }
    if let Some(last) = patch.last_name {
        after.last_name = last;
    }
    if let Some(email) = patch.email {
        after.email = email;
    }
    match patch.opt_in_sms {
        Some(true) if !before.opt_in_sms && before.opt_out_source.as_deref() == Some("keyword") => {
            return Err(DirectoryError::NotAllowed {
                code: "opted_out",
                field: "optInSms",
                message: "this member texted STOP; only they can opt back in by texting START"
                    .into(),
            });
        }
        Some(true) => {
            after.opt_in_sms = true;
            after.opt_out_source = None;
        }
        Some(false) if before.opt_in_sms => {
            after.opt_in_sms = false;
            after.opt_out_source = Some("admin".into());
        }
        _ => {}
    }
    let mut change = Transaction::new();
    if let Some(phone) = patch.phone {
        let hash = ctx.vault.phone_hash(&phone);
        if hash != before.phone_hash {
            let claim = PhoneClaim::new(ctx.church, &hash, id);
            change.add(Part::Phone, TxOp::create(&claim)?);
            let old = keys::phone_claim(ctx.church, &before.phone_hash);
            change.add(
                Part::Member,
                TxOp::Delete {
                    key: old,
                    cond: None,
                },
            );
            // The old phone's conversation is no longer this member's; the
            // new phone's is, and a STOP it texted holds.
            if let Some(old) = links::find(ctx.table, ctx.church, &before.phone_hash).await? {
                change.add(Part::Conversation, old.unlink(&stamp));
            }
            if let Some(new) = links::find(ctx.table, ctx.church, &hash).await? {
                change.add(Part::Conversation, new.link(id, &stamp));
                if new.texted_stop {
                    after.opt_in_sms = false;
                    after.opt_out_source = Some("keyword".into());
                }
            }
            after.phone_hash = hash;
            after.phone_sealed = ctx
                .vault
                .seal(ctx.church, Field::MemberPhone, phone.as_e164());
        }
    }
    if let Some(branch) = patch.branch_id
        && branch != before.branch_id
    {
        if let Some(old) = before.branch_id {
            change.add_all(Part::Branch, leave_branch(ctx.church, old, id));
        }
        if let Some(new) = branch {
            change.add_all(Part::Branch, join_branch(ctx.church, new, id, &stamp)?);
        }
        after.branch_id = branch;
    }
    after.updated_at = stamp;
    // The member is rewritten only if nobody changed it since we read it.
    let unchanged = super::groups::unchanged_since(&before.updated_at);
    change.add(Part::Member, TxOp::put(&after, Some(unchanged))?);
    match change.commit(ctx.table).await {
        Ok(()) => after.view(ctx.vault),
        Err(e) if e.failed(Part::Phone) => Err(duplicate_phone()),
        Err(e) if e.failed(Part::Member) => Err(DirectoryError::Conflict {
            code: "concurrent_update",
            field: "id",
            message: "the member changed while this update was made; try again".into(),
        }),
        Err(TransactionError::Cancelled(_)) => Err(unknown_branch()),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(ctx: &Ctx<'_>, id: MemberId) -> Result<(), DirectoryError> {
    let record = get_record(ctx, id).await?;
    let mut ops = vec![
        TxOp::Delete {
            key: keys::member(ctx.church, id),
            cond: Some(Cond::Exists),
        },
        TxOp::Delete {
            key: keys::phone_claim(ctx.church, &record.phone_hash),
            cond: None,
        },
        Counters::default().add(Counter::Members, -1).op(ctx.church),
    ];
    if let Some(branch) = record.branch_id {
        ops.extend(leave_branch(ctx.church, branch, id));
    }
    if let Some(conversation) = links::find(ctx.table, ctx.church, &record.phone_hash).await? {
        ops.push(conversation.unlink(&ctx.now.to_rfc3339()));
    }
    for group in &record.group_ids {
        ops.push(TxOp::Delete {
            key: keys::membership(ctx.church, &keys::group_container(*group), id),
            cond: None,
        });
        ops.push(super::groups::count_members(ctx.church, *group, -1));
    }
    match ctx.table.transact(ops).await {
        Ok(()) => Ok(()),
        Err(TableError::TransactionCancelled { .. }) => Err(DirectoryError::NotFound("member")),
        Err(e) => Err(e.into()),
    }
}

/// One page of members in name order, and the table cursor after it.
pub struct MemberPage {
    pub members: Vec<MemberView>,
    pub cursor: Option<String>,
    pub total: u64,
}

fn views(ctx: &Ctx<'_>, records: &[MemberRecord]) -> Result<Vec<MemberView>, DirectoryError> {
    records.iter().map(|r| r.view(ctx.vault)).collect()
}

/// The church's members by name: page `skip`/`take`, or from a table cursor.
pub async fn list(
    ctx: &Ctx<'_>,
    skip: usize,
    take: usize,
    cursor: Option<String>,
) -> Result<MemberPage, DirectoryError> {
    let query = Query::partition(keys::members_by_first_name(ctx.church))
        .index(Index::Gsi1)
        .after(cursor.clone().map(crate::ports::table::Cursor));
    let skip = if cursor.is_some() { 0 } else { skip };
    let (items, next) = window(ctx.table, query, skip, take).await?;
    let counters: Option<ChurchCounters> =
        ctx.table.load(&ChurchCounters::key_of(ctx.church)).await?;
    let total = counters.map_or(0, |c| c.get(Counter::Members)).max(0) as u64;
    Ok(MemberPage {
        members: views(ctx, &all_from::<MemberRecord>(items)?)?,
        cursor: next,
        total,
    })
}

/// Members whose first or last name starts with `prefix` (case-insensitive).
pub async fn search(
    ctx: &Ctx<'_>,
    prefix: &str,
    take: usize,
) -> Result<MemberPage, DirectoryError> {
    let prefix = keys::name_key(prefix, "");
    let by = |partition: String, index: Index| {
        Query::partition(partition)
            .index(index)
            .sort(SortCond::BeginsWith(prefix.clone()))
    };
    let (first, last) = tokio::try_join!(
        window(
            ctx.table,
            by(keys::members_by_first_name(ctx.church), Index::Gsi1),
            0,
            take
        ),
        window(
            ctx.table,
            by(keys::members_by_last_name(ctx.church), Index::Gsi2),
            0,
            take
        ),
    )?;
    let mut found: Vec<MemberRecord> = all_from(first.0)?;
    for record in all_from::<MemberRecord>(last.0)? {
        if !found.iter().any(|r| r.id == record.id) {
            found.push(record);
        }
    }
    // "first last" order, as the first-name index sorts.
    found.sort_by_cached_key(MemberRecord::first_name_order);
    found.truncate(take);
    let members = views(ctx, &found)?;
    let total = members.len() as u64;
    Ok(MemberPage {
        members,
        cursor: None,
        total,
    })
}

/// The members that membership rows (`IN#…`) name; rows whose member is
/// gone are skipped.
pub async fn members_of_rows(
    table: &dyn Table,
    church: ChurchId,
    rows: &[Item],
) -> Result<Vec<Item>, TableError> {
    let member_keys: Vec<Key> = rows
        .iter()
        .cloned()
        .map(from_item::<Membership>)
        .map(|row| row.map(|r| keys::member(church, r.member_id)))
        .collect::<Result<_, _>>()?;
    Ok(table
        .get_many(&member_keys)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// A branch or a group: what holds memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Branch(BranchId),
    Group(GroupId),
}

impl Container {
    fn prefix(self) -> String {
        keys::memberships_prefix(&match self {
            Container::Branch(b) => keys::branch_container(b),
            Container::Group(g) => keys::group_container(g),
        })
    }

    /// How many members it holds (its own counter); 0 if it is gone.
    async fn member_count(self, ctx: &Ctx<'_>) -> Result<u64, TableError> {
        let count = match self {
            Container::Branch(b) => ctx
                .table
                .load::<super::branches::Branch>(&keys::branch(ctx.church, b))
                .await?
                .map(|b| b.member_count),
            Container::Group(g) => ctx
                .table
                .load::<super::groups::Group>(&keys::group(ctx.church, g))
                .await?
                .map(|g| g.member_count),
        };
        Ok(count.unwrap_or(0).max(0) as u64)
    }
}

/// Members of a branch or group, in the order they joined.
pub async fn list_in(
    ctx: &Ctx<'_>,
    container: Container,
    skip: usize,
    take: usize,
    cursor: Option<String>,
) -> Result<MemberPage, DirectoryError> {
    let total = container.member_count(ctx).await?;
    let query = Query::partition(keys::church(ctx.church))
        .sort(SortCond::BeginsWith(container.prefix()))
        .after(cursor.clone().map(crate::ports::table::Cursor));
    let skip = if cursor.is_some() { 0 } else { skip };
    let (rows, next) = window(ctx.table, query, skip, take).await?;
    let items = members_of_rows(ctx.table, ctx.church, &rows).await?;
    Ok(MemberPage {
        members: views(ctx, &all_from::<MemberRecord>(items)?)?,
        cursor: next,
        total,
    })
}
