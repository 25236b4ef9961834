//! Login throttling: failures are counted per email and per client IP in
//! fixed 15-minute windows, in the table, so every Lambda instance sees the
//! same counts. Past the limit, logins answer 429 until the window ends.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::model::Window;
use crate::keys;
use crate::ports::table::{Key, Table, TableError};
use crate::store::Entities;

pub const WINDOW_SECS: i64 = 15 * 60;
/// Failures allowed per window for one email.
pub const MAX_PER_EMAIL: i64 = 5;
/// Failures allowed per window for one IP (an office may share one).
pub const MAX_PER_IP: i64 = 20;

/// Who is being counted; identities are hashed so keys hold no addresses.
#[derive(Debug, Clone)]
pub struct Subject {
    scope: &'static str,
    id: String,
    limit: i64,
}

impl Subject {
    pub fn email(email: &str) -> Self {
        Self::hashed("EMAIL", &email.to_lowercase(), MAX_PER_EMAIL)
    }

    pub fn ip(ip: &str) -> Self {
        Self::hashed("IP", ip, MAX_PER_IP)
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

/// `Some(seconds to wait)` when any subject is over its limit.
pub async fn blocked(
    table: &dyn Table,
    subjects: &[Subject],
    now: DateTime<Utc>,
) -> Result<Option<u64>, TableError> {
    let window = window_of(now);
    for subject in subjects {
        let counted: Option<Window> = table.load(&subject.key(window)).await?;
        let failures = counted.map_or(0, |w| w.failures);
        if failures >= subject.limit {
            return Ok(Some((window + WINDOW_SECS - now.timestamp()).max(1) as u64));
        }
    }
    Ok(None)
}

pub async fn record_failure(
    table: &dyn Table,
    subjects: &[Subject],
    now: DateTime<Utc>,
) -> Result<(), TableError> {
    let window = window_of(now);
    for subject in subjects {
        let update = Window::failed(window + 2 * WINDOW_SECS);
        table.update(&subject.key(window), update, None).await?;
    }
    Ok(())
}
