//! Message templates: texts a church sends again and again (Sunday's
//! reminder, a welcome, a thank-you), kept so the Send page can start from
//! one.
//!
//! Two kinds, one list:
//! - **built-in** ([`DEFAULTS`]): constants in code with stable ids
//!   (`default-welcome-1`), shown to every church, read-only. Living in code,
//!   every church has them from its first day and a new one reaches every
//!   church with the next deploy, no backfill.
//! - **the church's own** ([`Template`]): `TEMPLATE#id` in its partition,
//!   at most [`MAX_TEMPLATES`] (the counter `templates`, checked in the
//!   creating transaction).
//!
//! "Used N times" counts the sends whose text is exactly the template's:
//! the frontend calls nothing when a template is used, it copies the text
//! into the Send box. Each text has a [`TemplateUsage`] item keyed by its
//! SHA-256; saving a template makes sure its text's item exists, and
//! [`count_send`] adds one to the item of a sent text after the send is
//! accepted — only if the item exists (a text no template ever had is not
//! counted, so no item is made per broadcast), or always for a built-in
//! text. Two templates of one text share its count; a deleted template's
//! item stays, so the count goes on if the text is saved again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::directory::model::{Counter, Counters};
use crate::domain::{ChurchId, MessageText, TemplateId};
use crate::error::ApiError;
use crate::http::request::Fields;
use crate::keys;
use crate::ports::table::{Cond, Key, Query, SortCond, Table, TableError, TxOp, Update};
use crate::store::{Entities, Entity, Transaction, TransactionError};

/// The most templates of its own a church keeps.
pub const MAX_TEMPLATES: i64 = 200;
/// The longest template name, in characters.
pub const MAX_NAME: usize = 100;

/// What a template is for; the frontend's labels key on these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    ServiceReminder,
    Event,
    Prayer,
    ThankYou,
    Welcome,
    Offering,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::ServiceReminder,
        Category::Event,
        Category::Prayer,
        Category::ThankYou,
        Category::Welcome,
        Category::Offering,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::ServiceReminder => "service_reminder",
            Category::Event => "event",
            Category::Prayer => "prayer",
            Category::ThankYou => "thank_you",
            Category::Welcome => "welcome",
            Category::Offering => "offering",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw.trim())
    }
}

/// A built-in template: the same for every church, never changed by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTemplate {
    pub id: &'static str,
    pub name: &'static str,
    pub category: Category,
    pub content: &'static str,
}

/// When the built-in templates were written: their `createdAt` and `updatedAt`.
pub const DEFAULTS_SINCE: &str = "2026-12-01T00:00:00+00:00";

