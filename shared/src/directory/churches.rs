//! Registration: a church, its first branch and its PRIMARY admin, written
//! in one transaction with the email claim, so a failure leaves nothing.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admins::{AdminRecord, NewAdmin};
use crate::auth::Role;
use crate::domain::{AdminId, BranchId, ChurchId};
use crate::keys;
use crate::ports::table::{Cond, Item, Table, TableError, TxOp};

pub const TRIAL: Duration = Duration::days(14);
pub const DEFAULT_TIMEZONE: &str = "America/New_York";

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

fn object(value: serde_json::Value) -> Item {
    value.as_object().cloned().unwrap_or_default()
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
    let profile = keys::church_profile(church_id);
    let mut church_item = object(json!({
        "pk": profile.pk, "sk": profile.sk, "type": "church",
        "timezone": DEFAULT_TIMEZONE, "plan": "starter",
        "createdAt": stamp, "updatedAt": stamp,
    }));
    if let serde_json::Value::Object(view) = json!(church) {
        church_item.extend(view);
    }
    let branch = keys::branch(church_id, branch_id);
    let branch_item = object(json!({
        "pk": branch.pk, "sk": branch.sk, "type": "branch",
        "id": branch_id, "churchId": church_id, "name": "Main Campus",
        "address": null, "phone": null, "description": null, "isActive": true,
        "memberCount": 0, "groupCount": 0, "createdAt": stamp, "updatedAt": stamp,
    }));
    let counters = keys::church_counters(church_id);
    let counters_item = object(json!({
        "pk": counters.pk, "sk": counters.sk, "branches": 1, "members": 0, "groups": 0, "coAdmins": 0,
    }));
    let email = keys::email(&registration.admin.email);
    let email_item = object(
        json!({ "pk": email.pk, "sk": email.sk, "churchId": church_id, "adminId": admin_id }),
    );
    let admin = AdminRecord::new(admin_id, church_id, Role::Primary, registration.admin, now);
    let ops = vec![
        TxOp::Put {
            item: email_item,
            cond: Some(Cond::NotExists),
        },
        TxOp::Put {
            item: church_item,
            cond: Some(Cond::NotExists),
        },
        TxOp::Put {
            item: branch_item,
            cond: Some(Cond::NotExists),
        },
        TxOp::Put {
            item: counters_item,
            cond: Some(Cond::NotExists),
        },
        TxOp::Put {
            item: admin.to_item()?,
            cond: Some(Cond::NotExists),
        },
    ];
    match table.transact(ops).await {
        Ok(()) => Ok((church, admin)),
        Err(TableError::TransactionCancelled { failed }) if failed.contains(&0) => {
            Err(RegisterError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn view(
    table: &dyn Table,
    church_id: ChurchId,
) -> Result<Option<ChurchView>, TableError> {
    let Some(item) = table.get(&keys::church_profile(church_id)).await? else {
        return Ok(None);
    };
    serde_json::from_value(serde_json::Value::Object(item))
        .map(Some)
        .map_err(|e| TableError::backend("decode a church", e))
}
