//! Plans and their limits (API.md, Conventions — seed figures). A 14-day
//! trial has starter limits. Limits are enforced atomically: the counter
//! increment that admits a new branch, member or co-admin carries the
//! condition "still under the limit".

use super::model::ChurchProfile;

/// What `GET /api/billing/plan` answers for "no limit": the frontend reads
/// 999999 as unlimited (and any limit above 100,000 as such).
pub const UNLIMITED: i64 = 999_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub name: &'static str,
    /// Monthly price in US cents (the frontend shows it divided by 100).
    pub price_cents: u32,
    pub branches: u32,
    /// `None` = unlimited.
    pub members: Option<u32>,
    pub messages_per_month: Option<u32>,
    pub co_admins: u32,
    /// API requests per church per minute.
    pub requests_per_minute: u32,
    pub features: &'static [&'static str],
}

pub const STARTER: Plan = Plan {
    name: "starter",
    price_cents: 4_900,
    branches: 1,
    members: Some(500),
    messages_per_month: Some(1_000),
    co_admins: 1,
    requests_per_minute: 100,
    features: &["sms", "groups", "templates"],
};

pub const GROWTH: Plan = Plan {
    name: "growth",
    price_cents: 7_900,
    branches: 5,
    members: Some(2_000),
    messages_per_month: Some(5_000),
    co_admins: 3,
    requests_per_minute: 300,
    features: &[
        "sms",
        "mms",
        "groups",
        "templates",
        "recurring",
        "analytics",
    ],
};

pub const PRO: Plan = Plan {
    name: "pro",
    price_cents: 12_900,
    branches: 10,
    members: None,
    messages_per_month: None,
    co_admins: 3,
    requests_per_minute: 1_000,
    features: &[
        "sms",
        "mms",
        "groups",
        "templates",
        "recurring",
        "analytics",
        "priority_support",
    ],
};

/// The plan of a church, read from its profile.
pub async fn of_church(
    table: &dyn crate::ports::table::Table,
    church: crate::domain::ChurchId,
) -> Result<Plan, crate::ports::table::TableError> {
    use crate::store::Entities;
    let profile: Option<ChurchProfile> = table.load(&ChurchProfile::key_of(church)).await?;
    Ok(profile.map_or(STARTER, |p| p.plan()))
}

pub fn by_name(name: &str) -> Plan {
    match name {
        "growth" => GROWTH,
        "pro" => PRO,
        _ => STARTER,
    }
}