/// Every church's built-in templates, two per category. Plain GSM-7 text,
/// each one SMS segment, so using one costs what the admin expects.
pub const DEFAULTS: [DefaultTemplate; 12] = [
    DefaultTemplate {
        id: "default-service_reminder-1",
        name: "Sunday service reminder",
        category: Category::ServiceReminder,
        content: "Join us this Sunday for worship! Service starts at 10am. We can't wait to see you there.",
    },
    DefaultTemplate {
        id: "default-service_reminder-2",
        name: "Midweek service reminder",
        category: Category::ServiceReminder,
        content: "Reminder: midweek service and Bible study is tonight at 7pm. Bring a friend!",
    },
    DefaultTemplate {
        id: "default-event-1",
        name: "Upcoming event",
        category: Category::Event,
        content: "You're invited! Join us for a church family event this weekend. Reply for details or see the bulletin.",
    },
    DefaultTemplate {
        id: "default-event-2",
        name: "Volunteers needed",
        category: Category::Event,
        content: "We need volunteers for our upcoming event. Can you help? Reply YES and we'll be in touch.",
    },
    DefaultTemplate {
        id: "default-prayer-1",
        name: "Prayer request",
        category: Category::Prayer,
        content: "We'd love to pray for you this week. Reply with any prayer request; it stays with our prayer team.",
    },
    DefaultTemplate {
        id: "default-prayer-2",
        name: "Prayer meeting",
        category: Category::Prayer,
        content: "Join us for our prayer meeting this week. All are welcome to come and pray together.",
    },
    DefaultTemplate {
        id: "default-thank_you-1",
        name: "Thank you for serving",
        category: Category::ThankYou,
        content: "Thank you for serving this week! Your time and care make a difference in our church family.",
    },
    DefaultTemplate {
        id: "default-thank_you-2",
        name: "Thank you for visiting",
        category: Category::ThankYou,
        content: "Thank you for worshipping with us! It was a joy to have you. We hope to see you again soon.",
    },
    DefaultTemplate {
        id: "default-welcome-1",
        name: "Welcome, new member",
        category: Category::Welcome,
        content: "Welcome to our church family! We're so glad you're here. Reply anytime if you have questions.",
    },
    DefaultTemplate {
        id: "default-welcome-2",
        name: "Welcome, first-time guest",
        category: Category::Welcome,
        content: "It was great to meet you this Sunday! We'd love to help you get connected. Reply to learn more.",
    },
    DefaultTemplate {
        id: "default-offering-1",
        name: "Giving reminder",
        category: Category::Offering,
        content: "Thank you for your faithful giving. You can give online anytime or during Sunday's service.",
    },
    DefaultTemplate {
        id: "default-offering-2",
        name: "Special offering",
        category: Category::Offering,
        content: "This Sunday we're receiving a special offering for our missions. Thank you for your generosity.",
    },
];

/// A template of the church's own, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub id: TemplateId,
    pub church_id: ChurchId,
    pub name: String,
    pub content: String,
    pub category: Category,
    pub created_at: String,
    pub updated_at: String,
}

impl Entity for Template {
    const KIND: Option<&'static str> = Some("template");
    fn key(&self) -> Key {
        keys::template(self.church_id, self.id)
    }
}

impl Template {
    /// The condition that it is as it was read: `updatedAt` moves on every write.
    fn unchanged_since(updated_at: &str) -> Cond {
        Cond::eq("updatedAt", updated_at)
    }
}

/// How many of a church's sends carried one text exactly; named by its key
/// (the text's SHA-256), written only by ADD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateUsage {
    #[serde(skip)]
    key: Key,
    #[serde(default)]
    uses: i64,
}
/// The `type` of a usage item.
const USAGE_KIND: &str = "template_usage";
crate::store::keyed_by_its_key!(TemplateUsage, Some(USAGE_KIND));

impl TemplateUsage {
    fn key_of(church: ChurchId, content: &str) -> Key {
        keys::template_usage(church, &hex::encode(Sha256::digest(content.as_bytes())))
    }

    /// Adds `by` to the count (0: makes sure the item exists, keeping its count).
    fn add(by: i64) -> Update {
        Update::default()
            .add("uses", by)
            .set(crate::store::KIND, USAGE_KIND)
    }

    /// Makes sure `content`'s item exists, in a template's transaction.
    fn ensure(church: ChurchId, content: &str) -> TxOp {
        TxOp::Update {
            key: Self::key_of(church, content),
            update: Self::add(0),
            cond: None,
        }
    }
}

/// Adds one send to the usage of `content`, if it is a template's text.
/// Best effort, after the send was accepted: a failure is logged and never
/// fails the send (the count is a convenience, the message is the point).
pub async fn count_send(table: &dyn Table, church: ChurchId, content: &str) {
    let built_in = DEFAULTS.iter().any(|d| d.content == content);
    let cond = (!built_in).then_some(Cond::Exists);
    let key = TemplateUsage::key_of(church, content);
    match table.update(&key, TemplateUsage::add(1), cond).await {
        Ok(_) | Err(TableError::ConditionFailed) => {}
        Err(e) => {
            tracing::warn!(church_id = %church, error = %e, "a template's use was not counted");
        }
    }
}

