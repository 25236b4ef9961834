//! Stored things as types. Every item of the single table is an [`Entity`]:
//! a serde struct that owns its key (and index keys), converted to and from
//! the table port's JSON items here and nowhere else. Use cases read and
//! write entities; the table port (and its two adapters) stay untyped
//! underneath, so conditions and updates still name attributes — but only
//! inside the entity's own module, through its constants and methods.
//!
//! Where things live: an entity in its area's `model` module
//! (`directory::model`, `messaging::model`, `conversations::model`,
//! `auth::model`), its keys in [`crate::keys`], its use cases beside the
//! model, its routes in `handlers`.

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ports::table::{Cond, Index, Item, Key, Query, Table, TableError, TxOp, WriteOp};

/// The attribute naming an item's kind, so a scan of the table reads.
pub const KIND: &str = "type";

/// A stored thing: its fields are the item's attributes.
pub trait Entity: Serialize + DeserializeOwned + Send + Sync {
    /// The `type` attribute stored with it (`None` for bare claims and
    /// counters, which were always stored without one).
    const KIND: Option<&'static str>;

    fn key(&self) -> Key;

    /// Takes the key it was stored under, for entities whose key parts are
    /// not attributes of their own (claims, rows named by their key).
    fn keyed(self, _key: Key) -> Self {
        self
    }

    /// Its places in the secondary indexes, if any.
    fn index_keys(&self) -> Vec<(Index, String, String)> {
        Vec::new()
    }
}

/// Implements [`Entity`] for a thing named by its key alone: its key parts
/// are not attributes of its own (claims, counting windows, a day's
/// figures), so it holds the `key` it was built with or read from.
/// `keyed_by_its_key!(Session, Some("session"))`; the kind defaults to none.
macro_rules! keyed_by_its_key {
    ($name:ty) => {
        $crate::store::keyed_by_its_key!($name, None);
    };
    ($name:ty, $kind:expr) => {
        impl $crate::store::Entity for $name {
            const KIND: Option<&'static str> = $kind;
            fn key(&self) -> $crate::ports::table::Key {
                self.key.clone()
            }
            fn keyed(mut self, key: $crate::ports::table::Key) -> Self {
                self.key = key;
                self
            }
        }
    };
}
pub(crate) use keyed_by_its_key;

/// The item that stores `entity`.
pub fn to_item<E: Entity>(entity: &E) -> Result<Item, TableError> {
    let Ok(Value::Object(mut item)) = serde_json::to_value(entity) else {
        return Err(TableError::Invalid(format!(
            "{} does not serialise to an object",
            std::any::type_name::<E>()
        )));
    };
    let key = entity.key();
    item.insert(crate::ports::table::PK.into(), key.pk.into());
    item.insert(crate::ports::table::SK.into(), key.sk.into());
    if let Some(kind) = E::KIND {
        item.insert(KIND.into(), kind.into());
    }
    for (index, pk, sk) in entity.index_keys() {
        let (pk_attr, sk_attr) = index.key_attributes();
        item.insert(pk_attr.into(), pk.into());
        item.insert(sk_attr.into(), sk.into());
    }
    Ok(item)
}

/// The entity an item stores; attributes it does not name (keys, `type`)
/// are ignored. A stored item that does not fit is our bug: the error names
/// the entity, the key and the attribute, never a value (serde's own
/// message quotes values, and a value may be a name or a text).
pub fn from_item<E: Entity>(item: Item) -> Result<E, TableError> {
    let key = Key::of(&item).ok();
    let entity: E = serde_path_to_error::deserialize(Value::Object(item)).map_err(|e| {
        TableError::Invalid(format!(
            "the item {} is not a valid {}: `{}` does not fit",
            key.as_ref()
                .map(|k| format!("{}/{}", k.pk, k.sk))
                .unwrap_or_default(),
            std::any::type_name::<E>()
                .rsplit("::")
                .next()
                .unwrap_or("entity"),
            e.path()
        ))
    })?;
    Ok(match key {
        Some(key) => entity.keyed(key),
        None => entity,
    })
}

