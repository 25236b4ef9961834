//! The auth side's stored things: sessions and the counting windows of
//! login failures and of a church's requests.

use serde::{Deserialize, Serialize};

use super::tokens::Role;
use crate::domain::{AdminId, ChurchId};
use crate::keys;
use crate::ports::table::{Cond, Key, Update};
use crate::store::Entity;

/// One login: the id of the only refresh token that may be used next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(skip)]
    key: Key,
    pub church_id: ChurchId,
    pub role: Role,
    /// The id of the refresh token that may be used next.
    pub jti: String,
    pub created_at: String,
    /// When the refresh token expires; the session goes with it.
    pub ttl: i64,
}

crate::store::keyed_by_its_key!(Session, Some("session"));

impl Session {
    pub fn new(
        admin: AdminId,
        sid: &str,
        church_id: ChurchId,
        role: Role,
        jti: String,
        created_at: String,
        ttl: i64,
    ) -> Self {
        Self {
            key: keys::session(admin, sid),
            church_id,
            role,
            jti,
            created_at,
            ttl,
        }
    }

    /// Rotation: the next token replaces `used`, only if `used` is the current one.
    pub fn rotate(used: &str, next: String, expires: i64, now: &str) -> (Update, Cond) {
        (
            Update::default()
                .set("jti", next)
                .set(crate::ports::table::TTL, expires)
                .set("rotatedAt", now),
            Cond::And(vec![Cond::Exists, Cond::eq("jti", used)]),
        )
    }
}

/// A count in a fixed window: login failures of one subject, or one
/// church's requests in a minute. Gone by TTL once the window is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Window {
    pub failures: i64,
    pub requests: i64,
}

impl Entity for Window {
    const KIND: Option<&'static str> = None;
    /// Only ever written by its counting updates, read by key.
    fn key(&self) -> Key {
        Key::default()
    }
}

impl Window {
    pub fn failed(ttl: i64) -> Update {
        Update::default()
            .add("failures", 1)
            .set(crate::ports::table::TTL, ttl)
    }

    pub fn requested(ttl: i64) -> Update {
        Update::default()
            .add("requests", 1)
            .set(crate::ports::table::TTL, ttl)
    }
}
