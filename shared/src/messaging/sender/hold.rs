//! Whether a broadcast's job may claim its recipients now: not while an
//! admin has paused the message, never once they cancelled it, and not
//! while the church's quiet hours hold over a broadcast that was already
//! sending when they began. Read from the message and the church's profile
//! the job loaded once, so it costs no extra read.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::directory::model::ChurchProfile;
use crate::messaging::entities::{Message, MessageState};

/// How often a paused broadcast's jobs look at it again: a resume takes
/// effect within this (plus the queue's jitter), and a paused broadcast
/// costs only its few waiting jobs' reads each time (the fan-out keeps at
/// most its window of recipients queued).
pub const PAUSED_RECHECK: Duration = Duration::from_secs(5);

/// What a job of a broadcast does with its recipients still queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Claim and send them.
    Go,
    /// Claim none; the job comes back after this (the queue caps it).
    Wait(Duration),
    /// The message was cancelled: they become `cancelled`, never sent.
    Cancel,
}

/// What a job of `message` does at `now`.
pub fn hold(message: &Message, profile: &ChurchProfile, now: DateTime<Utc>) -> Hold {
    match message.status {
        MessageState::Cancelled => return Hold::Cancel,
        MessageState::Paused => return Hold::Wait(PAUSED_RECHECK),
        _ => {}
    }
    let Some(quiet) = profile.quiet_hours() else {
        return Hold::Go;
    };
    let tz = profile.tz();
    if !quiet.holds(now, tz) {
        return Hold::Go;
    }
    // A broadcast sent inside these very quiet hours was sent on purpose
    // (an admin chose "send now" at night): only one that began before
    // they did waits. Its start unreadable, it is taken to have begun before.
    let began = DateTime::parse_from_rfc3339(&message.created_at)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    if began.is_some_and(|b| quiet.end_after(b, tz) > now) {
        return Hold::Go;
    }
    let end = quiet.end_after(now, tz);
    Hold::Wait((end - now).to_std().unwrap_or(PAUSED_RECHECK))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::ChurchId;

    fn message(status: MessageState, created_at: DateTime<Utc>) -> Message {
        Message::sample(status, 3, &created_at.to_rfc3339())
    }

    /// A church in Chicago, quiet from 21:00 to 08:00 (the default).
    fn chicago() -> ChurchProfile {
        let mut profile = ChurchProfile::new(ChurchId::generate());
        profile.timezone = Some("America/Chicago".into());
        profile
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // 2026-12-01 in Chicago is UTC-6.
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
            + chrono::Duration::hours(i64::from(h) + 6)
            + chrono::Duration::minutes(i64::from(m))
    }

    #[test]
    fn paused_waits_and_cancelled_cancels_whatever_the_hour() {
        let p = chicago();
        let noon = at(12, 0);
        let paused = message(MessageState::Paused, noon);
        assert_eq!(hold(&paused, &p, noon), Hold::Wait(PAUSED_RECHECK));
        let cancelled = message(MessageState::Cancelled, noon);
        assert_eq!(hold(&cancelled, &p, at(22, 0)), Hold::Cancel);
        assert_eq!(
            hold(&message(MessageState::Sending, noon), &p, noon),
            Hold::Go
        );
    }

    #[test]
    fn a_broadcast_still_sending_when_quiet_hours_begin_waits_until_they_end() {
        let p = chicago();
        let m = message(MessageState::Sending, at(20, 50));
        assert_eq!(hold(&m, &p, at(20, 59)), Hold::Go);
        let wait = hold(&m, &p, at(21, 0));
        // 21:00 to 08:00 the next morning.
        assert_eq!(wait, Hold::Wait(Duration::from_secs(11 * 3600)));
        assert_eq!(
            hold(&m, &p, at(21, 0) + chrono::Duration::hours(11)),
            Hold::Go
        );
    }

    #[test]
    fn a_broadcast_sent_inside_quiet_hours_goes_out() {
        let p = chicago();
        let m = message(MessageState::Sending, at(22, 0));
        assert_eq!(hold(&m, &p, at(22, 5)), Hold::Go);
    }

    #[test]
    fn quiet_hours_turned_off_never_hold_and_a_bad_zone_is_the_default() {
        let mut p = chicago();
        p.quiet_hours = Some(json!("off"));
        let m = message(MessageState::Sending, at(20, 0));
        assert_eq!(hold(&m, &p, at(23, 0)), Hold::Go);
        let m = message(MessageState::Sending, at(18, 0));
        let mut p = chicago();
        p.timezone = Some("Mars/Olympus".into());
        // 21:30 in Chicago is 22:30 in New York: quiet there too.
        assert!(matches!(hold(&m, &p, at(21, 30)), Hold::Wait(_)));
        // 20:30 in Chicago is 21:30 in New York.
        assert!(matches!(hold(&m, &p, at(20, 30)), Hold::Wait(_)));
        p.timezone = Some("America/Chicago".into());
        assert_eq!(hold(&m, &p, at(20, 30)), Hold::Go);
    }
}
