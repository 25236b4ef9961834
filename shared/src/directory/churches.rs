//! Registration: a church, its first branch and its PRIMARY admin, written
//! in one transaction with the email claim, so a failure leaves nothing.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::admins::{AdminRecord, NewAdmin};
use super::branches::Branch;
use super::model::{ChurchCounters, ChurchProfile, EmailClaim};
use crate::auth::Role;
use crate::domain::{AdminId, BranchId, ChurchId};
use crate::ports::table::{Table, TableError, TxOp};
use crate::store::{Entities, Transaction, TransactionError};

pub const TRIAL: Duration = Duration::days(14);
pub const DEFAULT_TIMEZONE: &str = "America/New_York";
/// [`DEFAULT_TIMEZONE`] as a zone: what an unreadable stored zone reads as.
pub const DEFAULT_TZ: chrono_tz::Tz = chrono_tz::America::New_York;

/// What the frontend shows of a church (`church` in API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurchView {
    pub id: ChurchId,
    pub name: String,
    pub email: String,
    pub trial_ends_at: String,
    pub subscription_status: String,
}

pub struct Registration {
    pub church_name: String,
    pub admin: NewAdmin,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Table(#[from] TableError),
}

pub async fn register(
    table: &dyn Table,
    registration: Registration,
    now: DateTime<Utc>,
) -> Result<(ChurchView, AdminRecord), RegisterError> {
    let church_id = ChurchId::generate();
    let admin_id = AdminId::generate();
    let branch_id = BranchId::generate();
    let stamp = now.to_rfc3339();
    let church = ChurchView {
        id: church_id,
        name: registration.church_name,
        email: registration.admin.email.clone(),
        trial_ends_at: (now + TRIAL).to_rfc3339(),
        subscription_status: "trialing".into(),
    };
    let mut profile = ChurchProfile::new(church_id);
    profile.name = Some(church.name.clone());
    profile.email = Some(church.email.clone());
    profile.trial_ends_at = Some(church.trial_ends_at.clone());
    profile.subscription_status = Some(church.subscription_status.clone());
    profile.timezone = Some(DEFAULT_TIMEZONE.into());
    profile.plan = Some("starter".into());
    profile.created_at = Some(stamp.clone());
    profile.updated_at = Some(stamp.clone());
    let branch = Branch {
        id: branch_id,
        church_id,
        name: "Main Campus".into(),
        address: None,
        phone: None,
        description: None,
        is_active: true,
        member_count: 0,
        group_count: 0,
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    let admin = AdminRecord::new(admin_id, church_id, Role::Primary, registration.admin, now);
    let email = EmailClaim::new(&admin.view.email, church_id, admin_id);
    let registration = Transaction::new()
        .with(Part::Email, TxOp::create(&email)?)
        .with(Part::Church, TxOp::create(&profile)?)
        .with(Part::Church, TxOp::create(&branch)?)
        .with(
            Part::Church,
            TxOp::create(&ChurchCounters::initial(church_id))?,
        )
        .with(Part::Church, TxOp::create(&admin)?);
    match registration.commit(table).await {
        Ok(()) => Ok((church, admin)),
        Err(e) if e.failed(Part::Email) => Err(RegisterError::EmailTaken),
        Err(TransactionError::Cancelled(_)) => Err(RegisterError::Table(TableError::Invalid(
            "a new church's ids were already taken".into(),
        ))),
        Err(TransactionError::Table(e)) => Err(e.into()),
    }
}

/// The parts of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The login email's claim: taken means an account already exists.
    Email,
    /// The church, its first branch, counters and PRIMARY admin.
    Church,
}
pub async fn view(
    table: &dyn Table,
    church_id: ChurchId,
) -> Result<Option<ChurchView>, TableError> {
    let Some(profile) = table
        .load::<ChurchProfile>(&ChurchProfile::key_of(church_id))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ChurchView {
        id: church_id,
        name: profile.name.unwrap_or_default(),
        email: profile.email.unwrap_or_default(),
        trial_ends_at: profile.trial_ends_at.unwrap_or_default(),
        subscription_status: profile.subscription_status.unwrap_or_default(),
    }))
}