/// A template as the frontend reads it, built-in or the church's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub id: String,
    pub church_id: ChurchId,
    pub name: String,
    pub content: String,
    pub category: Category,
    pub is_default: bool,
    pub usage_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl TemplateView {
    fn of_default(church: ChurchId, d: &DefaultTemplate, usage_count: i64) -> Self {
        Self {
            id: d.id.to_owned(),
            church_id: church,
            name: d.name.to_owned(),
            content: d.content.to_owned(),
            category: d.category,
            is_default: true,
            usage_count,
            created_at: DEFAULTS_SINCE.to_owned(),
            updated_at: DEFAULTS_SINCE.to_owned(),
        }
    }

    fn of(t: Template, usage_count: i64) -> Self {
        Self {
            id: t.id.to_string(),
            church_id: t.church_id,
            name: t.name,
            content: t.content,
            category: t.category,
            is_default: false,
            usage_count,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A template named in a path: built-in, or one of the church's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateRef {
    Default(&'static DefaultTemplate),
    Custom(TemplateId),
}

impl TemplateRef {
    /// `None` names no template at all (a 404, like another church's id).
    pub fn parse(raw: &str) -> Option<Self> {
        if let Some(d) = DEFAULTS.iter().find(|d| d.id == raw) {
            return Some(TemplateRef::Default(d));
        }
        TemplateId::parse(raw).ok().map(TemplateRef::Custom)
    }
}

/// A template's fields as a request gives them (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct TemplateFields {
    pub name: Option<String>,
    pub content: Option<MessageText>,
    pub category: Option<Category>,
}

/// The body of `POST /api/templates` and `PUT /api/templates/:id`.
#[derive(Debug, Default, Deserialize)]
pub struct TemplateBody {
    pub name: Option<String>,
    pub content: Option<String>,
    pub category: Option<String>,
}

impl TemplateBody {
    /// The fields, every bad one named; creating, all three are required.
    pub fn parse(self, creating: bool) -> Result<TemplateFields, ApiError> {
        let mut fields = Fields::default();
        let name = match (&self.name, creating) {
            (None, false) => None,
            (name, _) => fields.text("name", name.as_deref(), 1, MAX_NAME),
        };
        let content = match (self.content.as_deref(), creating) {
            (None, false) => None,
            (raw, _) => match MessageText::parse(raw.unwrap_or("")) {
                Ok(text) => Some(text),
                Err(e) => {
                    fields.error("content", "invalid_content", e.to_string());
                    None
                }
            },
        };
        let category = match (self.category.as_deref(), creating) {
            (None, false) => None,
            (None, true) => {
                fields.error("category", "required", "category is required");
                None
            }
            (Some(raw), _) => Category::parse(raw).or_else(|| {
                fields.error(
                    "category",
                    "invalid_category",
                    "category must be service_reminder, event, prayer, thank_you, welcome or offering",
                );
                None
            }),
        };
        fields.finish()?;
        Ok(TemplateFields {
            name,
            content,
            category,
        })
    }
}

/// What the template use cases can refuse.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template not found")]
    NotFound,
    #[error("built-in templates cannot be changed or deleted; create your own instead")]
    BuiltIn,
    #[error("a church keeps at most {MAX_TEMPLATES} templates; delete one to add another")]
    Limit,
    #[error("the template changed while this update was made; try again")]
    Concurrent,
    #[error(transparent)]
    Table(#[from] TableError),
}

impl<P: std::fmt::Debug> From<TransactionError<P>> for TemplateError {
    fn from(e: TransactionError<P>) -> Self {
        TemplateError::Table(e.into())
    }
}

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::NotFound => ApiError::NotFound { what: "template" },
            TemplateError::BuiltIn => ApiError::Forbidden {
                code: "default_template",
                message: e.to_string(),
            },
            TemplateError::Limit => ApiError::Unprocessable {
                code: "template_limit",
                message: e.to_string(),
            },
            TemplateError::Concurrent => ApiError::Conflict {
                code: "concurrent_update",
                message: e.to_string(),
            },
            TemplateError::Table(e) => ApiError::internal_at("keep the templates", e),
        }
    }
}

