//! Directory records ↔ table items: the record's JSON fields plus its key
//! and a `type` tag, so every record type is stored the same way.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ports::table::{Item, Key, TableError};

/// The item that stores `record` under `key`.
pub fn to_item<T: Serialize>(record: &T, key: Key, kind: &'static str) -> Result<Item, TableError> {
    let Ok(Value::Object(mut item)) = serde_json::to_value(record) else {
        return Err(TableError::Invalid(format!(
            "a {kind} does not serialise to an object"
        )));
    };
    item.insert("pk".into(), key.pk.into());
    item.insert("sk".into(), key.sk.into());
    item.insert("type".into(), kind.into());
    Ok(item)
}

/// The record an item stores (unknown attributes, such as keys, ignored).
pub fn from_item<T: DeserializeOwned>(item: Item, kind: &'static str) -> Result<T, TableError> {
    serde_json::from_value(Value::Object(item)).map_err(|e| TableError::backend(kind, e))
}
