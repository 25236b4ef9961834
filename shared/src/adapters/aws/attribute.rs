//! JSON values ↔ DynamoDB attribute values.
//!
//! Items cross the table port as JSON, so the mapping is total in one
//! direction: string → S, number → N, bool → BOOL, null → NULL, array → L,
//! object → M. Coming back, sets read as lists; binary is never written.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use crate::ports::table::{Item, TableError};

pub fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => AttributeValue::M(to_attrs(map)),
    }
}

pub fn to_attrs(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect()
}

pub fn from_attr(value: &AttributeValue) -> Result<Value, TableError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(items) => {
            Value::Array(items.iter().map(from_attr).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(map) => Value::Object(from_attrs(map)?),
        AttributeValue::Ss(items) => {
            Value::Array(items.iter().cloned().map(Value::String).collect())
        }
        AttributeValue::Ns(items) => Value::Array(
            items
                .iter()
                .map(|n| parse_number(n).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(TableError::Invalid(format!(
                "unsupported DynamoDB attribute type {other:?}"
            )));
        }
    })
}

pub fn from_attrs(map: &HashMap<String, AttributeValue>) -> Result<Item, TableError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), from_attr(v)?)))
        .collect::<Result<Map<_, _>, _>>()
}

fn parse_number(n: &str) -> Result<Number, TableError> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(Number::from(i));
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| TableError::Invalid(format!("number {n:?} does not fit a JSON number")))
}
