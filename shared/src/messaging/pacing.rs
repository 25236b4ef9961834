//! Pacing each sending number to its throughput (the church's `sendingMps`)
//! across every sender instance, so Telnyx never has to queue or refuse
//! our messages (TELNYX.md, Throughput).
//!
//! The state is one table item per number holding the GCRA "theoretical
//! arrival time" (`tat`): the moment the number is free again. A send job
//! reserves all its slots with one conditional write — `n` sends starting
//! at `max(tat, now)`, one every `1/mps` — instead of one write per SMS.
//! When the number is booked further ahead than `horizon`, nothing is
//! reserved and the job is told to come back later, so no sender sits idle
//! waiting on one church while others have work.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::PhoneNumber;
use crate::keys;
use crate::ports::table::{Cond, Key, Table, TableError};
use crate::store::Entities;

/// A number's schedule: when it is free again (GCRA's theoretical arrival
/// time, in Unix microseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pace {
    #[serde(skip)]
    key: Key,
    tat: i64,
    /// Idle numbers leave nothing behind.
    ttl: i64,
}

crate::store::keyed_by_its_key!(Pace);

/// How far ahead a job may book its number and wait in the sender.
pub const HORIZON: Duration = Duration::seconds(5);
/// Contended reservations (other senders booking the same number) retried,
/// each after a short random pause so the contenders spread out.
const ATTEMPTS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Send the i-th message at `first + i × interval`.
    Slots {
        first: DateTime<Utc>,
        interval: Duration,
    },
    /// The number is booked beyond the horizon: try again after this long.
    Later(std::time::Duration),
}

impl Reservation {
    pub fn slot(&self, i: usize) -> Option<DateTime<Utc>> {
        match self {
            Reservation::Slots { first, interval } => Some(*first + *interval * i as i32),
            Reservation::Later(_) => None,
        }
    }
}

/// GCRA's one rule: `n` messages on a number free again at `tat` start at
/// `max(tat, now)` and leave it free at `start + n × interval` — unless the
/// start is more than `tolerance` away, when the answer is how much longer
/// to wait. (The Telnyx simulator limits with the same rule.)
pub fn book(
    tat: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    interval: Duration,
    n: usize,
    tolerance: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Duration> {
    let start = tat.map_or(now, |t| t.max(now));
    if start - now > tolerance {
        return Err(start - now - tolerance);
    }
    Ok((start, start + interval * n as i32))
}

/// The highest throughput a church may state (a short code's).
pub const MAX_MPS: u32 = 1_000;

/// The time one message occupies a number sending `mps` messages a second.
pub fn interval(mps: u32) -> Duration {
    Duration::microseconds(1_000_000 / i64::from(mps.max(1)))
}

/// Books `n` sends on `number` at `mps`, starting no earlier than `now`.
pub async fn reserve(
    table: &dyn Table,
    number: &PhoneNumber,
    mps: u32,
    n: usize,
    now: DateTime<Utc>,
) -> Result<Reservation, TableError> {
    let key = keys::pace(number);
    let step = interval(mps);
    for _ in 0..ATTEMPTS {
        let stored: Option<Pace> = table.load(&key).await?;
        let tat = stored
            .as_ref()
            .and_then(|p| DateTime::from_timestamp_micros(p.tat));
        let (first, next) = match book(tat, now, step, n, HORIZON) {
            Ok(booked) => booked,
            Err(wait) => {
                let wait = wait.to_std().unwrap_or_default();
                return Ok(Reservation::Later(
                    wait.max(std::time::Duration::from_secs(1)),
                ));
            }
        };
        let pace = Pace {
            key: key.clone(),
            tat: next.timestamp_micros(),
            ttl: next.timestamp() + 86_400,
        };
        let unchanged = match &stored {
            Some(old) => Cond::eq("tat", old.tat),
            None => Cond::NotExists,
        };
        match table.save(&pace, Some(unchanged)).await {
            Ok(()) => {
                return Ok(Reservation::Slots {
                    first,
                    interval: step,
                });
            }
            // Another sender booked the number in between: read again.
            Err(TableError::ConditionFailed) => {
                let pause = rand::random_range(1..=5);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    // Heavily contended: let the job come back rather than spin.
    Ok(Reservation::Later(std::time::Duration::from_secs(1)))
}
