//! The table port: one DynamoDB-style single table.
//!
//! Items are JSON objects with string keys `pk` and `sk`; optional `gsi1pk`/
//! `gsi1sk` and `gsi2pk`/`gsi2sk` place an item in the two global secondary
//! indexes; a numeric `ttl` (Unix seconds) expires it. Conditions and updates
//! are typed values rather than expression strings, so the embedded adapter
//! can evaluate exactly what the DynamoDB adapter renders.
//!
//! AWS's limits are checked here, before any adapter runs, so neither adapter
//! depends on its backend (or an emulator) to enforce them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::BackendError;

pub type Item = Map<String, Value>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TTL: &str = "ttl";

/// DynamoDB's per-request limits.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_TRANSACTION_OPS: usize = 100;
pub const BATCH_WRITE_CHUNK: usize = 25;
pub const BATCH_GET_CHUNK: usize = 100;
pub const MAX_KEY_BYTES: usize = 1024;

/// `Default` is the empty key, which every write refuses: an entity read
/// back gets its real key from the item (`Entity::keyed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// The key of an item, if it has string `pk` and `sk` attributes.
    pub fn of(item: &Item) -> Result<Self, TableError> {
        let get = |name: &str| {
            item.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    TableError::Invalid(format!("item needs a non-empty string `{name}`"))
                })
        };
        Ok(Self::new(get(PK)?, get(SK)?))
    }
}

/// Which index a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

impl Index {
    /// Partition and sort attribute names of the index.
    pub fn key_attributes(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (PK, SK),
            Index::Gsi1 => ("gsi1pk", "gsi1sk"),
            Index::Gsi2 => ("gsi2pk", "gsi2sk"),
        }
    }

    /// The index name in DynamoDB (`None` for the table itself).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Index::Primary => None,
            Index::Gsi1 => Some("gsi1"),
            Index::Gsi2 => Some("gsi2"),
        }
    }
}

/// A condition on the item currently stored under a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// An item is stored under the key.
    Exists,
    /// No item is stored under the key.
    NotExists,
    AttrExists(String),
    AttrNotExists(String),
    Eq(String, Value),
    Ne(String, Value),
    Lt(String, Value),
    Le(String, Value),
    Gt(String, Value),
    Ge(String, Value),
    /// The attribute equals one of the values (a state machine's allowed sources).
    In(String, Vec<Value>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn eq(attr: &str, value: impl Into<Value>) -> Self {
        Cond::Eq(attr.to_owned(), value.into())
    }
}

/// Changes to one item; applied to an empty item when none is stored (upsert).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Vec<(String, Value)>,
    /// Set only when the attribute is absent (`if_not_exists`).
    pub set_if_absent: Vec<(String, Value)>,
    /// Atomic counters: add to a number, starting from 0.
    pub add: Vec<(String, i64)>,
    pub remove: Vec<String>,
}

impl Update {
    pub fn set(mut self, attr: &str, value: impl Into<Value>) -> Self {
        self.set.push((attr.to_owned(), value.into()));
        self
    }
    pub fn set_if_absent(mut self, attr: &str, value: impl Into<Value>) -> Self {
        self.set_if_absent.push((attr.to_owned(), value.into()));
        self
    }
    pub fn add(mut self, attr: &str, by: i64) -> Self {
        self.add.push((attr.to_owned(), by));
        self
    }
    pub fn remove(mut self, attr: &str) -> Self {
        self.remove.push(attr.to_owned());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.set_if_absent.is_empty()
            && self.add.is_empty()
            && self.remove.is_empty()
    }

    /// Every attribute the update touches, to reject key changes and clashes.
    fn attributes(&self) -> impl Iterator<Item = &str> {
        self.set
            .iter()
            .chain(&self.set_if_absent)
            .map(|(a, _)| a.as_str())
            .chain(self.add.iter().map(|(a, _)| a.as_str()))
            .chain(self.remove.iter().map(String::as_str))
    }
}

/// A condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortCond {
    BeginsWith(String),
    /// Inclusive at both ends, as DynamoDB's BETWEEN.
    Between(String, String),
    Eq(String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

/// Where a page ended; pass it back to read the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort: Option<SortCond>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
    /// Ascending sort-key order when true; newest-first queries set false.
    pub ascending: bool,
    /// Answer only the key attributes (table and index keys): for skipping
    /// ahead cheaply, e.g. to page 40 of a directory.
    pub keys_only: bool,
}

