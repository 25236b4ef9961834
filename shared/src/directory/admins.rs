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
        super::record::to_item(self, keys::admin(self.church_id, self.view.id), "admin")
    }

    pub(crate) fn from_item(item: Item) -> Result<Self, TableError> {
        super::record::from_item(item, "admin")
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

/// Co-admins: created by the PRIMARY admin with a one-time temporary password.
pub mod co_admins {
    use chrono::{DateTime, Utc};
    use serde::Serialize;
    use serde_json::json;

    use super::{AdminRecord, NewAdmin};
    use crate::auth::{Role, sessions};
    use crate::directory::error::DirectoryError;
    use crate::directory::plans;
    use crate::domain::{AdminId, ChurchId};
    use crate::keys;
    use crate::ports::table::{Cond, Query, SortCond, Table, TableError, TxOp, Update};

    /// What the co-admin list shows.
    #[derive(Debug, Clone, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CoAdminView {
        pub id: AdminId,
        pub email: String,
        pub first_name: String,
        pub last_name: String,
        pub role: Role,
        pub last_login_at: Option<String>,
        pub created_at: String,
    }

    impl From<&AdminRecord> for CoAdminView {
        fn from(a: &AdminRecord) -> Self {
            Self {
                id: a.view.id,
                email: a.view.email.clone(),
                first_name: a.view.first_name.clone(),
                last_name: a.view.last_name.clone(),
                role: a.view.role,
                last_login_at: a.last_login_at.clone(),
                created_at: a.created_at.clone(),
            }
        }
    }

    /// 16 characters from an alphabet without look-alikes, with at least one
    /// uppercase letter and one digit, so it passes the password rule.
    pub fn temporary_password() -> String {
        use rand::Rng;
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::rng();
        loop {
            let password: String = (0..16)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            if crate::auth::passwords::strong_enough(&password).is_ok() {
                return password;
            }
        }
    }

    pub async fn create(
        table: &dyn Table,
        church: ChurchId,
        admin: NewAdmin,
        now: DateTime<Utc>,
    ) -> Result<AdminRecord, DirectoryError> {
        let plan = plans::of_church(table, church).await?;
        let record = AdminRecord::new(AdminId::generate(), church, Role::CoAdmin, admin, now);
        let email = keys::email(&record.view.email);
        let ops = vec![
            TxOp::Put {
                item: json!({"pk": email.pk, "sk": email.sk, "churchId": church, "adminId": record.view.id}).as_object().cloned().unwrap_or_default(),
                cond: Some(Cond::NotExists),
            },
            TxOp::Update {
                key: keys::church_counters(church),
                update: Update::default().add("coAdmins", 1),
                cond: Some(Cond::Lt("coAdmins".into(), json!(plan.co_admins))),
            },
            TxOp::Put { item: record.to_item()?, cond: Some(Cond::NotExists) },
        ];
        match table.transact(ops).await {
            Ok(()) => Ok(record),
            Err(TableError::TransactionCancelled { failed }) if failed.contains(&0) => {
                Err(DirectoryError::Conflict {
                    code: "email_taken",
                    field: "email",
                    message: "an account with this email already exists".into(),
                })
            }
            Err(TableError::TransactionCancelled { .. }) => {
                Err(DirectoryError::PlanLimit { limit: "co-admins" })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list(
        table: &dyn Table,
        church: ChurchId,
    ) -> Result<Vec<CoAdminView>, DirectoryError> {
        let query = Query::partition(keys::church(church))
            .sort(SortCond::BeginsWith(keys::ADMIN_PREFIX.into()))
            .limit(100);
        let page = table.query(query).await?;
        let mut admins = Vec::new();
        for item in page.items {
            let record = AdminRecord::from_item(item)?;
            if record.view.role == Role::CoAdmin {
                admins.push(CoAdminView::from(&record));
            }
        }
        Ok(admins)
    }

    /// Removes a co-admin, frees their email and ends their sessions.
    pub async fn delete(
        table: &dyn Table,
        church: ChurchId,
        id: AdminId,
    ) -> Result<(), DirectoryError> {
        let record = super::get(table, church, id)
            .await?
            .filter(|a| a.view.role == Role::CoAdmin)
            .ok_or(DirectoryError::NotFound("co-admin"))?;
        let ops = vec![
            TxOp::Delete {
                key: keys::admin(church, id),
                cond: Some(Cond::Exists),
            },
            TxOp::Delete {
                key: keys::email(&record.view.email),
                cond: None,
            },
            TxOp::Update {
                key: keys::church_counters(church),
                update: Update::default().add("coAdmins", -1),
                cond: None,
            },
        ];
        match table.transact(ops).await {
            Ok(()) => {}
            Err(TableError::TransactionCancelled { .. }) => {
                return Err(DirectoryError::NotFound("co-admin"));
            }
            Err(e) => return Err(e.into()),
        }
        sessions::revoke_all(table, id).await?;
        Ok(())
    }
}
