//! Every key of the single table, built in one place.
//!
//! Tenant data lives under `CHURCH#{churchId}`, and the church id always
//! comes from the verified token, never from a request's body or path — so
//! another church's ids simply find nothing.
//!
//! ## Access patterns
//!
//! | pattern | key condition | index | example |
//! |---|---|---|---|
//! | church profile | pk = `CHURCH#c`, sk = `PROFILE` | table | `CHURCH#01J…`, `PROFILE` |
//! | church counters (members, branches, …) | pk = `CHURCH#c`, sk = `COUNTERS` | table | ADD `members` 1 in the same transaction as the member |
//! | admin of a church | pk = `CHURCH#c`, sk = `ADMIN#a` | table | |
//! | an admin's church, by login email | pk = `EMAIL#e`, sk = `EMAIL` | table | `EMAIL#ruth@grace.org`; conditional put makes emails unique |
//! | admins of a church | pk = `CHURCH#c`, sk begins_with `ADMIN#` | table | co-admin list |
//! | an admin's sessions (refresh-token families) | pk = `ADMIN#a`, sk begins_with `SESSION#` | table | revoke all on refresh-token reuse |
//! | login failures in a window | pk = `THROTTLE#scope#id`, sk = `WINDOW#t` | table | TTL removes old windows |
//!
//! Hot partitions: a church's partition takes its profile, counters and
//! admins — a few writes per admin action. Counters are one item per church,
//! updated with ADD (≈ 1 write unit each); DynamoDB sustains 1,000 write
//! units/s per partition key, far above one church's admin traffic.
//! Per-recipient writes of a broadcast go to per-message partitions (the
//! pipeline issue), never to the church partition.

use crate::domain::{AdminId, ChurchId};
use crate::ports::table::Key;

pub fn church(church: ChurchId) -> String {
    format!("CHURCH#{church}")
}

pub fn church_profile(church_id: ChurchId) -> Key {
    Key::new(church(church_id), "PROFILE")
}

pub fn church_counters(church_id: ChurchId) -> Key {
    Key::new(church(church_id), "COUNTERS")
}

pub const ADMIN_PREFIX: &str = "ADMIN#";

pub fn admin(church_id: ChurchId, admin: AdminId) -> Key {
    Key::new(church(church_id), format!("{ADMIN_PREFIX}{admin}"))
}

/// Login emails are unique across all churches; the key holds the lower-cased address.
pub fn email(address: &str) -> Key {
    let pk = format!("EMAIL#{}", address.to_lowercase());
    Key::new(pk, "EMAIL")
}

pub const SESSION_PREFIX: &str = "SESSION#";

pub fn sessions(admin: AdminId) -> String {
    format!("ADMIN#{admin}")
}

pub fn session(admin: AdminId, session: &str) -> Key {
    Key::new(sessions(admin), format!("{SESSION_PREFIX}{session}"))
}

/// A fixed window of login failures for one email (hashed) or one client IP.
pub fn throttle(scope: &str, id: &str, window_start: i64) -> Key {
    Key::new(
        format!("THROTTLE#{scope}#{id}"),
        format!("WINDOW#{window_start}"),
    )
}

pub const BRANCH_PREFIX: &str = "BRANCH#";

pub fn branch(church_id: ChurchId, branch: crate::domain::BranchId) -> Key {
    Key::new(church(church_id), format!("{BRANCH_PREFIX}{branch}"))
}

pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn member(church_id: ChurchId, member: crate::domain::MemberId) -> Key {
    Key::new(church(church_id), format!("{MEMBER_PREFIX}{member}"))
}

/// One member per phone per church: the claim is keyed by the phone's HMAC.
pub fn phone_claim(church_id: ChurchId, phone_hash: &str) -> Key {
    Key::new(church(church_id), format!("PHONE#{phone_hash}"))
}

/// GSI1 partition of a church's members, sorted by "first last".
pub fn members_by_first_name(church_id: ChurchId) -> String {
    format!("CHURCH#{church_id}#NAME")
}

/// GSI2 partition of a church's members, sorted by "last first".
pub fn members_by_last_name(church_id: ChurchId) -> String {
    format!("CHURCH#{church_id}#LASTNAME")
}

/// Lower-cased, single-spaced: the form names are indexed and searched in.
pub fn name_key(first: &str, second: &str) -> String {
    format!("{first} {second}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A member's place in a branch or group: `IN#BRANCH#b#m`, `IN#GROUP#g#m`.
pub fn membership(church_id: ChurchId, container: &str, member: crate::domain::MemberId) -> Key {
    Key::new(church(church_id), format!("IN#{container}#{member}"))
}

pub fn memberships_prefix(container: &str) -> String {
    format!("IN#{container}#")
}

pub fn branch_container(branch: crate::domain::BranchId) -> String {
    format!("BRANCH#{branch}")
}

pub fn group_container(group: crate::domain::GroupId) -> String {
    format!("GROUP#{group}")
}

pub const GROUP_PREFIX: &str = "GROUP#";

pub fn group(church_id: ChurchId, group: crate::domain::GroupId) -> Key {
    Key::new(church(church_id), format!("{GROUP_PREFIX}{group}"))
}
