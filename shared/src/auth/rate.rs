//! Requests per church per minute (API.md, Plans): a counter per church and
//! minute in the table, shared by every Lambda instance, gone by TTL.

use chrono::{DateTime, Utc};

use super::model::Window;
use crate::directory::model::ChurchProfile;
use crate::domain::ChurchId;
use crate::keys;
use crate::ports::table::{Table, TableError};
use crate::store::from_item;

/// Counts this request; `Some(seconds)` to wait when the church is over its
/// rate: its plan's, or the operator's override on its profile.
pub async fn over_limit(
    table: &dyn Table,
    church: ChurchId,
    profile: Option<&ChurchProfile>,
    now: DateTime<Utc>,
) -> Result<Option<u64>, TableError> {
    let limit = profile.map_or(
        u64::from(crate::directory::plans::STARTER.requests_per_minute),
        ChurchProfile::requests_per_minute,
    );
    let minute = now.timestamp().div_euclid(60);
    let update = Window::requested((minute + 2) * 60);
    let counted = table
        .update(&keys::request_window(church, minute), update, None)
        .await?;
    let requests = from_item::<Window>(counted)?.requests;
    Ok((u64::try_from(requests).unwrap_or(0) > limit)
        .then(|| (60 - now.timestamp().rem_euclid(60)).max(1) as u64))
}
