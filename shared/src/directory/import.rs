//! CSV import of members: up to 10,000 rows, the header spellings people
//! use, a reason for every row that fails, the good rows kept, and a
//! repeated import creating nothing (a phone already in the church is
//! skipped, not duplicated).
//!
//! Rows are written up to 32 per transaction (member, phone claim and
//! membership of the church's first branch each, plus the branch's member
//! count and the church's counter with the plan limit), so an import costs
//! ~320 write requests for 10,000 rows rather than 10,000; a chunk that
//! loses a race (a phone claimed meanwhile, the limit reached, the branch
//! deleted) is retried row by row.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};

use super::error::DirectoryError;
use super::members::{self, Ctx, MemberRecord, NewMember};
use super::model::{Counter, Counters, Membership, PhoneClaim};
use super::plans;
use crate::crypto::Field;
use crate::domain::{BranchId, MemberId, PhoneNumber};
use crate::keys;
use crate::ports::table::{Key, TableError, TxOp};

pub const MAX_ROWS: usize = 10_000;
/// 3 writes a row + 2 counters, within DynamoDB's 100 a transaction.
const ROWS_PER_TRANSACTION: usize = 32;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowFailure {
    /// The row as read, so the admin can find and fix it.
    pub member: Value,
    pub error: String,
    /// 1-based line of the file (the header is line 1).
    pub line: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub imported: usize,
    pub failed: usize,
    pub failed_details: Vec<RowFailure>,
    /// Rows whose phone is already a member of the church.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not a CSV with a header row: {0}")]
    Unreadable(String),
    #[error("the header needs columns for {0}")]
    MissingColumns(String),
    #[error("the file has {0} rows; the limit is 10,000")]
    TooManyRows(usize),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl From<TableError> for ImportError {
    fn from(e: TableError) -> Self {
        ImportError::Directory(e.into())
    }
}

fn normalise(header: &str) -> String {
    header
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Which column holds what; accepts firstName / first name / first_name and the like.
fn columns(headers: &csv::StringRecord) -> Result<[Option<usize>; 4], ImportError> {
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&normalise(h).as_str()))
    };
    let cols = [
        find(&["firstname", "first", "givenname"]),
        find(&["lastname", "last", "surname", "familyname"]),
        find(&[
            "phone",
            "phonenumber",
            "mobile",
            "cell",
            "cellphone",
            "mobilephone",
        ]),
        find(&["email", "emailaddress"]),
    ];
    let missing: Vec<&str> = ["firstName", "lastName", "phone"]
        .iter()
        .zip(&cols)
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns(missing.join(", ")));
    }
    Ok(cols)
}

struct Row {
    line: usize,
    raw: Value,
    member: NewMember,
    phone_hash: String,
}

