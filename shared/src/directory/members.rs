//! Members: the people a church texts. Phones are sealed at rest and found
//! by their keyed hash; one member per phone per church; names are indexed
//! twice ("first last" on GSI1, "last first" on GSI2) so a prefix search
//! finds either without scanning the church.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::DirectoryError;
use super::plans;
use crate::conversations::links;
use crate::crypto::Vault;
use crate::domain::{BranchId, ChurchId, GroupId, MemberId, PhoneNumber};
use crate::keys;
use crate::ports::table::window;
use crate::ports::table::{
    Cond, Index, Item, Key, Query, SortCond, Table, TableError, TxOp, Update,
};

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

impl MemberRecord {
    pub fn to_item(&self) -> Result<Item, TableError> {
        let mut item =
            super::record::to_item(self, keys::member(self.church_id, self.id), "member")?;
        let first = keys::name_key(&self.first_name, &self.last_name);
        let last = keys::name_key(&self.last_name, &self.first_name);
        for (attr, value) in [
            ("gsi1pk", keys::members_by_first_name(self.church_id)),
            ("gsi1sk", format!("{first}#{}", self.id)),
            ("gsi2pk", keys::members_by_last_name(self.church_id)),
            ("gsi2sk", format!("{last}#{}", self.id)),
        ] {
            item.insert(attr.into(), Value::from(value));
        }
        Ok(item)
    }

    pub fn from_item(item: Item) -> Result<Self, TableError> {
        super::record::from_item(item, "member")
    }

    pub fn view(&self, vault: &Vault) -> Result<MemberView, DirectoryError> {
        Ok(MemberView {
            id: self.id,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            phone: vault.open(&self.phone_sealed)?,
            email: self.email.clone(),
            opt_in_sms: self.opt_in_sms,
            created_at: self.created_at.clone(),
            branch_id: self.branch_id,
            group_ids: self.group_ids.clone(),
        })
    }
}

fn object(value: Value) -> Item {
    value.as_object().cloned().unwrap_or_default()
}

async fn plan_member_limit(ctx: &Ctx<'_>) -> Result<Option<u32>, TableError> {
    Ok(plans::of_church(ctx.table, ctx.church).await?.members)
}

/// The ops that add `member` to a branch: its membership row and the count.
fn join_branch(church: ChurchId, branch: BranchId, member: MemberId, now: &str) -> [TxOp; 2] {
    let membership = keys::membership(church, &keys::branch_container(branch), member);
    [
        TxOp::Put {
            item: object(
                json!({"pk": membership.pk, "sk": membership.sk, "memberId": member, "since": now}),
            ),
            cond: None,
        },
        TxOp::Update {
            key: keys::branch(church, branch),
            update: Update::default().add("memberCount", 1),
            cond: Some(Cond::Exists),
        },
    ]
}

fn leave_branch(church: ChurchId, branch: BranchId, member: MemberId) -> [TxOp; 2] {
    [
        TxOp::Delete {
            key: keys::membership(church, &keys::branch_container(branch), member),
            cond: None,
        },
        TxOp::Update {
            key: keys::branch(church, branch),
            update: Update::default().add("memberCount", -1),
            cond: Some(Cond::Exists),
        },
    ]
}

