//! Login throttling, in fixed 15-minute windows counted in the table so
//! every Lambda instance sees the same counts.
//!
//! An attempt is counted *before* its password is checked, by one
//! conditional ADD per subject ("add one while under the limit"): the write
//! is the decision, so twenty parallel guesses get at most the limit's worth
//! of password checks, never twenty. A successful login gives its attempt back.
//!
//! Subjects: the email *from one address* has the tight limit, so a
//! stranger guessing from elsewhere locks only themself out; the email from
//! anywhere has a looser one (a guess spread over many addresses is still
//! slowed); one address over any emails has its own (an office may share one).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::model::Window;
use crate::keys;
use crate::ports::table::{Key, Table, TableError};

pub const WINDOW_SECS: i64 = 15 * 60;
/// Attempts allowed per window for one email from one address.
pub const MAX_PER_EMAIL_AND_IP: i64 = 5;
/// Attempts allowed per window for one email from every address together.
pub const MAX_PER_EMAIL: i64 = 50;
/// Attempts allowed per window from one address, whatever the email.
pub const MAX_PER_IP: i64 = 20;
/// Password-reset mails one address may ask for per window.
pub const MAX_RESETS: i64 = 5;

/// Who is being counted; identities are hashed so keys hold no addresses.
#[derive(Debug, Clone)]
pub struct Subject {
    scope: &'static str,
    id: String,
    limit: i64,
}

impl Subject {
    /// The subjects of a login of `email` from `ip`, narrowest first.
    pub fn login(email: &str, ip: &str) -> [Self; 3] {
        let email = email.to_lowercase();
        [
            Self::hashed("EMAIL_IP", &format!("{email}\n{ip}"), MAX_PER_EMAIL_AND_IP),
            Self::hashed("EMAIL", &email, MAX_PER_EMAIL),
            Self::hashed("IP", ip, MAX_PER_IP),
        ]
    }

    /// Password-reset requests for `email`.
    pub fn reset(email: &str) -> Self {
        Self::hashed(
            "EMAIL",
            &format!("reset:{}", email.to_lowercase()),
            MAX_RESETS,
        )
    }

    fn hashed(scope: &'static str, raw: &str, limit: i64) -> Self {
        Self {
            scope,
            id: hex::encode(&Sha256::digest(raw.as_bytes())[..16]),
            limit,
        }
    }

    fn key(&self, window: i64) -> Key {
        keys::throttle(self.scope, &self.id, window)
    }
}

fn window_of(now: DateTime<Utc>) -> i64 {
    now.timestamp() - now.timestamp().rem_euclid(WINDOW_SECS)
}

/// An attempt every subject counted; give it back with [`give_back`] if it
/// should not count (the login succeeded).
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    counted: Vec<Key>,
}

#[derive(Debug)]
pub enum Admission {
    Admitted(Attempt),
    /// A subject is at its limit: seconds until the window ends.
    Blocked {
        retry_after_secs: u64,
    },
}

/// Counts an attempt against every subject, or refuses it if one is at
/// its limit (then the subjects already counted get it back: an attempt
/// refused without a password check costs nothing).
pub async fn admit(
    table: &dyn Table,
    subjects: &[Subject],
    now: DateTime<Utc>,
) -> Result<Admission, TableError> {
    let window = window_of(now);
    let mut counted = Vec::with_capacity(subjects.len());
    for subject in subjects {
        let key = subject.key(window);
        let (update, under_limit) = Window::attempted(subject.limit, window + 2 * WINDOW_SECS);
        match table.update(&key, update, Some(under_limit)).await {
            Ok(_) => counted.push(key),
            Err(TableError::ConditionFailed) => {
                give_back(table, Attempt { counted }).await?;
                return Ok(Admission::Blocked {
                    retry_after_secs: (window + WINDOW_SECS - now.timestamp()).max(1) as u64,
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Admission::Admitted(Attempt { counted }))
}

/// Uncounts an admitted attempt.
pub async fn give_back(table: &dyn Table, attempt: Attempt) -> Result<(), TableError> {
    for key in &attempt.counted {
        table.update(key, Window::given_back(), None).await?;
    }
    Ok(())
}
