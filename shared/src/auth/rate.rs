//! Requests per church per minute (API.md, Plans): a counter per church and
//! minute in the table, shared by every Lambda instance, gone by TTL.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::directory::plans;
use crate::domain::ChurchId;
use crate::ports::table::{Item, Key, Table, TableError, Update};

fn window_key(church: ChurchId, minute: i64) -> Key {
    Key::new(format!("RATE#{church}"), format!("MINUTE#{minute}"))
}

/// Counts this request; `Some(seconds)` to wait when the church is over its plan's rate.
pub async fn over_limit(
    table: &dyn Table,
    church: ChurchId,
    profile: Option<&Item>,
    now: DateTime<Utc>,
) -> Result<Option<u64>, TableError> {
    let plan = plans::of_profile(profile);
    let minute = now.timestamp().div_euclid(60);
    let update = Update::default()
        .add("requests", 1)
        .set("ttl", (minute + 2) * 60);
    let counted = table
        .update(&window_key(church, minute), update, None)
        .await?;
    let requests = counted.get("requests").and_then(Value::as_i64).unwrap_or(0);
    Ok((requests > i64::from(plan.requests_per_minute))
        .then(|| (60 - now.timestamp().rem_euclid(60)).max(1) as u64))
}
