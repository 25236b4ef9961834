//! Evaluates the table port's conditions and updates on JSON items, with
//! DynamoDB's semantics: numbers compare as numbers, strings by bytes,
//! mismatched types never compare, and `<>` holds for a missing attribute.

use std::cmp::Ordering;

use serde_json::Value;

use crate::ports::table::{Cond, Item, TableError, Update};

pub fn holds(cond: &Cond, current: Option<&Item>) -> bool {
    let attr = |name: &str| current.and_then(|item| item.get(name));
    match cond {
        Cond::Exists => current.is_some(),
        Cond::NotExists => current.is_none(),
        Cond::AttrExists(a) => attr(a).is_some(),
        Cond::AttrNotExists(a) => attr(a).is_none(),
        Cond::Eq(a, v) => attr(a).is_some_and(|x| compare(x, v) == Some(Ordering::Equal)),
        Cond::Ne(a, v) => attr(a).is_none_or(|x| compare(x, v) != Some(Ordering::Equal)),
        Cond::Lt(a, v) => attr(a).is_some_and(|x| compare(x, v) == Some(Ordering::Less)),
        Cond::Le(a, v) => {
            attr(a).is_some_and(|x| matches!(compare(x, v), Some(Ordering::Less | Ordering::Equal)))
        }
        Cond::Gt(a, v) => attr(a).is_some_and(|x| compare(x, v) == Some(Ordering::Greater)),
        Cond::Ge(a, v) => attr(a)
            .is_some_and(|x| matches!(compare(x, v), Some(Ordering::Greater | Ordering::Equal))),
        Cond::In(a, vs) => {
            attr(a).is_some_and(|x| vs.iter().any(|v| compare(x, v) == Some(Ordering::Equal)))
        }
        Cond::And(cs) => cs.iter().all(|c| holds(c, current)),
        Cond::Or(cs) => cs.iter().any(|c| holds(c, current)),
        Cond::Not(c) => !holds(c, current),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) if x == y => Some(Ordering::Equal),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Array(_) | Value::Object(_), _) if a == b => Some(Ordering::Equal),
        _ => None,
    }
}

/// Applies an update to the stored item (or to a new item holding only the key).
pub fn apply(update: &Update, mut item: Item) -> Result<Item, TableError> {
    for (name, value) in &update.set {
        item.insert(name.clone(), value.clone());
    }
    for (name, value) in &update.set_if_absent {
        item.entry(name.clone()).or_insert_with(|| value.clone());
    }
    for (name, by) in &update.add {
        let current = match item.get(name) {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                TableError::Invalid(format!("cannot add to non-integer `{name}`"))
            })?,
        };
        let sum = current
            .checked_add(*by)
            .ok_or_else(|| TableError::Invalid(format!("counter `{name}` overflowed")))?;
        item.insert(name.clone(), Value::from(sum));
    }
    for name in &update.remove {
        item.remove(name);
    }
    Ok(item)
}
