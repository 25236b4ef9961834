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
    /// `iat` of the current refresh token: with `jti` and `ttl` it re-signs
    /// that token byte for byte, so tabs that refreshed at once get the
    /// same successor without the table ever holding a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// The refresh token the current one replaced, still answered (with the
    /// current one) until `grace_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<i64>,
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
            issued_at: None,
            previous_jti: None,
            grace_until: None,
        }
    }

    /// Rotation: the next token (`jti`, `iat`, `exp`) replaces `used`, only
    /// if `used` is the current one; `used` stays answerable until `grace_until`.
    pub fn rotate(used: &str, next: &Next, grace_until: i64, now: &str) -> (Update, Cond) {
        (
            Update::default()
                .set("jti", next.jti.as_str())
                .set("issuedAt", next.iat)
                .set(crate::ports::table::TTL, next.exp)
                .set("previousJti", used)
                .set("graceUntil", grace_until)
                .set("rotatedAt", now),
            Cond::And(vec![Cond::Exists, Cond::eq("jti", used)]),
        )
    }

    /// A replay of `used` within its grace window: the condition and the
    /// read of the successor are one write, so no rotation can slip between
    /// deciding "grace" and answering. Counts the replays, for the record.
    pub fn replay(used: &str, now_unix: i64) -> (Update, Cond) {
        (
            Update::default().add("replays", 1),
            Cond::And(vec![
                Cond::Exists,
                Cond::eq("previousJti", used),
                Cond::Gt("graceUntil".into(), now_unix.into()),
            ]),
        )
    }
}

/// What a rotation stores of the refresh token it issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// A count in a fixed window: login failures of one subject, or one
/// church's requests in a minute. Gone by TTL once the window is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Window {
    /// Login attempts admitted to a password check (successes are given back).
    pub attempts: i64,
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
    /// Counts one login attempt, only while fewer than `limit` are counted:
    /// the count is the decision, so parallel attempts can never pass more
    /// than `limit` password checks.
    pub fn attempted(limit: i64, ttl: i64) -> (Update, Cond) {
        (
            Update::default()
                .add("attempts", 1)
                .set(crate::ports::table::TTL, ttl),
            Cond::Or(vec![
                Cond::AttrNotExists("attempts".into()),
                Cond::Lt("attempts".into(), limit.into()),
            ]),
        )
    }

    /// Gives an attempt back (the login succeeded, or another subject refused it).
    pub fn given_back() -> Update {
        Update::default().add("attempts", -1)
    }

    pub fn requested(ttl: i64) -> Update {
        Update::default()
            .add("requests", 1)
            .set(crate::ports::table::TTL, ttl)
    }
}
