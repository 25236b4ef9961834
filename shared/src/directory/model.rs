//! The directory's stored things that are not records of their own use
//! case: the church profile, its counters, and the claims that keep emails,
//! phones, numbers and keywords unique. (Admins, members, branches and
//! groups live beside their use cases: `admins`, `members`, `branches`,
//! `groups`.)

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plans::{self, Plan};
use crate::domain::{AdminId, ChurchId, GroupId, MemberId, PhoneNumber};
use crate::keys;
use crate::ports::table::{Cond, Key, TableError, TxOp, Update};
use crate::scheduling::quiet_hours::QuietHours;

/// The church profile: who the church is, its plan, its sending number and
/// what it says on its own (welcome, help reply). Optional fields are
/// absent until an admin sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChurchProfile {
    #[serde(skip)]
    key: Key,
    pub id: Option<ChurchId>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub trial_ends_at: Option<String>,
    pub subscription_status: Option<String>,
    pub timezone: Option<String>,
    pub plan: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ein_sealed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand_phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub welcome_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_phone_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_linked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_verified: Option<bool>,
    /// When the platform's Telnyx account bought the number, as Telnyx says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_purchased_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sending_mps: Option<u64>,
    /// What the sending number is registered for (set by the operator or
    /// 10DLC registration, never by an admin); unset: [`MAX_MPS`](crate::messaging::pacing::MAX_MPS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_mps: Option<u64>,
    /// API requests a minute this church may make instead of its plan's
    /// (set by the operator for a church that needs more, never by an
    /// admin: PUT /api/admin/profile refuses the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<Value>,
    /// The other profile fields of API.md (address, 10DLC state…), shown
    /// as stored: see [`ChurchProfile::field`].
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// The sending rate of a number nobody registered: an unregistered long code.
pub const DEFAULT_MPS: u32 = 1;

crate::store::keyed_by_its_key!(ChurchProfile, Some("church"));

impl ChurchProfile {
    /// A new church's profile.
    pub fn new(church: ChurchId) -> Self {
        Self {
            key: keys::church_profile(church),
            id: Some(church),
            ..Self::default()
        }
    }

    pub fn key_of(church: ChurchId) -> Key {
        keys::church_profile(church)
    }

    pub fn plan(&self) -> Plan {
        plans::by_name(self.plan.as_deref().unwrap_or("starter"))
    }

    /// The number the church sends from, if one is linked.
    pub fn sending_number(&self) -> Option<PhoneNumber> {
        self.telnyx_phone_number
            .as_deref()
            .and_then(|n| PhoneNumber::parse(n).ok())
    }

    /// API requests it may make a minute: the operator's override, else its plan's.
    pub fn requests_per_minute(&self) -> u64 {
        self.requests_per_minute
            .unwrap_or_else(|| u64::from(self.plan().requests_per_minute))
    }

    /// The most `sendingMps` may say: the number's registered figure, at
    /// most what any number can do.
    pub fn allowed_mps(&self) -> u32 {
        let max = u64::from(crate::messaging::pacing::MAX_MPS);
        self.allowed_mps.map_or(max, |a| a.clamp(1, max)) as u32
    }

    /// Its `sendingMps`, within what its number allows (1 when unset): a
    /// figure stored before a lower registration never outruns it.
    pub fn mps(&self) -> u32 {
        self.sending_mps.map_or(DEFAULT_MPS, |m| {
            m.clamp(1, u64::from(self.allowed_mps())) as u32
        })
    }

    /// Its IANA time zone (the default when unset or unreadable).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(super::churches::DEFAULT_TZ)
    }

    /// Its quiet hours (`None`: turned off).
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        QuietHours::of_profile(self.quiet_hours.as_ref())
    }

    /// The church's name as it signs texts.
    pub fn display_name(&self) -> String {
        non_blank(self.name.as_deref()).unwrap_or_else(|| "This church".into())
    }

    pub fn welcome_message(&self) -> Option<String> {
        non_blank(self.welcome_message.as_deref())
    }

    pub fn help_reply(&self) -> Option<String> {
        non_blank(self.help_reply.as_deref())
    }

    /// How a member reaches the church: its brand phone, website or email.
    pub fn contact(&self) -> Option<String> {
        non_blank(self.brand_phone_number.as_deref())
            .or_else(|| non_blank(self.website.as_deref()))
            .or_else(|| non_blank(self.email.as_deref()))
    }

    /// Every stored profile field by its API name (a view reads this once
    /// and picks what it shows; an unset field is absent or null).
    pub fn fields(&self) -> serde_json::Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        }
    }

    /// The update that links `number` as the sending number, verified
    /// with the carrier as the account's and bought for this church.
    pub fn link_number(number: &PhoneNumber, purchased_at: Option<&str>, now: &str) -> Update {
        let update = Update::default()
            .set("telnyxPhoneNumber", number.as_e164())
            .set("telnyxLinkedAt", now)
            .set("telnyxVerified", true)
            .set("updatedAt", now);
        match purchased_at {
            Some(at) => update.set("telnyxPurchasedAt", at),
            None => update.remove("telnyxPurchasedAt"),
        }
    }

    /// The update of a profile edit: attribute → new value (`Null` clears).
    pub fn edit(changes: Vec<(String, Value)>, ein: Option<Option<String>>, now: &str) -> Update {
        let mut update = Update::default().set("updatedAt", now);
        for (attr, value) in changes {
            update = update.set(&attr, value);
        }
        match ein {
            Some(Some(sealed)) => update.set("einSealed", sealed),
            Some(None) => update.remove("einSealed"),
            None => update,
        }
    }
}