impl Query {
    pub fn partition(partition: impl Into<String>) -> Self {
        Self {
            index: Index::Primary,
            partition: partition.into(),
            sort: None,
            limit: 100,
            cursor: None,
            ascending: true,
            keys_only: false,
        }
    }
    pub fn index(mut self, index: Index) -> Self {
        self.index = index;
        self
    }
    pub fn sort(mut self, sort: SortCond) -> Self {
        self.sort = Some(sort);
        self
    }
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }
    pub fn descending(mut self) -> Self {
        self.ascending = false;
        self
    }
    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// `None` when nothing is left.
    pub cursor: Option<Cursor>,
}

/// One write of a transaction; all succeed or none does.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        cond: Option<Cond>,
    },
    Update {
        key: Key,
        update: Update,
        cond: Option<Cond>,
    },
    Delete {
        key: Key,
        cond: Option<Cond>,
    },
    Check {
        key: Key,
        cond: Cond,
    },
}

impl TxOp {
    /// Puts `item` (a JSON object) only if nothing is stored under its key.
    pub fn put_new(item: Value) -> Self {
        TxOp::Put {
            item: match item {
                Value::Object(map) => map,
                _ => Item::new(),
            },
            cond: Some(Cond::NotExists),
        }
    }

    pub fn key(&self) -> Result<Key, TableError> {
        match self {
            TxOp::Put { item, .. } => Key::of(item),
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => {
                Ok(key.clone())
            }
        }
    }
}

/// One write of a batch; unconditional, and not atomic with the others.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put(Item),
    Delete(Key),
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The condition of a single-item write did not hold.
    #[error("the condition of the write did not hold")]
    ConditionFailed,
    /// A transaction was cancelled; `failed` lists the ops whose condition did not hold.
    #[error("transaction cancelled: conditions failed on operations {failed:?}")]
    TransactionCancelled { failed: Vec<usize> },
    /// Another transaction was writing one of its items at the same moment
    /// (DynamoDB's `TransactionConflict`): nothing was written; try again.
    #[error("a concurrent transaction held one of the items")]
    Conflict,
    /// A request AWS would reject (our bug, never a client's).
    #[error("invalid table request: {0}")]
    Invalid(String),
    /// A cursor that this table did not produce.
    #[error("invalid cursor")]
    BadCursor,
    #[error("table backend failed while trying to {action}")]
    Backend {
        action: &'static str,
        #[source]
        source: BackendError,
    },
}

impl TableError {
    pub fn backend(action: &'static str, source: impl Into<BackendError>) -> Self {
        TableError::Backend {
            action,
            source: source.into(),
        }
    }
}

#[async_trait]
pub trait Table: Send + Sync {
    /// The item under `key`, unless absent or past its TTL.
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;
    /// The items under `keys`, in the same order (any number; read 100 at a time).
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError>;
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError>;
    /// Applies `update` (creating the item if absent) and returns the item after it.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, TableError>;
    /// Deletes and returns the old item, if any.
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError>;
    /// All-or-nothing writes to at most 100 distinct items.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError>;
    /// Any number of unconditional writes, sent 25 at a time until all land.
    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError>;
    async fn query(&self, query: Query) -> Result<Page, TableError>;
}

/// Every item a query matches, following cursors page by page. For small
/// sets only (a church's branches or groups), never for audiences.
pub async fn query_all<T: Table + ?Sized>(
    table: &T,
    query: Query,
) -> Result<Vec<Item>, TableError> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = table.query(query.clone().after(cursor)).await?;
        items.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(items);
        }
    }
}

/// Skips `skip` items reading keys only, then reads up to `take` whole items.
pub async fn window(
    table: &dyn Table,
    query: Query,
    skip: usize,
    take: usize,
) -> Result<(Vec<Item>, Option<String>), TableError> {
    let mut cursor = query.cursor.clone();
    let mut skipped = 0;
    while skipped < skip {
        let wanted = (skip - skipped).min(1_000) as u32;
        let page = table
            .query(query.clone().keys_only().limit(wanted).after(cursor))
            .await?;
        skipped += page.items.len();
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok((Vec::new(), None));
        }
    }
    let mut items = Vec::with_capacity(take);
    loop {
        let page = table
            .query(
                query
                    .clone()
                    .limit((take - items.len()).clamp(1, 1_000) as u32)
                    .after(cursor),
            )
            .await?;
        items.extend(page.items);
        cursor = page.cursor;
        if items.len() >= take || cursor.is_none() {
            items.truncate(take);
            return Ok((items, cursor.map(|c| c.0)));
        }
    }
}

