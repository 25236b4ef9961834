//! Fires the template's scheduled functions on their `rate(…)` / `cron(…)`
//! expressions (UTC), with the event EventBridge Scheduler would send.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::watch;

use crate::app::App;
use crate::registry::ScheduleHandler;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<cron::Schedule>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule expression {0:?} is not rate(N unit) or a six-field cron(…)")]
pub struct ScheduleError(pub String);

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let bad = || ScheduleError(expression.to_owned());
        let inner = |prefix: &str| {
            expression
                .trim()
                .strip_prefix(prefix)
                .and_then(|s| s.strip_suffix(')'))
        };
        if let Some(rate) = inner("rate(") {
            let (count, unit) = rate.trim().split_once(' ').ok_or_else(bad)?;
            let count: u64 = count.parse().ok().filter(|c| *c > 0).ok_or_else(bad)?;
            let unit_secs = match unit.trim() {
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3_600,
                "day" | "days" => 86_400,
                _ => return Err(bad()),
            };
            return Ok(Schedule::Every(Duration::from_secs(count * unit_secs)));
        }
        if let Some(fields) = inner("cron(") {
            // AWS: minutes hours day-of-month month day-of-week year.
            // The cron crate wants seconds first; its day-of-week is 1 = Sunday, as AWS's.
            if fields.split_whitespace().count() != 6 {
                return Err(bad());
            }
            let schedule = cron::Schedule::from_str(&format!("0 {fields}")).map_err(|_| bad())?;
            return Ok(Schedule::Cron(Box::new(schedule)));
        }
        Err(bad())
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(every) => Some(after + chrono::Duration::from_std(*every).ok()?),
            Schedule::Cron(schedule) => schedule.after(&after).next(),
        }
    }
}

pub fn scheduled_event(
    function_id: &str,
    at: DateTime<Utc>,
) -> Result<EventBridgeEvent<serde_json::Value>, serde_json::Error> {
    serde_json::from_value(json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "local",
        "resources": [format!("arn:aws:scheduler:local:000000000000:schedule/default/{function_id}")],
        "detail": {},
    }))
}

pub async fn run(
    app: Arc<App>,
    function_id: String,
    schedule: Schedule,
    handler: ScheduleHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut from = Utc::now();
    while let Some(at) = schedule.next_after(from) {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        match scheduled_event(&function_id, at) {
            Ok(event) => {
                if let Err(e) = handler(&app, event).await {
                    tracing::error!(function = %function_id, error = %e, "scheduled invocation failed");
                }
            }
            Err(e) => {
                tracing::error!(function = %function_id, error = %e, "could not build the scheduled event")
            }
        }
        from = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rate_and_cron_expressions_parse_as_aws_writes_them() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 10, 7, 0).unwrap();
        let every = Schedule::parse("rate(5 minutes)").unwrap();
        assert_eq!(
            every.next_after(start),
            Some(start + chrono::Duration::minutes(5))
        );
        // Every Sunday (1) at 09:30 UTC; 2026-11-25 is a Wednesday.
        let sunday = Schedule::parse("cron(30 9 ? * 1 *)").unwrap();
        assert_eq!(
            sunday.next_after(start),
            Some(Utc.with_ymd_and_hms(2026, 11, 29, 9, 30, 0).unwrap())
        );
        let each_minute = Schedule::parse("cron(* * * * ? *)").unwrap();
        assert_eq!(
            each_minute.next_after(start),
            Some(start + chrono::Duration::minutes(1))
        );
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for bad in [
            "rate(0 minutes)",
            "rate(5 fortnights)",
            "cron(* * * *)",
            "every day",
            "cron(61 * * * ? *)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