fn non_blank(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// What the church counts (one item, `COUNTERS`): read by the dashboard,
/// the inbox's totals and the plan limits, never by counting items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter<'a> {
    Branches,
    Members,
    Groups,
    CoAdmins,
    /// Broadcasts created (the history's total).
    MessagesCreated,
    /// Messages sent in one month (`2026-11`): the plan's monthly allowance.
    MessagesIn(&'a str),
    /// Conversations in one status (`open`, `closed`, `archived`).
    Conversations(&'a str),
    /// The church's own message templates (`messaging::templates`).
    Templates,
}

impl Counter<'_> {
    fn attribute(self) -> String {
        match self {
            Counter::Branches => "branches".into(),
            Counter::Members => "members".into(),
            Counter::Groups => "groups".into(),
            Counter::CoAdmins => "coAdmins".into(),
            Counter::MessagesCreated => "messagesCreated".into(),
            Counter::MessagesIn(month) => format!("messages#{month}"),
            Counter::Conversations(status) => format!("conversations_{status}"),
            Counter::Templates => "templates".into(),
        }
    }
}

/// The church's counters as read. Written once at registration
/// ([`ChurchCounters::initial`]), then only through [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChurchCounters {
    #[serde(skip)]
    key: Key,
    #[serde(flatten)]
    values: serde_json::Map<String, Value>,
}
crate::store::keyed_by_its_key!(ChurchCounters);

impl ChurchCounters {
    pub fn key_of(church: ChurchId) -> Key {
        keys::church_counters(church)
    }

    /// A new church's counters: its first branch, nothing else yet.
    pub fn initial(church: ChurchId) -> Self {
        let values = [
            (Counter::Branches, 1),
            (Counter::Members, 0),
            (Counter::Groups, 0),
            (Counter::CoAdmins, 0),
        ]
        .into_iter()
        .map(|(counter, n)| (counter.attribute(), json!(n)))
        .collect();
        Self {
            key: Self::key_of(church),
            values,
        }
    }

    pub fn get(&self, counter: Counter<'_>) -> i64 {
        self.values
            .get(&counter.attribute())
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
}

/// Changes to a church's counters, as one transaction op.
#[derive(Debug, Default)]
pub struct Counters {
    update: Update,
    cond: Option<Cond>,
}

impl Counters {
    pub fn add(mut self, counter: Counter<'_>, by: i64) -> Self {
        self.update = self.update.add(&counter.attribute(), by);
        self
    }

    /// The first counter stays below `limit` before this change (a plan limit).
    pub fn below(mut self, counter: Counter<'_>, limit: i64) -> Self {
        self.cond = Some(Cond::Lt(counter.attribute(), json!(limit)));
        self
    }

    /// `counter` is at most `most` before this change (room for a batch).
    pub fn at_most(mut self, counter: Counter<'_>, most: i64) -> Self {
        self.cond = Some(Cond::Le(counter.attribute(), json!(most)));
        self
    }

    /// `counter` is at most `most` before this change, or not counted yet
    /// (a month's first send).
    pub fn allowance(mut self, counter: Counter<'_>, most: i64) -> Self {
        let attribute = counter.attribute();
        self.cond = Some(Cond::Or(vec![
            Cond::Le(attribute.clone(), json!(most)),
            Cond::AttrNotExists(attribute),
        ]));
        self
    }

    /// `counter` is above `least` before this change (never the last one).
    pub fn above(mut self, counter: Counter<'_>, least: i64) -> Self {
        self.cond = Some(Cond::Gt(counter.attribute(), json!(least)));
        self
    }

