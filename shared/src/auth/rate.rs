//! Requests per church per minute (API.md, Plans): a counter per church and
//! minute in the table, shared by every Lambda instance, gone by TTL.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::directory::plans;
use crate::domain::ChurchId;
use crate::keys;
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
    let plan = plans::by_name(
        profile
            .and_then(|p| p.get("plan"))
            .and_then(Value::as_str)
            .unwrap_or("starter"),
    );
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

/// The church profile's key, read with the session in one batch.
pub fn profile_key(church: ChurchId) -> Key {
    keys::church_profile(church)
}