/// Checks shared by both adapters, so AWS's limits hold whatever the backend.
pub mod limits {
    use std::collections::HashSet;

    use super::*;

    pub fn check_key(key: &Key) -> Result<(), TableError> {
        if key.pk.is_empty() || key.sk.is_empty() {
            return Err(TableError::Invalid(
                "key attributes must not be empty".into(),
            ));
        }
        if key.pk.len() > 2048 || key.sk.len() > MAX_KEY_BYTES {
            return Err(TableError::Invalid("key attribute too long".into()));
        }
        Ok(())
    }

    pub fn check_item(item: &Item) -> Result<Key, TableError> {
        let key = Key::of(item)?;
        check_key(&key)?;
        let size = serde_json::to_vec(item)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_ITEM_BYTES {
            return Err(TableError::Invalid(format!(
                "item {}/{} is {size} bytes; the limit is {MAX_ITEM_BYTES}",
                key.pk, key.sk
            )));
        }
        for (index, (p, s)) in [Index::Gsi1, Index::Gsi2].map(|i| (i, i.key_attributes())) {
            for attr in [p, s] {
                if let Some(v) = item.get(attr)
                    && !v.is_string()
                {
                    return Err(TableError::Invalid(format!(
                        "{attr} ({index:?} key) must be a string"
                    )));
                }
            }
        }
        if let Some(ttl) = item.get(TTL)
            && !ttl.is_i64()
        {
            return Err(TableError::Invalid("ttl must be whole Unix seconds".into()));
        }
        Ok(key)
    }

    pub fn check_update(update: &Update) -> Result<(), TableError> {
        if update.is_empty() {
            return Err(TableError::Invalid("update changes nothing".into()));
        }
        let mut seen = HashSet::new();
        for attr in update.attributes() {
            if attr == PK || attr == SK {
                return Err(TableError::Invalid(
                    "an update cannot change the key".into(),
                ));
            }
            if !seen.insert(attr) {
                return Err(TableError::Invalid(format!(
                    "update touches `{attr}` twice"
                )));
            }
        }
        Ok(())
    }

    pub fn check_transaction(ops: &[TxOp]) -> Result<(), TableError> {
        if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
            return Err(TableError::Invalid(format!(
                "a transaction takes 1 to {MAX_TRANSACTION_OPS} operations, not {}",
                ops.len()
            )));
        }
        let mut keys = HashSet::new();
        for op in ops {
            let key = match op {
                TxOp::Put { item, .. } => check_item(item)?,
                TxOp::Update { key, update, .. } => {
                    check_update(update)?;
                    key.clone()
                }
                TxOp::Delete { key, .. } | TxOp::Check { key, .. } => key.clone(),
            };
            check_key(&key)?;
            if !keys.insert(key) {
                return Err(TableError::Invalid(
                    "a transaction cannot touch one item twice".into(),
                ));
            }
        }
        Ok(())
    }

    /// Validates a batch and cuts it into requests of at most 25 writes.
    pub fn batch_chunks(ops: Vec<WriteOp>) -> Result<Vec<Vec<WriteOp>>, TableError> {
        let mut keys = HashSet::new();
        for op in &ops {
            let key = match op {
                WriteOp::Put(item) => check_item(item)?,
                WriteOp::Delete(key) => {
                    check_key(key)?;
                    key.clone()
                }
            };
            if !keys.insert(key) {
                return Err(TableError::Invalid(
                    "a batch cannot write one item twice".into(),
                ));
            }
        }
        let mut chunks = Vec::with_capacity(ops.len().div_ceil(BATCH_WRITE_CHUNK));
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            chunks.push(ops.by_ref().take(BATCH_WRITE_CHUNK).collect());
        }
        Ok(chunks)
    }

    pub fn check_query(query: &Query) -> Result<(), TableError> {
        if query.partition.is_empty() {
            return Err(TableError::Invalid(
                "query partition must not be empty".into(),
            ));
        }
        if query.limit == 0 {
            return Err(TableError::Invalid("query limit must be at least 1".into()));
        }
        Ok(())
    }
}

/// Whether an item has outlived its `ttl`. DynamoDB deletes expired items
/// lazily (within days), so both adapters hide them on read.
pub fn is_expired(item: &Item, now_unix: i64) -> bool {
    item.get(TTL)
        .and_then(Value::as_i64)
        .is_some_and(|ttl| ttl <= now_unix)
}
