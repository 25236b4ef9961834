//! Time, injectable so tests can pin it (webhook signatures, TTLs, schedules).

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The system's clock read as another moment: shifted by an offset that
/// only moves when told to. Time still runs, so what waits on it (pacing,
/// claim leases, queue delays) works as it does on the real clock, while
/// a test picks the hour (quiet hours, schedules).
#[derive(Debug, Default)]
pub struct ShiftedClock(Mutex<Duration>);

impl ShiftedClock {
    pub fn by(offset: Duration) -> Self {
        Self(Mutex::new(offset))
    }

    pub fn shift(&self, by: Duration) {
        let mut offset = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *offset += by;
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Utc::now() + offset
    }
}
