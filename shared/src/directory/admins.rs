//! Admins: the stored record (with its password hash) and the view the
//! frontend reads (`admin` in API.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::EmailClaim;
use crate::auth::Role;
use crate::domain::{AdminId, ChurchId};
use crate::keys;
use crate::ports::table::{Key, Table, TableError, Update};
use crate::store::{Entities, Entity, from_item};

/// Attributes the admin's updates set (the record's own field names).
const LAST_LOGIN_AT: &str = "lastLoginAt";

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
}

impl Entity for AdminRecord {
    const KIND: Option<&'static str> = Some("admin");
    fn key(&self) -> Key {
        keys::admin(self.church_id, self.view.id)
    }
}

pub async fn get(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
) -> Result<Option<AdminRecord>, TableError> {
    table.load(&keys::admin(church_id, admin_id)).await
}

/// The admin who logs in with `email`, in whichever church.
pub async fn find_by_email(
    table: &dyn Table,
    email: &str,
) -> Result<Option<AdminRecord>, TableError> {
    match table.load::<EmailClaim>(&keys::email(email)).await? {
        Some(claim) => get(table, claim.church_id, claim.admin_id).await,
        None => Ok(None),
    }
}

pub async fn touch_login(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
    now: DateTime<Utc>,
) -> Result<(), TableError> {
    let update = Update::default().set(LAST_LOGIN_AT, now.to_rfc3339());
    table
        .update(
            &keys::admin(church_id, admin_id),
            update,
            Some(crate::ports::table::Cond::Exists),
        )
        .await
        .map(drop)
}

const PASSWORD_HASH: &str = "passwordHash";

/// Replaces an admin's password hash; `false` when there is no such admin.
pub async fn set_password(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
    password_hash: String,
) -> Result<bool, TableError> {
    let update = Update::default().set(PASSWORD_HASH, password_hash);
    match table
        .update(
            &keys::admin(church_id, admin_id),
            update,
            Some(crate::ports::table::Cond::Exists),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(TableError::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

const WELCOME_COMPLETED: &str = "welcomeCompleted";
const USER_ROLE: &str = "userRole";

pub async fn complete_welcome(
    table: &dyn Table,
    church_id: ChurchId,
    admin_id: AdminId,
    user_role: &str,
) -> Result<Option<AdminView>, TableError> {
    let update = Update::default()
        .set(WELCOME_COMPLETED, true)
        .set(USER_ROLE, user_role);
    match table
        .update(
            &keys::admin(church_id, admin_id),
            update,
            Some(crate::ports::table::Cond::Exists),
        )
        .await
    {
        Ok(item) => Ok(Some(from_item::<AdminRecord>(item)?.view)),
        Err(TableError::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Co-admins: created by the PRIMARY admin with a one-time temporary password.
pub mod co_admins {
    use chrono::{DateTime, Utc};
    use serde::Serialize;

    use super::{AdminRecord, NewAdmin};
    use crate::auth::{Role, sessions};
    use crate::directory::error::DirectoryError;
    use crate::directory::model::{Counter, Counters, EmailClaim};
    use crate::directory::plans;
    use crate::domain::{AdminId, ChurchId};
    use crate::keys;
    use crate::ports::table::{Cond, Query, SortCond, Table, TableError, TxOp};
    use crate::store::{Entities, Transaction};

    /// The parts of a co-admin's creation.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Part {
        Email,
        PlanLimit,
        Admin,
    }

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
        let email = EmailClaim::new(&record.view.email, church, record.view.id);
        let counted = Counters::default()
            .add(Counter::CoAdmins, 1)
            .below(Counter::CoAdmins, i64::from(plan.co_admins));
        let creation = Transaction::new()
            .with(Part::Email, TxOp::create(&email)?)
            .with(Part::PlanLimit, counted.op(church))
            .with(Part::Admin, TxOp::create(&record)?);
        match creation.commit(table).await {
            Ok(()) => Ok(record),
            Err(e) if e.failed(Part::Email) => Err(DirectoryError::Conflict {
                code: "email_taken",
                field: "email",
                message: "an account with this email already exists".into(),
            }),
            Err(e) if e.failed(Part::PlanLimit) => {
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
        let (admins, _) = table.find::<AdminRecord>(query).await?;
        Ok(admins
            .iter()
            .filter(|a| a.view.role == Role::CoAdmin)
            .map(CoAdminView::from)
            .collect())
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
            Counters::default().add(Counter::CoAdmins, -1).op(church),
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