fn parse_row(
    ctx: &Ctx<'_>,
    cols: &[Option<usize>; 4],
    record: &csv::StringRecord,
    line: usize,
) -> Result<Row, RowFailure> {
    let cell = |i: Option<usize>| {
        i.and_then(|i| record.get(i))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let (first, last, phone, email) = (cell(cols[0]), cell(cols[1]), cell(cols[2]), cell(cols[3]));
    let raw = json!({"firstName": first, "lastName": last, "phone": phone, "email": email});
    let fail = |error: String| RowFailure {
        member: raw.clone(),
        error,
        line,
    };
    if first.is_empty() || first.chars().count() > 100 {
        return Err(fail("firstName must be 1 to 100 characters".into()));
    }
    if last.is_empty() || last.chars().count() > 100 {
        return Err(fail("lastName must be 1 to 100 characters".into()));
    }
    let phone = PhoneNumber::parse(&phone).map_err(|e| fail(e.to_string()))?;
    let email = if email.is_empty() {
        None
    } else {
        let mut check = crate::http::request::Fields::default();
        Some(
            check
                .email("email", Some(&email))
                .ok_or_else(|| fail("email is not a valid email address".into()))?,
        )
    };
    let phone_hash = ctx.vault.phone_hash(&phone);
    Ok(Row {
        line,
        raw: raw.clone(),
        member: NewMember {
            first_name: first,
            last_name: last,
            phone,
            email,
            opt_in_sms: true,
            branch_id: None,
        },
        phone_hash,
    })
}

fn record_for(ctx: &Ctx<'_>, row: &Row, branch_id: Option<BranchId>) -> MemberRecord {
    let stamp = ctx.now.to_rfc3339();
    MemberRecord {
        id: MemberId::generate(),
        church_id: ctx.church,
        first_name: row.member.first_name.clone(),
        last_name: row.member.last_name.clone(),
        phone_sealed: ctx
            .vault
            .seal(ctx.church, Field::MemberPhone, row.member.phone.as_e164()),
        phone_hash: row.phone_hash.clone(),
        email: row.member.email.clone(),
        opt_in_sms: true,
        opt_out_source: None,
        branch_id,
        group_ids: Vec::new(),
        created_at: stamp.clone(),
        updated_at: stamp,
    }
}

pub async fn import(ctx: &Ctx<'_>, csv_bytes: &[u8]) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_bytes);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Unreadable(e.to_string()))?
        .clone();
    let cols = columns(&headers)?;
    let records: Vec<(usize, csv::StringRecord)> = reader
        .records()
        .enumerate()
        .filter_map(|(i, r)| r.ok().map(|r| (i + 2, r)))
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .collect();
    if records.len() > MAX_ROWS {
        return Err(ImportError::TooManyRows(records.len()));
    }

    let mut report = ImportReport::default();
    let mut rows = Vec::new();
    let mut in_file = HashSet::new();
    for (line, record) in &records {
        match parse_row(ctx, &cols, record, *line) {
            Ok(row) if !in_file.insert(row.phone_hash.clone()) => report.skipped += 1,
            Ok(row) => rows.push(row),
            Err(failure) => report.failed_details.push(failure),
        }
    }
    // Phones already in the church: skipped, so a repeated import creates nothing.
    let claims: Vec<Key> = rows
        .iter()
        .map(|r| keys::phone_claim(ctx.church, &r.phone_hash))
        .collect();
    let mut existing = Vec::with_capacity(claims.len());
    for chunk in claims.chunks(100) {
        existing.extend(ctx.table.get_many(chunk).await?);
    }
    let before = rows.len();
    let mut fresh = Vec::with_capacity(rows.len());
    for (row, claim) in rows.into_iter().zip(existing) {
        if claim.is_none() {
            fresh.push(row);
        }
    }
    report.skipped += before - fresh.len();
    // Phones that already texted the church go one at a time through
    // `members::create`, which links their conversation and keeps an opt-out.
    let conversations: Vec<Key> = fresh
        .iter()
        .map(|r| keys::phone_conversation(ctx.church, &r.phone_hash))
        .collect();
    let mut texted = Vec::with_capacity(conversations.len());
    for chunk in conversations.chunks(100) {
        texted.extend(ctx.table.get_many(chunk).await?);
    }
    let (alone, fresh): (Vec<_>, Vec<_>) = fresh
        .into_iter()
        .zip(texted)
        .partition(|(_, conversation)| conversation.is_some());
    let fresh: Vec<Row> = fresh.into_iter().map(|(row, _)| row).collect();
    for (row, _) in &alone {
        settle_alone(ctx, row, &mut report).await?;
    }

    let limit = plans::of_church(ctx.table, ctx.church).await?.members;
    let branch = super::branches::first(ctx.table, ctx.church).await?;
    let stamp = ctx.now.to_rfc3339();
    for chunk in fresh.chunks(ROWS_PER_TRANSACTION) {
        let records: Vec<MemberRecord> = chunk.iter().map(|r| record_for(ctx, r, branch)).collect();
        let mut ops = Vec::with_capacity(chunk.len() * 3 + 2);
        for record in &records {
            let claim = PhoneClaim::new(ctx.church, &record.phone_hash, record.id);
            ops.push(TxOp::create(&claim)?);
            ops.push(TxOp::create(record)?);
            if let Some(branch) = branch {
                let container = keys::branch_container(branch);
                let row = Membership::new(ctx.church, &container, record.id, &stamp);
                ops.push(TxOp::put(&row, None)?);
            }
        }
        if let Some(branch) = branch {
            let joined = chunk.len() as i64;
            ops.push(super::branches::count_members(ctx.church, branch, joined));
        }
        let mut counted = Counters::default().add(Counter::Members, chunk.len() as i64);
        if let Some(limit) = limit {
            counted = counted.at_most(Counter::Members, i64::from(limit) - chunk.len() as i64);
        }
        ops.push(counted.op(ctx.church));
        match ctx.table.transact(ops).await {
            Ok(()) => report.imported += chunk.len(),
            Err(TableError::TransactionCancelled { .. }) => {
                // A phone claimed meanwhile, the plan limit or the branch
                // deleted: settle each row alone.
                for row in chunk {
                    settle_alone(ctx, row, &mut report).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    report.failed_details.sort_by_key(|f| f.line);
    report.failed = report.failed_details.len();
    Ok(report)
}

/// Creates one row's member by itself, counting the outcome in `report`.
async fn settle_alone(
    ctx: &Ctx<'_>,
    row: &Row,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    match members::create(ctx, row.member.clone()).await {
        Ok(_) => report.imported += 1,
        Err(DirectoryError::Conflict { .. }) => report.skipped += 1,
        Err(DirectoryError::PlanLimit { .. }) => report.failed_details.push(RowFailure {
            member: row.raw.clone(),
            error: "the plan's member limit is reached".into(),
            line: row.line,
        }),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