/// Creates a member. A phone that already texted the church (an unknown
/// texter in the inbox) has its conversation linked to the new member in
/// the same write, and an opt-out it texted still holds.
pub async fn create(ctx: &Ctx<'_>, new: NewMember) -> Result<MemberView, DirectoryError> {
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
        phone_sealed: ctx.vault.seal(new.phone.as_e164()),
        phone_hash,
        email: new.email,
        opt_in_sms,
        opt_out_source,
        branch_id: new.branch_id,
        group_ids: Vec::new(),
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
    };
    let claim = keys::phone_claim(ctx.church, &record.phone_hash);
    let under_limit = plan_member_limit(ctx)
        .await?
        .map(|limit| Cond::Lt("members".into(), json!(limit)));
    let mut ops = vec![
        TxOp::Put {
            item: object(json!({"pk": claim.pk, "sk": claim.sk, "memberId": id})),
            cond: Some(Cond::NotExists),
        },
        TxOp::Put {
            item: record.to_item()?,
            cond: Some(Cond::NotExists),
        },
        TxOp::Update {
            key: keys::church_counters(ctx.church),
            update: Update::default().add("members", 1),
            cond: under_limit,
        },
    ];
    if let Some(branch) = new.branch_id {
        ops.extend(join_branch(ctx.church, branch, id, &stamp));
    }
    if let Some(conversation) = &conversation {
        ops.push(conversation.link(id, &stamp));
    }
    match ctx.table.transact(ops).await {
        Ok(()) => record.view(ctx.vault),
        Err(TableError::TransactionCancelled { failed }) => Err(match failed.first() {
            Some(0) => duplicate_phone(),
            Some(2) => DirectoryError::PlanLimit { limit: "members" },
            _ => DirectoryError::NotAllowed {
                code: "unknown_branch",
                field: "branchId",
                message: "branchId names no branch of this church".into(),
            },
        }),
        Err(e) => Err(e.into()),
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
    let item = ctx
        .table
        .get(&keys::member(ctx.church, id))
        .await?
        .ok_or(DirectoryError::NotFound("member"))?;
    Ok(MemberRecord::from_item(item)?)
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
    let mut ops = Vec::new();
    if let Some(phone) = patch.phone {
        let hash = ctx.vault.phone_hash(&phone);
        if hash != before.phone_hash {
            let claim = keys::phone_claim(ctx.church, &hash);
            ops.push(TxOp::Put {
                item: object(json!({"pk": claim.pk, "sk": claim.sk, "memberId": id})),
                cond: Some(Cond::NotExists),
            });
            ops.push(TxOp::Delete {
                key: keys::phone_claim(ctx.church, &before.phone_hash),
                cond: None,
            });
            // The old phone's conversation is no longer this member's; the
            // new phone's is, and a STOP it texted holds.
            if let Some(old) = links::find(ctx.table, ctx.church, &before.phone_hash).await? {
                ops.push(old.unlink(&stamp));
            }
            if let Some(new) = links::find(ctx.table, ctx.church, &hash).await? {
                ops.push(new.link(id, &stamp));
                if new.texted_stop {
                    after.opt_in_sms = false;
                    after.opt_out_source = Some("keyword".into());
                }
            }
            after.phone_hash = hash;
            after.phone_sealed = ctx.vault.seal(phone.as_e164());
        }
    }
    if let Some(branch) = patch.branch_id
        && branch != before.branch_id
    {
        if let Some(old) = before.branch_id {
            ops.extend(leave_branch(ctx.church, old, id));
        }
        if let Some(new) = branch {
            ops.extend(join_branch(ctx.church, new, id, &stamp));
        }
        after.branch_id = branch;
    }
    after.updated_at = stamp;
    // The member is rewritten only if nobody changed it since we read it.
    ops.push(TxOp::Put {
        item: after.to_item()?,
        cond: Some(Cond::eq("updatedAt", before.updated_at.clone())),
    });
    let member_op = ops.len() - 1;
    match ctx.table.transact(ops).await {
        Ok(()) => after.view(ctx.vault),
        Err(TableError::TransactionCancelled { failed }) => Err(match failed.first() {
            Some(0) if after.phone_hash != before.phone_hash => duplicate_phone(),
            Some(&i) if i == member_op => DirectoryError::Conflict {
                code: "concurrent_update",
                field: "id",
                message: "the member changed while this update was made; try again".into(),
            },
            _ => DirectoryError::NotAllowed {
                code: "unknown_branch",
                field: "branchId",
                message: "branchId names no branch of this church".into(),
            },
        }),
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
        TxOp::Update {
            key: keys::church_counters(ctx.church),
            update: Update::default().add("members", -1),
            cond: None,
        },
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
        ops.push(TxOp::Update {
            key: keys::group(ctx.church, *group),
            update: Update::default().add("memberCount", -1),
            cond: Some(Cond::Exists),
        });
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

async fn counter(ctx: &Ctx<'_>, key: &Key, attr: &str) -> Result<u64, TableError> {
    Ok(ctx
        .table
        .get(key)
        .await?
        .and_then(|i| i.get(attr).and_then(Value::as_u64))
        .unwrap_or(0))
}

fn views(ctx: &Ctx<'_>, items: Vec<Item>) -> Result<Vec<MemberView>, DirectoryError> {
    items
        .into_iter()
        .map(|i| {
            MemberRecord::from_item(i)
                .map_err(DirectoryError::from)?
                .view(ctx.vault)
        })
        .collect()
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
    let total = counter(ctx, &keys::church_counters(ctx.church), "members").await?;
    Ok(MemberPage {
        members: views(ctx, items)?,
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
    let mut items: Vec<Item> = first.0;
    for item in last.0 {
        if !items.iter().any(|i| i.get("id") == item.get("id")) {
            items.push(item);
        }
    }
    items.sort_by(|a, b| {
        a.get("gsi1sk")
            .and_then(Value::as_str)
            .cmp(&b.get("gsi1sk").and_then(Value::as_str))
    });
    items.truncate(take);
    let members = views(ctx, items)?;
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
        .filter_map(|r| {
            r.get("memberId")
                .and_then(Value::as_str)
                .and_then(|id| MemberId::parse(id).ok())
        })
        .map(|id| keys::member(church, id))
        .collect();
    Ok(table
        .get_many(&member_keys)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Members of a branch or group, in the order they joined.
pub async fn list_in(
    ctx: &Ctx<'_>,
    container: &str,
    count_key: Key,
    skip: usize,
    take: usize,
    cursor: Option<String>,
) -> Result<MemberPage, DirectoryError> {
    let query = Query::partition(keys::church(ctx.church))
        .sort(SortCond::BeginsWith(keys::memberships_prefix(container)))
        .after(cursor.clone().map(crate::ports::table::Cursor));
    let skip = if cursor.is_some() { 0 } else { skip };
    let (rows, next) = window(ctx.table, query, skip, take).await?;
    let items = members_of_rows(ctx.table, ctx.church, &rows).await?;
    let total = counter(ctx, &count_key, "memberCount").await?;
    Ok(MemberPage {
        members: views(ctx, items)?,
        cursor: next,
        total,
    })
}
