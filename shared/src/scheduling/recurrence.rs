//! When a recurring message falls: daily, weekly on a weekday, or monthly
//! on a day of the month, at a local wall-clock time in the church's IANA
//! time zone — so Sunday 09:00 stays 09:00 across DST.
//!
//! A local time can be missing (the spring-forward gap): it sends at the
//! first valid minute after. It can happen twice (the fall-back overlap):
//! it sends once, at the first. A monthly day past the month's end (the
//! 29th–31st) sends on the month's last day.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    Daily,
    Weekly(Weekday),
    /// Day of the month, 1–31.
    Monthly(u32),
}

impl Frequency {
    pub fn name(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly(_) => "weekly",
            Frequency::Monthly(_) => "monthly",
        }
    }

    /// The API's `dayOfWeek` (0 = Sunday), when weekly.
    pub fn day_of_week(self) -> Option<u32> {
        match self {
            Frequency::Weekly(day) => Some(day.num_days_from_sunday()),
            _ => None,
        }
    }

    pub fn day_of_month(self) -> Option<u32> {
        match self {
            Frequency::Monthly(day) => Some(day),
            _ => None,
        }
    }

    /// The weekday of the API's `dayOfWeek` (0 = Sunday … 6 = Saturday).
    pub fn weekday(day_of_week: u32) -> Option<Weekday> {
        (day_of_week < 7).then(|| (0..day_of_week).fold(Weekday::Sun, |day, _| day.succ()))
    }

    fn falls_on(self, date: NaiveDate) -> bool {
        match self {
            Frequency::Daily => true,
            Frequency::Weekly(day) => date.weekday() == day,
            Frequency::Monthly(day) => date.day() == day.min(last_day_of_month(date)),
        }
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    let (y, m) = (date.year(), date.month());
    let first_of_next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    };
    first_of_next
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// A wall-clock time, "HH:MM".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(NaiveTime);

impl TimeOfDay {
    pub fn parse(text: &str) -> Option<TimeOfDay> {
        let well_formed = text.len() == 5 && text.as_bytes()[2] == b':';
        let time = NaiveTime::parse_from_str(text, "%H:%M").ok()?;
        well_formed.then_some(TimeOfDay(time))
    }

    pub fn time(self) -> NaiveTime {
        self.0
    }

    pub fn as_hhmm(self) -> String {
        self.0.format("%H:%M").to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    pub frequency: Frequency,
    pub time: TimeOfDay,
}

/// The instant a local wall-clock time names in `tz`: the first of two in
/// an overlap, the first valid minute after it in a gap.
pub fn resolve(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut probe = wall;
    // Gaps last at most a few hours (most are one); probe minute by minute.
    for _ in 0..=24 * 60 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return Some(t.with_timezone(&Utc));
        }
        probe += Duration::minutes(1);
    }
    None
}

impl Recurrence {
    /// The instant it falls on `date` (local), if it falls on that date.
    fn on(self, tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.frequency
            .falls_on(date)
            .then(|| resolve(tz, date.and_time(self.time.time())))
            .flatten()
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // From the day before (a gap can push an occurrence past midnight)
        // through a little over a year: every frequency falls in that span.
        let start = after.with_timezone(&tz).date_naive().pred_opt()?;
        start
            .iter_days()
            .take(400)
            .filter_map(|date| self.on(tz, date))
            .find(|t| *t > after)
    }