impl TxOp {
    /// Puts `entity`, under `cond`.
    pub fn put<E: Entity>(entity: &E, cond: Option<Cond>) -> Result<Self, TableError> {
        Ok(TxOp::Put {
            item: to_item(entity)?,
            cond,
        })
    }

    /// Puts `entity` only if nothing is stored under its key.
    pub fn create<E: Entity>(entity: &E) -> Result<Self, TableError> {
        Self::put(entity, Some(Cond::NotExists))
    }
}

impl WriteOp {
    pub fn put<E: Entity>(entity: &E) -> Result<Self, TableError> {
        Ok(WriteOp::Put(to_item(entity)?))
    }
}

/// Typed reads and writes over any table.
#[async_trait]
pub trait Entities {
    /// The entity under `key`, if stored.
    async fn load<E: Entity>(&self, key: &Key) -> Result<Option<E>, TableError>;
    /// The entities under `keys`, in the same order.
    async fn load_many<E: Entity>(&self, keys: &[Key]) -> Result<Vec<Option<E>>, TableError>;
    async fn save<E: Entity>(&self, entity: &E, cond: Option<Cond>) -> Result<(), TableError>;
    /// One page of a query, as entities, and where it ended.
    async fn find<E: Entity>(
        &self,
        query: Query,
    ) -> Result<(Vec<E>, Option<crate::ports::table::Cursor>), TableError>;
    /// Every entity a query matches (small sets only: see `query_all`).
    async fn find_all<E: Entity>(&self, query: Query) -> Result<Vec<E>, TableError>;
}

#[async_trait]
impl<T: Table + ?Sized> Entities for T {
    async fn load<E: Entity>(&self, key: &Key) -> Result<Option<E>, TableError> {
        self.get(key).await?.map(from_item).transpose()
    }

    async fn load_many<E: Entity>(&self, keys: &[Key]) -> Result<Vec<Option<E>>, TableError> {
        self.get_many(keys)
            .await?
            .into_iter()
            .map(|item| item.map(from_item).transpose())
            .collect()
    }

    async fn save<E: Entity>(&self, entity: &E, cond: Option<Cond>) -> Result<(), TableError> {
        self.put(to_item(entity)?, cond).await
    }

    async fn find<E: Entity>(
        &self,
        query: Query,
    ) -> Result<(Vec<E>, Option<crate::ports::table::Cursor>), TableError> {
        let page = self.query(query).await?;
        let entities = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((entities, page.cursor))
    }

    async fn find_all<E: Entity>(&self, query: Query) -> Result<Vec<E>, TableError> {
        all_from(crate::ports::table::query_all(self, query).await?)
    }
}

/// A transaction whose writes are named by the part they play in the use
/// case, so a cancelled one says which conditions failed by name, never by
/// position.
#[derive(Debug)]
pub struct Transaction<P> {
    ops: Vec<TxOp>,
    parts: Vec<P>,
}

/// Why a named transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError<P: std::fmt::Debug> {
    /// The conditions of these parts did not hold; nothing was written.
    #[error("transaction cancelled: the conditions of {0:?} did not hold")]
    Cancelled(Vec<P>),
    #[error(transparent)]
    Table(#[from] TableError),
}

impl<P: std::fmt::Debug> TransactionError<P> {
    /// Whether `part`'s condition was one that failed.
    pub fn failed(&self, part: P) -> bool
    where
        P: PartialEq,
    {
        matches!(self, TransactionError::Cancelled(parts) if parts.contains(&part))
    }
}

/// A cancellation no caller expected: our bug, reported with the parts named.
impl<P: std::fmt::Debug> From<TransactionError<P>> for TableError {
    fn from(e: TransactionError<P>) -> Self {
        match e {
            TransactionError::Cancelled(parts) => TableError::Invalid(format!(
                "transaction cancelled: the conditions of {parts:?} did not hold"
            )),
            TransactionError::Table(e) => e,
        }
    }
}

impl<P: Copy + PartialEq + std::fmt::Debug> Default for Transaction<P> {
    fn default() -> Self {
        Self {
            ops: Vec::new(),
            parts: Vec::new(),
        }
    }
}

