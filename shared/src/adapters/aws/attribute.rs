//! JSON values ↔ DynamoDB attribute values.
//!
//! Items cross the table port as JSON, so the mapping is total in one
//! direction: string → S, number → N, bool → BOOL, null → NULL, array → L,
//! object → M. Coming back, sets read as lists; binary is never written.
//!
//! DynamoDB Streams' SDK has its own `AttributeValue` of the same shape:
//! `from_stream_attrs` maps it onto this crate's one and reads it by the
//! same rules, so an image from the stream is the item `get` would return.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
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

/// The stream's attribute value as the table's, variant for variant.
fn from_stream_attr(value: &StreamValue) -> Result<AttributeValue, TableError> {
    Ok(match value {
        StreamValue::B(b) => AttributeValue::B(b.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Bs(bs) => AttributeValue::Bs(bs.clone()),
        StreamValue::L(items) => AttributeValue::L(
            items
                .iter()
                .map(from_stream_attr)
                .collect::<Result<_, _>>()?,
        ),
        StreamValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_stream_attr(v)?)))
                .collect::<Result<_, TableError>>()?,
        ),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::Ns(ns) => AttributeValue::Ns(ns.clone()),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::Ss(ss) => AttributeValue::Ss(ss.clone()),
        other => {
            return Err(TableError::Invalid(format!(
                "unsupported DynamoDB Streams attribute type {other:?}"
            )));
        }
    })
}

/// An image or key from a stream record, as an item.
pub fn from_stream_attrs(map: &HashMap<String, StreamValue>) -> Result<Item, TableError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), from_attr(&from_stream_attr(v)?)?)))
        .collect::<Result<Map<_, _>, _>>()
}