    pub fn op(self, church: ChurchId) -> TxOp {
        TxOp::Update {
            key: keys::church_counters(church),
            update: self.update,
            cond: self.cond,
        }
    }
}

/// A church's profile and counters, read in one round trip (the counters
/// are absent until the church is registered).
pub async fn profile_and_counters(
    table: &dyn crate::ports::table::Table,
    church: ChurchId,
) -> Result<(Option<ChurchProfile>, Option<ChurchCounters>), crate::ports::table::TableError> {
    let wanted = [
        ChurchProfile::key_of(church),
        ChurchCounters::key_of(church),
    ];
    let mut found = table.get_many(&wanted).await?.into_iter();
    let (profile, counters) = (found.next().flatten(), found.next().flatten());
    Ok((
        profile.map(crate::store::from_item).transpose()?,
        counters.map(crate::store::from_item).transpose()?,
    ))
}

/// A login email's owner: emails are unique across churches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailClaim {
    #[serde(skip)]
    key: Key,
    pub church_id: ChurchId,
    pub admin_id: AdminId,
}
crate::store::keyed_by_its_key!(EmailClaim);

impl EmailClaim {
    pub fn new(email: &str, church_id: ChurchId, admin_id: AdminId) -> Self {
        Self {
            key: keys::email(email),
            church_id,
            admin_id,
        }
    }
}

/// A phone's member at one church (the phone by its HMAC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneClaim {
    #[serde(skip)]
    key: Key,
    pub member_id: MemberId,
}
crate::store::keyed_by_its_key!(PhoneClaim);

impl PhoneClaim {
    pub fn new(church: ChurchId, phone_hash: &str, member_id: MemberId) -> Self {
        Self {
            key: keys::phone_claim(church, phone_hash),
            member_id,
        }
    }
}

/// A sending number's church: how an inbound text finds its church.
///
/// A church that moves off a number releases it into a hold: for
/// [`NUMBER_HOLD`] no other church may link it, so members still texting
/// the old number (a STOP among them) keep reaching the church that has
/// them, never a stranger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberClaim {
    #[serde(skip)]
    key: Key,
    pub church_id: ChurchId,
    pub linked_at: Option<String>,
    /// Released: until when (Unix seconds) it stays out of other churches' reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<i64>,
}
crate::store::keyed_by_its_key!(NumberClaim);

/// How long a released number is held back from other churches.
pub const NUMBER_HOLD: chrono::Duration = chrono::Duration::days(30);

impl NumberClaim {
    pub fn new(number: &PhoneNumber, church_id: ChurchId, linked_at: &str) -> Self {
        Self {
            key: keys::number_claim(number),
            church_id,
            linked_at: Some(linked_at.to_owned()),
            held_until: None,
        }
    }

    /// The claim `church` may take: the number is free, is its own
    /// (held or not), or another church's hold on it is over.
    pub fn take(&self, now: chrono::DateTime<chrono::Utc>) -> Result<TxOp, TableError> {
        TxOp::put(
            self,
            Some(Cond::Or(vec![
                Cond::NotExists,
                Cond::eq("churchId", self.church_id.to_string()),
                Cond::Lt("heldUntil".into(), now.timestamp().into()),
            ])),
        )
    }

    /// Releases `church`'s claim on `number` into its hold.
    pub fn release(
        number: &PhoneNumber,
        church: ChurchId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> TxOp {
        TxOp::Update {
            key: keys::number_claim(number),
            update: Update::default().set("heldUntil", (now + NUMBER_HOLD).timestamp()),
            cond: Some(Cond::eq("churchId", church.to_string())),
        }
    }

    /// Until when another church's claim keeps the number from the caller, if it does.
    pub fn hold_ends(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.held_until
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .filter(|ends| *ends > now)
    }
}

/// A join keyword's group, unique per church.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeywordClaim {
    #[serde(skip)]
    key: Key,
    pub group_id: GroupId,
}
crate::store::keyed_by_its_key!(KeywordClaim);

impl KeywordClaim {
    pub fn new(church: ChurchId, keyword: &str, group_id: GroupId) -> Self {
        Self {
            key: keys::keyword_claim(church, keyword),
            group_id,
        }
    }
}

/// A member's place in a branch or group: the row a broadcast pages through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    #[serde(skip)]
    key: Key,
    pub member_id: MemberId,
    pub since: String,
}
crate::store::keyed_by_its_key!(Membership);

impl Membership {
    pub fn new(church: ChurchId, container: &str, member_id: MemberId, since: &str) -> Self {
        Self {
            key: keys::membership(church, container, member_id),
            member_id,
            since: since.to_owned(),
        }
    }
}