impl<P: Copy + PartialEq + std::fmt::Debug> Transaction<P> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, part: P, op: TxOp) -> Self {
        self.add(part, op);
        self
    }

    pub fn add(&mut self, part: P, op: TxOp) {
        self.ops.push(op);
        self.parts.push(part);
    }

    pub fn add_all(&mut self, part: P, ops: impl IntoIterator<Item = TxOp>) {
        for op in ops {
            self.add(part, op);
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub async fn commit(self, table: &(impl Table + ?Sized)) -> Result<(), TransactionError<P>> {
        match table.transact(self.ops).await {
            Ok(()) => Ok(()),
            Err(TableError::TransactionCancelled { failed }) => {
                let mut parts = Vec::new();
                for part in failed.iter().filter_map(|i| self.parts.get(*i)) {
                    if !parts.contains(part) {
                        parts.push(*part);
                    }
                }
                Err(TransactionError::Cancelled(parts))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Entities read from items an untyped helper answered (`window`, `query_all`).
pub fn all_from<E: Entity>(items: Vec<Item>) -> Result<Vec<E>, TableError> {
    items.into_iter().map(from_item).collect()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Pew {
        row: u32,
        seat_name: String,
    }

    impl Entity for Pew {
        const KIND: Option<&'static str> = Some("pew");
        fn key(&self) -> Key {
            Key::new("CHURCH#c", format!("PEW#{}", self.row))
        }
        fn index_keys(&self) -> Vec<(Index, String, String)> {
            vec![(Index::Gsi1, "PEWS".into(), self.seat_name.clone())]
        }
    }

    #[test]
    fn an_entity_is_stored_with_its_key_kind_and_index_keys() {
        let item = to_item(&Pew {
            row: 3,
            seat_name: "aisle".into(),
        })
        .unwrap();
        assert_eq!(item["pk"], "CHURCH#c");
        assert_eq!(item["sk"], "PEW#3");
        assert_eq!(item["type"], "pew");
        assert_eq!(item["gsi1pk"], "PEWS");
        assert_eq!(item["gsi1sk"], "aisle");
        assert_eq!(item["seatName"], "aisle");
        assert_eq!(
            from_item::<Pew>(item).unwrap(),
            Pew {
                row: 3,
                seat_name: "aisle".into()
            }
        );
    }

    #[cfg(feature = "local")]
    #[tokio::test]
    async fn a_cancelled_transaction_names_the_parts_whose_conditions_failed() {
        use crate::adapters::embedded::{EmbeddedTable, Store};

        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Part {
            Claim,
            Pew,
        }
        let dir = tempfile::tempdir().unwrap();
        let table = EmbeddedTable::new(Store::open(dir.path()).unwrap());
        let pew = Pew {
            row: 1,
            seat_name: "front".into(),
        };
        table.save(&pew, None).await.unwrap();
        let claim = Key::new("CLAIM#front", "CLAIM");
        let tx = Transaction::new()
            .with(
                Part::Claim,
                TxOp::Check {
                    key: claim,
                    cond: Cond::NotExists,
                },
            )
            .with(Part::Pew, TxOp::create(&pew).unwrap());
        let err = tx.commit(&table).await.unwrap_err();
        assert!(err.failed(Part::Pew), "{err:?}");
        assert!(!err.failed(Part::Claim), "{err:?}");
        let stored: Pew = table.load(&pew.key()).await.unwrap().unwrap();
        assert_eq!(stored, pew);
    }

    #[test]
    fn an_item_that_does_not_fit_names_its_entity_key_and_field_but_no_value() {
        let mut item = to_item(&Pew {
            row: 3,
            seat_name: "aisle".into(),
        })
        .unwrap();
        item.insert("row".into(), "three".into());
        let err = from_item::<Pew>(item).unwrap_err().to_string();
        assert!(err.contains("CHURCH#c/PEW#3"), "{err}");
        assert!(err.contains("Pew"), "{err}");
        assert!(err.contains("`row`"), "{err}");
        assert!(
            !err.contains("three"),
            "a stored value reached the error: {err}"
        );
    }
}
