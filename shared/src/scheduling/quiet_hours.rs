//! Quiet hours: the local hours a church never texts in (by default 21:00
//! to 08:00). A recurring or scheduled time inside them is refused; a
//! broadcast still sending when they begin waits until they end.
//!
//! Stored on the profile as `quietHours`: `{start, end}` ("HH:MM", local),
//! or `"off"` when the church turned them off; absent means the default.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

/// The stored word for quiet hours turned off.
const OFF: &str = "off";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

fn hhmm(value: Option<&Value>) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(value?.as_str()?, "%H:%M").ok()
}

impl QuietHours {
    pub const DEFAULT: QuietHours = QuietHours {
        start: NaiveTime::from_hms_opt(21, 0, 0).expect("a valid time"),
        end: NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time"),
    };

    /// A church's quiet hours from its stored `quietHours` (`None`: turned off).
    pub fn of_profile(stored: Option<&Value>) -> Option<QuietHours> {
        match stored {
            None | Some(Value::Null) => Some(Self::DEFAULT),
            Some(Value::String(s)) if s == OFF => None,
            Some(Value::Object(o)) => match (hhmm(o.get("start")), hhmm(o.get("end"))) {
                (Some(start), Some(end)) => Some(QuietHours { start, end }),
                // Unreadable: the safe side is the default.
                _ => Some(Self::DEFAULT),
            },
            Some(_) => Some(Self::DEFAULT),
        }
    }

    /// What an admin's `quietHours` asks to store: `null` turns them off,
    /// `{start, end}` sets them; anything else is `None` (refused).
    pub fn parse_request(value: &Value) -> Option<Value> {
        match value {
            Value::Null => Some(json!(OFF)),
            Value::Object(o) => {
                let start = hhmm(o.get("start"))?;
                let end = hhmm(o.get("end"))?;
                (start != end).then(|| json!({"start": o["start"], "end": o["end"]}))
            }
            _ => None,
        }
    }

    /// How the profile shows them: `{start, end}`, or null when off.
    pub fn view(quiet: Option<QuietHours>) -> Value {
        match quiet {
            Some(q) => json!({
                "start": q.start.format("%H:%M").to_string(),
                "end": q.end.format("%H:%M").to_string(),
            }),
            None => Value::Null,
        }
    }

    /// Whether the local wall-clock time `t` falls inside (start included,
    /// end excluded; the hours may span midnight).
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Whether the instant `at` falls inside them in `tz`.
    pub fn holds(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        self.contains(at.with_timezone(&tz).time())
    }

    /// When the quiet hours holding `at` end (the first instant at or after
    /// `at` whose local time is outside them); `at` itself when they don't hold.
    pub fn end_after(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        if !self.holds(at, tz) {
            return at;
        }
        let local = at.with_timezone(&tz);
        // The end is today or tomorrow in local time; a DST gap at the end
        // time moves it to the first valid minute after.
        for days in 0..=1 {
            let date = local.date_naive() + Duration::days(days);
            let mut wall = date.and_time(self.end);
            for _ in 0..=180 {
                if let Some(t) = tz.from_local_datetime(&wall).earliest() {
                    let t = t.with_timezone(&Utc);
                    if t > at {
                        return t;
                    }
                    break;
                }
                wall += Duration::minutes(1);
            }
        }
        at + Duration::hours(24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn the_default_spans_midnight() {
        let q = QuietHours::DEFAULT;
        assert!(q.contains(t(21, 0)));
        assert!(q.contains(t(23, 59)));
        assert!(q.contains(t(7, 59)));
        assert!(!q.contains(t(8, 0)));
        assert!(!q.contains(t(20, 59)));
    }

    #[test]
    fn daytime_hours_do_not_wrap() {
        let q = QuietHours {
            start: t(12, 0),
            end: t(13, 0),
        };
        assert!(q.contains(t(12, 30)));
        assert!(!q.contains(t(13, 0)));
        assert!(!q.contains(t(23, 0)));
    }

    #[test]
    fn stored_values_read_as_the_profile_says() {
        assert_eq!(QuietHours::of_profile(None), Some(QuietHours::DEFAULT));
        assert_eq!(QuietHours::of_profile(Some(&json!("off"))), None);
        let set = json!({"start": "22:00", "end": "06:30"});
        assert_eq!(
            QuietHours::of_profile(Some(&set)),
            Some(QuietHours {
                start: t(22, 0),
                end: t(6, 30)
            })
        );
        assert_eq!(QuietHours::parse_request(&Value::Null), Some(json!("off")));
        assert_eq!(
            QuietHours::parse_request(&json!({"start": "25:00", "end": "06:00"})),
            None
        );
        assert_eq!(
            QuietHours::parse_request(&json!({"start": "06:00", "end": "06:00"})),
            None
        );
        assert_eq!(QuietHours::parse_request(&json!("21:00")), None);
    }

    #[test]
    fn they_end_at_the_local_end_time() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 23:30 EST on a winter night = 04:30 UTC; ends 08:00 EST = 13:00 UTC.
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 4, 30, 0).unwrap();
        let end = QuietHours::DEFAULT.end_after(at, tz);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 12, 2, 13, 0, 0).unwrap());
        let noon = Utc.with_ymd_and_hms(2026, 12, 2, 17, 0, 0).unwrap();
        assert_eq!(QuietHours::DEFAULT.end_after(noon, tz), noon);
    }
}
