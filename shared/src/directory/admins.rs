//! Admins: the stored record (with its password hash) and the view the
//! frontend reads (`admin` in API.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::domain::{AdminId, ChurchId};
use crate::keys;
use crate::ports::table::{Item, Table, TableError, Update};

pub struct NewAdmin {
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminView {
    pub id: AdminId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub welcome_completed: bool,
    pub user_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminRecord {
    #[serde(flatten)]
    pub view: AdminView,
    pub church_id: ChurchId,
    pub password_hash: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

impl AdminRecord {
    pub fn new(
        id: AdminId,
        church_id: ChurchId,
        role: Role,
        admin: NewAdmin,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            view: AdminView {
                id,
                email: admin.email,
                first_name: admin.first_name,
                last_name: admin.last_name,
                role,
                welcome_completed: false,
                user_role: None,
            },
            church_id,
            password_hash: admin.password_hash,
            created_at: now.to_rfc3339(),
            last_login_at: None,
        }
    }

    pub fn to_item(&self) -> Result<Item, TableError> {
        let key = keys::admin(self.church_id, self.view.id);
        let mut item = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return Err(TableError::Invalid(
                    "admin does not serialise to an object".into(),
                ));
            }
        };
        item.insert("pk".into(), key.pk.into());
        item.insert("sk".into(), key.sk.into());
        item.insert("type".into(), "admin".into());
        Ok(item)
    }

    fn from_item(item: Item) -> Result<Self, TableError> {
        serde_json::from_value(serde_json::Value::Object(item))
            .map_err(|e| TableError::backend("decode an admin", e))
    }
}

pub async fn get(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
) -> Result<Option<AdminRecord>, TableError> {
    table
        .get(&keys::admin(church_id, admin_id))
        .await?
        .map(AdminRecord::from_item)
        .transpose()
}

/// The admin who logs in with `email`, in whichever church.
pub async fn find_by_email(
    table: &dyn Table,
    email: &str,
) -> Result<Option<AdminRecord>, TableError> {
    let Some(claim) = table.get(&keys::email(email)).await? else {
        return Ok(None);
    };
    let ids = (
        claim
            .get("churchId")
            .and_then(|v| v.as_str())
            .and_then(|s| ChurchId::parse(s).ok()),
        claim
            .get("adminId")
            .and_then(|v| v.as_str())
            .and_then(|s| AdminId::parse(s).ok()),
    );
    match ids {
        (Some(church_id), Some(admin_id)) => get(table, church_id, admin_id).await,
        _ => Err(TableError::backend(
            "read an email claim",
            "email claim without ids",
        )),
    }
}

pub async fn touch_login(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
    now: DateTime<Utc>,
) -> Result<(), TableError> {
    let update = Update::default().set("lastLoginAt", now.to_rfc3339());
    table
        .update(
            &keys::admin(church_id, admin_id),
            update,
            Some(crate::ports::table::Cond::Exists),
        )
        .await
        .map(drop)
}

pub async fn complete_welcome(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
    user_role: &str,
) -> Result<Option<AdminView>, TableError> {
    let update = Update::default()
        .set("welcomeCompleted", true)
        .set("userRole", user_role);
    match table
        .update(
            &keys::admin(church_id, admin_id),
            update,
            Some(crate::ports::table::Cond::Exists),
        )
        .await
    {
        Ok(item) => Ok(Some(AdminRecord::from_item(item)?.view)),
        Err(TableError::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}
