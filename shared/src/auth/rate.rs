//! Requests per church per minute (API.md, Plans): a counter per church and
//! minute in the table, shared by every Lambda instance, gone by TTL.

use chrono::{DateTime, Utc};

use super::model::Window;
use crate::directory::model::ChurchProfile;
use crate::domain::ChurchId;
use crate::keys;
use crate::ports::table::{Table, TableError};
use crate::store::from_item;

/// Counts this request; `Some(seconds)` to wait when the church is over its plan's rate.
pub async fn over_limit(
    table: &dyn Table,
    church: ChurchId,
    profile: Option<&ChurchProfile>,
    now: DateTime<Utc>,
) -> Result<Option<u64>, TableError> {
    let plan = profile.map_or(crate::directory::plans::STARTER, ChurchProfile::plan);
    let minute = now.timestamp().div_euclid(60);
    let update = Window::requested((minute + 2) * 60);
    let counted = table
        .update(&keys::request_window(church, minute), update, None)
        .await?;
    let requests = from_item::<Window>(counted)?.requests;
    Ok((requests > i64::from(plan.requests_per_minute))
        .then(|| (60 - now.timestamp().rem_euclid(60)).max(1) as u64))
}
