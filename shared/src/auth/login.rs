//! Checking a login's email and password, throttled (see `throttle`): the
//! attempt is counted first, the password checked only if the count allowed it.

use chrono::{DateTime, Utc};

use super::passwords;
use super::throttle::{self, Admission, Subject};
use crate::directory::admins::{self, AdminRecord};
use crate::ports::table::{Table, TableError};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("too many login attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("the password check did not finish")]
    Verifier(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The admin `email` names, if `password` is theirs and the throttle
/// admits the attempt from `ip`.
pub async fn check(
    table: &dyn Table,
    email: &str,
    password: String,
    ip: &str,
    now: DateTime<Utc>,
) -> Result<AdminRecord, LoginError> {
    let attempt = match throttle::admit(table, &Subject::login(email, ip), now).await? {
        Admission::Admitted(attempt) => attempt,
        Admission::Blocked { retry_after_secs } => {
            return Err(LoginError::Throttled { retry_after_secs });
        }
    };
    let admin = admins::find_by_email(table, email).await?;
    // Argon2 either way, so an unknown email takes as long as a wrong password.
    let verified = match &admin {
        Some(admin) => {
            let stored = admin.password_hash.clone();
            tokio::task::spawn_blocking(move || passwords::verify(&stored, &password)).await?
        }
        None => {
            tokio::task::spawn_blocking(move || passwords::verify_nothing(&password)).await?;
            false
        }
    };
    match admin.filter(|_| verified) {
        Some(admin) => {
            // The right password costs the admin nothing of their allowance.
            throttle::give_back(table, attempt).await?;
            Ok(admin)
        }
        None => Err(LoginError::InvalidCredentials),
    }
}