/// The church whose templates a use case reads or writes.
pub struct Templates<'a> {
    pub table: &'a dyn Table,
    pub church: ChurchId,
    pub now: DateTime<Utc>,
}

/// The parts of a template's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The template: new, or unchanged since it was read.
    Template,
    /// The church's count of templates, within [`MAX_TEMPLATES`].
    Limit,
    /// Its text's usage item.
    Usage,
}

impl Templates<'_> {
    /// The usage counts of `contents`, in order.
    async fn usage(&self, contents: &[&str]) -> Result<Vec<i64>, TemplateError> {
        let wanted: Vec<Key> = contents
            .iter()
            .map(|c| TemplateUsage::key_of(self.church, c))
            .collect();
        Ok(self
            .table
            .load_many::<TemplateUsage>(&wanted)
            .await?
            .into_iter()
            .map(|u| u.map_or(0, |u| u.uses))
            .collect())
    }

    async fn own(&self, id: TemplateId) -> Result<Template, TemplateError> {
        self.table
            .load(&keys::template(self.church, id))
            .await?
            .ok_or(TemplateError::NotFound)
    }

    async fn view(&self, template: Template) -> Result<TemplateView, TemplateError> {
        let used = self.usage(&[&template.content]).await?;
        Ok(TemplateView::of(template, used[0]))
    }

    /// The church's own templates, newest first, then the built-in ones.
    pub async fn list(&self) -> Result<Vec<TemplateView>, TemplateError> {
        let query = Query::partition(keys::church(self.church))
            .sort(SortCond::BeginsWith(keys::TEMPLATE_PREFIX.into()))
            .descending();
        let own = self.table.find_all::<Template>(query).await?;
        let contents: Vec<&str> = own
            .iter()
            .map(|t| t.content.as_str())
            .chain(DEFAULTS.iter().map(|d| d.content))
            .collect();
        let mut used = self.usage(&contents).await?.into_iter();
        let mut views = Vec::with_capacity(contents.len());
        for template in own {
            views.push(TemplateView::of(template, used.next().unwrap_or(0)));
        }
        for d in &DEFAULTS {
            views.push(TemplateView::of_default(
                self.church,
                d,
                used.next().unwrap_or(0),
            ));
        }
        Ok(views)
    }

    pub async fn create(&self, fields: TemplateFields) -> Result<TemplateView, TemplateError> {
        let stamp = self.now.to_rfc3339();
        let template = Template {
            id: TemplateId::generate(),
            church_id: self.church,
            name: fields.name.unwrap_or_default(),
            content: fields
                .content
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            category: fields.category.unwrap_or(Category::Event),
            created_at: stamp.clone(),
            updated_at: stamp,
        };
        let counted = Counters::default()
            .add(Counter::Templates, 1)
            .allowance(Counter::Templates, MAX_TEMPLATES - 1);
        let creation = Transaction::new()
            .with(Part::Template, TxOp::create(&template)?)
            .with(Part::Limit, counted.op(self.church))
            .with(
                Part::Usage,
                TemplateUsage::ensure(self.church, &template.content),
            );
        match creation.commit(self.table).await {
            Ok(()) => self.view(template).await,
            Err(e) if e.failed(Part::Limit) => Err(TemplateError::Limit),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update(
        &self,
        which: TemplateRef,
        fields: TemplateFields,
    ) -> Result<TemplateView, TemplateError> {
        let TemplateRef::Custom(id) = which else {
            return Err(TemplateError::BuiltIn);
        };
        let before = self.own(id).await?;
        let mut after = before.clone();
        if let Some(name) = fields.name {
            after.name = name;
        }
        if let Some(content) = fields.content {
            after.content = content.as_str().to_owned();
        }
        if let Some(category) = fields.category {
            after.category = category;
        }
        after.updated_at = self.now.to_rfc3339();
        let mut change = Transaction::new().with(
            Part::Template,
            TxOp::put(&after, Some(Template::unchanged_since(&before.updated_at)))?,
        );
        if after.content != before.content {
            change.add(
                Part::Usage,
                TemplateUsage::ensure(self.church, &after.content),
            );
        }
        match change.commit(self.table).await {
            Ok(()) => self.view(after).await,
            Err(e) if e.failed(Part::Template) => Err(TemplateError::Concurrent),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, which: TemplateRef) -> Result<(), TemplateError> {
        let TemplateRef::Custom(id) = which else {
            return Err(TemplateError::BuiltIn);
        };
        let removal = Transaction::new()
            .with(
                Part::Template,
                TxOp::Delete {
                    key: keys::template(self.church, id),
                    cond: Some(Cond::Exists),
                },
            )
            .with(
                Part::Limit,
                Counters::default()
                    .add(Counter::Templates, -1)
                    .op(self.church),
            );
        match removal.commit(self.table).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed(Part::Template) => Err(TemplateError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_are_valid_one_segment_texts_with_unique_ids() {
        let mut ids: Vec<_> = DEFAULTS.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), DEFAULTS.len(), "ids are unique");
        for d in &DEFAULTS {
            let text = MessageText::parse(d.content).unwrap();
            assert_eq!(text.segment_info().segments, 1, "{}", d.id);
            assert_eq!(text.segment_info().encoding, crate::domain::Encoding::Gsm7);
            assert!(d.name.chars().count() <= MAX_NAME, "{}", d.id);
            assert!(d.id.starts_with(&format!("default-{}-", d.category.as_str())));
            assert!(TemplateId::parse(d.id).is_err(), "never mistaken for an id");
        }
        for category in Category::ALL {
            let n = DEFAULTS.iter().filter(|d| d.category == category).count();
            assert!((1..=2).contains(&n), "{category:?} has {n}");
        }
        assert!(DateTime::parse_from_rfc3339(DEFAULTS_SINCE).is_ok());
    }

    #[test]
    fn a_path_names_a_built_in_template_one_of_the_churchs_or_nothing() {
        assert!(matches!(
            TemplateRef::parse("default-welcome-1"),
            Some(TemplateRef::Default(d)) if d.category == Category::Welcome
        ));
        let id = TemplateId::generate();
        assert_eq!(
            TemplateRef::parse(&id.to_string()),
            Some(TemplateRef::Custom(id))
        );
        assert_eq!(TemplateRef::parse("default-welcome-9"), None);
        assert_eq!(TemplateRef::parse("nope"), None);
    }

    fn refused(body: serde_json::Value, creating: bool) -> Vec<(String, String)> {
        let body: TemplateBody = serde_json::from_value(body).unwrap();
        match body.parse(creating) {
            Err(ApiError::Validation(details)) => {
                details.into_iter().map(|d| (d.field, d.code)).collect()
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let named = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
                .collect()
        };
        assert_eq!(
            refused(serde_json::json!({}), true),
            named(&[
                ("name", "required"),
                ("content", "invalid_content"),
                ("category", "required")
            ])
        );
        assert_eq!(
            refused(
                serde_json::json!({"name": "n".repeat(101), "content": "x", "category": "birthday"}),
                true
            ),
            named(&[("name", "too_long"), ("category", "invalid_category")])
        );
        assert_eq!(
            refused(serde_json::json!({"content": "y".repeat(1601)}), false),
            named(&[("content", "invalid_content")])
        );
        let partial: TemplateBody = serde_json::from_value(serde_json::json!({})).unwrap();
        let fields = partial.parse(false).unwrap();
        assert!(fields.name.is_none() && fields.content.is_none() && fields.category.is_none());
    }
}
