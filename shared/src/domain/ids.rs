//! Typed, time-sortable identifiers.
//!
//! Every id is a ULID: 26 Crockford base32 characters whose first ten encode
//! the creation millisecond, so sort keys built from ids sort by creation time
//! and a church's newest items are one `ScanIndexForward = false` query away.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a 26-character ULID")]
pub struct IdError {
    pub kind: &'static str,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// A fresh id, ordered after every id made earlier.
            pub fn generate() -> Self {
                Self(Ulid::new())
            }

            /// The id right after this one, in the same millisecond: an
            /// answer made with it sorts after what it answers.
            pub fn successor(&self) -> Self {
                Self(self.0.increment().unwrap_or(self.0))
            }

            /// Parses an id received from outside (a path, a body, a token).
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                Ulid::from_str(raw.trim())
                    .map(Self)
                    .map_err(|_| IdError { kind: $kind })
            }

            /// Which of `buckets` the id falls in, spread evenly by its
            /// random part (a ULID's last 80 bits).
            pub fn bucket(&self, buckets: u32) -> u32 {
                (self.0.random() % u128::from(buckets.max(1))) as u32
            }

            /// When the id was made, to the millisecond.
            pub fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
                chrono::DateTime::<chrono::Utc>::from(self.0.datetime())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A church: the tenant. Every key of tenant data begins with it.
    ChurchId,
    "churchId"
);
define_id!(
    /// An administrator of one church (PRIMARY or CO_ADMIN).
    AdminId,
    "adminId"
);
define_id!(
    /// A member of a church's directory.
    MemberId,
    "memberId"
);
define_id!(
    /// A branch (campus) of a church.
    BranchId,
    "branchId"
);
define_id!(
    /// A group inside a church.
    GroupId,
    "groupId"
);
define_id!(
    /// A broadcast or a conversation reply.
    MessageId,
    "messageId"
);
define_id!(
    /// A church's own message template (the built-in ones are named, not ids).
    TemplateId,
    "templateId"
);
define_id!(
    /// A conversation: one phone's texts with one church.
    ConversationId,
    "conversationId"
);
define_id!(
    /// A file uploaded for an MMS.
    MediaId,
    "mediaId"
);
define_id!(
    /// A recurring message of a church.
    RecurringId,
    "recurringId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id = ChurchId::generate();
        assert_eq!(ChurchId::parse(&id.to_string()), Ok(id));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ChurchId>(&json).unwrap(), id);
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = MessageId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = MessageId::generate();
        assert!(first.to_string() < second.to_string());
    }

    #[test]
    fn garbage_is_rejected_with_the_kind_named() {
        let err = MemberId::parse("../../etc/passwd").unwrap_err();
        assert_eq!(err.to_string(), "memberId must be a 26-character ULID");
        assert!(serde_json::from_str::<MemberId>("\"short\"").is_err());
        assert!(MemberId::parse("").is_err());
    }
}
