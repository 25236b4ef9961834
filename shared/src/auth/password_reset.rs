//! Password reset: a one-hour token mailed to the admin (through the event
//! bus), stored only as its SHA-256, that works once and ends every session.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::throttle::{self, Subject};
use super::{csrf, passwords, sessions};
use crate::directory::admins;
use crate::domain::{AdminId, ChurchId};
use crate::keys;
use crate::ports::events::{DomainEvent, Events};
use crate::ports::table::{Cond, Key, Table, TableError};
use crate::store;

/// How long a password-reset token works.
pub const RESET_TTL_SECS: i64 = 60 * 60;

/// A reset token's admin, under the token's hash, until its TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordReset {
    #[serde(skip)]
    key: Key,
    pub church_id: ChurchId,
    pub admin_id: AdminId,
    pub ttl: i64,
}

// Stored without a `type`, as it always was.
crate::store::keyed_by_its_key!(PasswordReset);

impl PasswordReset {
    /// The key of `token`: only its hash is stored, so a read of the table
    /// never yields a working link.
    pub fn key_of(token: &str) -> Key {
        keys::password_reset(&hex::encode(Sha256::digest(token.as_bytes())))
    }

    fn new(token: &str, church_id: ChurchId, admin_id: AdminId, now: DateTime<Utc>) -> Self {
        Self {
            key: Self::key_of(token),
            church_id,
            admin_id,
            ttl: now.timestamp() + RESET_TTL_SECS,
        }
    }

    /// Only while unexpired (the TTL sweep is late by up to days).
    fn unexpired(now: DateTime<Utc>) -> Cond {
        Cond::Gt(crate::ports::table::TTL.into(), json!(now.timestamp()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("the reset link is invalid or has expired")]
    InvalidToken,
    /// Ours, not the caller's: the context names the step.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, ResetError>;
}

impl<T, E: Into<anyhow::Error>> Step<T> for Result<T, E> {
    fn step(self, step: &'static str) -> Result<T, ResetError> {
        self.map_err(|e| ResetError::Unexpected(e.into().context(step)))
    }
}

/// Mails a reset link to `email`'s admin, if there is one. Callers answer
/// alike either way (no account enumeration); each address may ask a few
/// times a window, counted as login failures are.
pub async fn request(
    table: &dyn Table,
    events: &dyn Events,
    email: &str,
    now: DateTime<Utc>,
) -> Result<(), ResetError> {
    let subjects = [Subject::reset(email)];
    // Counted whether or not the address has an account; never given back.
    if let throttle::Admission::Blocked { .. } = throttle::admit(table, &subjects, now)
        .await
        .step("count the reset request")?
    {
        return Ok(());
    }
    let Some(admin) = admins::find_by_email(table, email)
        .await
        .step("find the admin by email")?
    else {
        return Ok(());
    };
    let token = csrf::new_token();
    let reset = PasswordReset::new(&token, admin.church_id, admin.view.id, now);
    table
        .put(store::to_item(&reset).step("encode the reset token")?, None)
        .await
        .step("store the reset token")?;
    let event = DomainEvent::new(
        "admin.password_reset_requested",
        json!({ "churchId": admin.church_id, "adminId": admin.view.id, "email": admin.view.email, "token": token, "expiresInSeconds": RESET_TTL_SECS }),
    );
    events
        .publish(vec![event])
        .await
        .step("publish the reset mail")?;
    Ok(())
}

/// Sets a new password with a mailed token, then ends every session.
pub async fn confirm(
    table: &dyn Table,
    token: &str,
    new_password: String,
    now: DateTime<Utc>,
) -> Result<(), ResetError> {
    // Claiming the token deletes it, so it works once even under a race.
    let claimed = match table
        .delete(
            &PasswordReset::key_of(token),
            Some(PasswordReset::unexpired(now)),
        )
        .await
    {
        Ok(Some(item)) => item,
        Ok(None) | Err(TableError::ConditionFailed) => return Err(ResetError::InvalidToken),
        Err(e) => return Err(e).step("claim the reset token"),
    };
    // A token whose ids do not parse names nobody.
    let reset: PasswordReset = store::from_item(claimed).map_err(|_| ResetError::InvalidToken)?;
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&new_password))
        .await
        .step("hash the new password")?
        .step("hash the new password")?;
    // The admin was removed since the link was mailed: it names nobody.
    if !admins::set_password(table, reset.church_id, reset.admin_id, hash)
        .await
        .step("store the new password")?
    {
        return Err(ResetError::InvalidToken);
    }
    sessions::revoke_all(table, reset.admin_id)
        .await
        .step("end the admin's sessions")?;
    Ok(())
}

impl From<ResetError> for crate::error::ApiError {
    fn from(e: ResetError) -> Self {
        match e {
            ResetError::InvalidToken => {
                crate::error::ApiError::field("token", "invalid_token", e.to_string())
            }
            ResetError::Unexpected(e) => crate::error::ApiError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stored_only_as_its_hash_with_its_ttl_and_no_type() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let reset = PasswordReset::new(
            "secret-token",
            ChurchId::generate(),
            AdminId::generate(),
            now,
        );
        let item = store::to_item(&reset).unwrap();
        let pk = item["pk"].as_str().unwrap();
        assert!(
            pk.starts_with("RESET#") && !pk.contains("secret-token"),
            "{pk}"
        );
        assert_eq!(item["sk"], "RESET");
        assert_eq!(item["ttl"], now.timestamp() + RESET_TTL_SECS);
        assert!(item.get("type").is_none());
        let read: PasswordReset = store::from_item(item).unwrap();
        assert_eq!(read, reset);
    }
}