    /// The occurrences from `first` (included) up to `until` (excluded),
    /// at most `cap` of them.
    pub fn between(
        self,
        tz: Tz,
        first: DateTime<Utc>,
        until: DateTime<Utc>,
        cap: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut found = Vec::new();
        let mut at = Some(first);
        while let Some(t) = at.filter(|t| *t < until && found.len() < cap) {
            found.push(t);
            at = self.next_after(tz, t);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn every(frequency: Frequency, hhmm: &str) -> Recurrence {
        Recurrence {
            frequency,
            time: TimeOfDay::parse(hhmm).unwrap(),
        }
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert!(TimeOfDay::parse("09:00").is_some());
        assert!(TimeOfDay::parse("23:59").is_some());
        for bad in ["25:00", "9:00", "09:60", "09:00:00", "", "noon", "24:00"] {
            assert!(TimeOfDay::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Frequency::weekday(0), Some(Weekday::Sun));
        assert_eq!(Frequency::weekday(6), Some(Weekday::Sat));
        assert_eq!(Frequency::weekday(7), None);
    }

    #[test]
    fn sunday_nine_stays_nine_across_new_york_dst() {
        let ny = tz("America/New_York");
        let sunday = every(Frequency::Weekly(Weekday::Sun), "09:00");
        // Spring forward: Sunday 2027-03-14. EST (-5) before, EDT (-4) after.
        let before = sunday.next_after(ny, utc(2027, 3, 2, 0, 0)).unwrap();
        assert_eq!(before, utc(2027, 3, 7, 14, 0));
        let after = sunday.next_after(ny, before).unwrap();
        assert_eq!(after, utc(2027, 3, 14, 13, 0));
        // Fall back: Sunday 2026-11-01.
        let october = sunday.next_after(ny, utc(2026, 10, 20, 0, 0)).unwrap();
        assert_eq!(october, utc(2026, 10, 25, 13, 0));
        assert_eq!(
            sunday.next_after(ny, october).unwrap(),
            utc(2026, 11, 1, 14, 0)
        );
    }

    #[test]
    fn sunday_nine_stays_nine_across_sydney_dst() {
        let sydney = tz("Australia/Sydney");
        let sunday = every(Frequency::Weekly(Weekday::Sun), "09:00");
        // DST ends Sunday 2027-04-04 (AEDT +11 → AEST +10).
        let before = sunday.next_after(sydney, utc(2027, 3, 26, 0, 0)).unwrap();
        assert_eq!(before, utc(2027, 3, 27, 22, 0));
        assert_eq!(
            sunday.next_after(sydney, before).unwrap(),
            utc(2027, 4, 3, 23, 0)
        );
        // DST begins Sunday 2026-10-04 (AEST +10 → AEDT +11).
        let september = sunday.next_after(sydney, utc(2026, 9, 25, 0, 0)).unwrap();
        assert_eq!(september, utc(2026, 9, 26, 23, 0));
        assert_eq!(
            sunday.next_after(sydney, september).unwrap(),
            utc(2026, 10, 3, 22, 0)
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_sends_at_the_first_valid_minute() {
        // New York 2027-03-14: 02:00–02:59 does not exist; 02:30 → 03:00 EDT.
        let ny = tz("America/New_York");
        let daily = every(Frequency::Daily, "02:30");
        let gap_day = daily.next_after(ny, utc(2027, 3, 13, 12, 0)).unwrap();
        assert_eq!(gap_day, utc(2027, 3, 14, 7, 0));
        assert_eq!(
            daily.next_after(ny, gap_day).unwrap(),
            utc(2027, 3, 15, 6, 30)
        );
        // Sydney 2026-10-04: 02:00–02:59 does not exist; 02:15 → 03:00 AEDT.
        let sydney = tz("Australia/Sydney");
        let daily = every(Frequency::Daily, "02:15");
        let gap_day = daily.next_after(sydney, utc(2026, 10, 3, 0, 0)).unwrap();
        assert_eq!(gap_day, utc(2026, 10, 3, 16, 0));
    }

    #[test]
    fn a_time_in_the_fall_overlap_sends_once() {
        // New York 2026-11-01: 01:30 happens at 05:30 and 06:30 UTC.
        let ny = tz("America/New_York");
        let daily = every(Frequency::Daily, "01:30");
        let overlap = daily.next_after(ny, utc(2026, 10, 31, 12, 0)).unwrap();
        assert_eq!(overlap, utc(2026, 11, 1, 5, 30));
        let next = daily.next_after(ny, overlap).unwrap();
        assert_eq!(next, utc(2026, 11, 2, 6, 30), "not again at 06:30 UTC");
        // Sydney 2027-04-04: 02:30 happens at 15:30 and 16:30 UTC (Apr 3).
        let sydney = tz("Australia/Sydney");
        let daily = every(Frequency::Daily, "02:30");
        let overlap = daily.next_after(sydney, utc(2027, 4, 3, 0, 0)).unwrap();
        assert_eq!(overlap, utc(2027, 4, 3, 15, 30));
        assert_eq!(
            daily.next_after(sydney, overlap).unwrap(),
            utc(2027, 4, 4, 16, 30)
        );
    }

    #[test]
    fn the_31st_sends_on_the_last_day_of_shorter_months() {
        let chicago = tz("America/Chicago");
        let monthly = every(Frequency::Monthly(31), "10:00");
        let jan = monthly.next_after(chicago, utc(2027, 1, 15, 0, 0)).unwrap();
        assert_eq!(jan, utc(2027, 1, 31, 16, 0));
        let feb = monthly.next_after(chicago, jan).unwrap();
        assert_eq!(feb, utc(2027, 2, 28, 16, 0));
        let mar = monthly.next_after(chicago, feb).unwrap();
        assert_eq!(mar, utc(2027, 3, 31, 15, 0), "CDT by then");
        let apr = monthly.next_after(chicago, mar).unwrap();
        assert_eq!(apr, utc(2027, 4, 30, 15, 0));
        // A leap year's February has its 29th.
        let leap = every(Frequency::Monthly(30), "10:00");
        assert_eq!(
            leap.next_after(chicago, utc(2028, 2, 1, 0, 0)).unwrap(),
            utc(2028, 2, 29, 16, 0)
        );
    }

    #[test]
    fn occurrences_between_two_instants() {
        let ny = tz("America/New_York");
        let daily = every(Frequency::Daily, "09:00");
        let first = utc(2026, 12, 1, 14, 0);
        let missed = daily.between(ny, first, utc(2026, 12, 3, 14, 0), 100);
        assert_eq!(missed, vec![first, utc(2026, 12, 2, 14, 0)]);
        assert!(daily.between(ny, first, first, 100).is_empty());
        assert_eq!(
            daily.between(ny, first, utc(2027, 12, 3, 14, 0), 5).len(),
            5
        );
    }
}
