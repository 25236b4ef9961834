//! The table port on DynamoDB.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update as DynamoUpdate, WriteRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::attribute::{from_attrs, to_attr, to_attrs};
use super::backoff;
use super::expression::Expr;
use crate::ports::table::{
    Cond, Cursor, Index, Item, Key, Page, Query, SortCond, Table, TableError, TxOp, Update,
    WriteOp, is_expired, limits,
};

/// Attempts at writing a batch's unprocessed items before giving up.
const BATCH_ATTEMPTS: u32 = 10;

#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

fn key_attrs(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(key.pk.clone())),
        ("sk".to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn live(item: Item) -> Option<Item> {
    (!is_expired(&item, now())).then_some(item)
}

fn sdk<E>(action: &'static str) -> impl FnOnce(SdkError<E>) -> TableError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| TableError::backend(action, e)
}

/// A condition failure reported by any single-item write.
fn conditional<E>(
    action: &'static str,
    is_condition_failure: impl Fn(&E) -> bool,
) -> impl FnOnce(SdkError<E>) -> TableError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| match e.as_service_error() {
        Some(service) if is_condition_failure(service) => TableError::ConditionFailed,
        _ => TableError::backend(action, e),
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> TableError {
    TableError::backend("build a DynamoDB request", e)
}

/// Renders a condition into an expression (if any) sharing one placeholder set.
fn render_cond(expr: &mut Expr, cond: Option<&Cond>) -> Option<String> {
    cond.map(|c| expr.cond(c))
}

fn tx_item(table: &str, op: TxOp) -> Result<TransactWriteItem, TableError> {
    let mut expr = Expr::default();
    let item = match op {
        TxOp::Put { item, cond } => {
            let condition = render_cond(&mut expr, cond.as_ref());
            let (names, values) = expr.into_parts();
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(to_attrs(&item)))
                .set_condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().put(put).build()
        }
        TxOp::Update { key, update, cond } => {
            let update_expression = expr.update(&update);
            let condition = render_cond(&mut expr, cond.as_ref());
            let (names, values) = expr.into_parts();
            let update = DynamoUpdate::builder()
                .table_name(table)
                .set_key(Some(key_attrs(&key)))
                .update_expression(update_expression)
                .set_condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().update(update).build()
        }
        TxOp::Delete { key, cond } => {
            let condition = render_cond(&mut expr, cond.as_ref());
            let (names, values) = expr.into_parts();
            let delete = Delete::builder()
                .table_name(table)
                .set_key(Some(key_attrs(&key)))
                .set_condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().delete(delete).build()
        }
        TxOp::Check { key, cond } => {
            let condition = expr.cond(&cond);
            let (names, values) = expr.into_parts();
            let check = ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key_attrs(&key)))
                .condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().condition_check(check).build()
        }
    };
    Ok(item)
}

fn write_request(op: WriteOp) -> Result<WriteRequest, TableError> {
    Ok(match op {
        WriteOp::Put(item) => WriteRequest::builder()
            .put_request(
                aws_sdk_dynamodb::types::PutRequest::builder()
                    .set_item(Some(to_attrs(&item)))
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
        WriteOp::Delete(key) => WriteRequest::builder()
            .delete_request(
                aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key_attrs(&key)))
                    .build()
                    .map_err(build_error)?,
            )
            .build(),
    })
}

fn encode_cursor(last: &HashMap<String, AttributeValue>) -> Result<Cursor, TableError> {
    let json = serde_json::Value::Object(from_attrs(last)?);
    Ok(Cursor(URL_SAFE_NO_PAD.encode(json.to_string())))
}

fn decode_cursor(
    cursor: &Cursor,
    index: Index,
) -> Result<HashMap<String, AttributeValue>, TableError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(&cursor.0)
        .map_err(|_| TableError::BadCursor)?;
    let item: Item = serde_json::from_slice(&bytes).map_err(|_| TableError::BadCursor)?;
    let (ipk, isk) = index.key_attributes();
    let allowed = ["pk", "sk", ipk, isk];
    if item.is_empty()
        || item
            .iter()
            .any(|(k, v)| !allowed.contains(&k.as_str()) || !v.is_string())
    {
        return Err(TableError::BadCursor);
    }
    Ok(item.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        limits::check_key(key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk("get an item"))?;
        Ok(out.item().map(from_attrs).transpose()?.and_then(live))
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        keys.iter().try_for_each(limits::check_key)?;
        let mut unique: Vec<&Key> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found: HashMap<Key, Item> = HashMap::new();
        for chunk in unique.chunks(crate::ports::table::BATCH_GET_CHUNK) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|k| key_attrs(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(build_error)?;
            let mut pending = Some(request);
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(TableError::backend(
                        "read a batch",
                        "keys still unprocessed after retries",
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(sdk("read a batch"))?;
                for attrs in out
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let item = from_attrs(attrs)?;
                    found.insert(Key::of(&item)?, item);
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                attempt += 1;
            }
        }
        Ok(keys
            .iter()
            .map(|k| found.get(k).cloned().and_then(live))
            .collect())
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError> {
        limits::check_item(&item)?;
        let mut expr = Expr::default();
        let condition = render_cond(&mut expr, cond.as_ref());
        let (names, values) = expr.into_parts();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attrs(&item)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(conditional(
                "put an item",
                |e: &aws_sdk_dynamodb::operation::put_item::PutItemError| {
                    e.is_conditional_check_failed_exception()
                },
            ))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, TableError> {
        limits::check_key(key)?;
        limits::check_update(&update)?;
        let mut expr = Expr::default();
        let update_expression = expr.update(&update);
        let condition = render_cond(&mut expr, cond.as_ref());
        let (names, values) = expr.into_parts();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .update_expression(update_expression)
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(conditional(
                "update an item",
                |e: &aws_sdk_dynamodb::operation::update_item::UpdateItemError| {
                    e.is_conditional_check_failed_exception()
                },
            ))?;
        out.attributes()
            .map(from_attrs)
            .transpose()?
            .ok_or_else(|| {
                TableError::backend(
                    "update an item",
                    "DynamoDB returned no attributes for ALL_NEW",
                )
            })
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError> {
        limits::check_key(key)?;
        let mut expr = Expr::default();
        let condition = render_cond(&mut expr, cond.as_ref());
        let (names, values) = expr.into_parts();
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(conditional(
                "delete an item",
                |e: &aws_sdk_dynamodb::operation::delete_item::DeleteItemError| {
                    e.is_conditional_check_failed_exception()
                },
            ))?;
        Ok(out.attributes().map(from_attrs).transpose()?.and_then(live))
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        limits::check_transaction(&ops)?;
        let items = ops
            .into_iter()
            .map(|op| tx_item(&self.table, op))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                    e.as_service_error()
                {
                    let failed: Vec<usize> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, _)| i)
                        .collect();
                    if !failed.is_empty() {
                        return Err(TableError::TransactionCancelled { failed });
                    }
                    if cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        return Err(TableError::Conflict);
                    }
                }
                Err(TableError::backend("write a transaction", e))
            }
        }
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        for chunk in limits::batch_chunks(ops)? {
            let mut pending = chunk
                .into_iter()
                .map(write_request)
                .collect::<Result<Vec<_>, _>>()?;
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(TableError::backend(
                        "write a batch",
                        format!(
                            "{} writes still unprocessed after {BATCH_ATTEMPTS} attempts",
                            pending.len()
                        ),
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(sdk("write a batch"))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|unprocessed| unprocessed.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                attempt += 1;
            }
        }
        Ok(())
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        limits::check_query(&query)?;
        let (ipk, isk) = query.index.key_attributes();
        let mut expr = Expr::default();
        let partition = format!(
            "{} = {}",
            expr.name(ipk),
            expr.value(AttributeValue::S(query.partition.clone()))
        );
        let sort = query.sort.as_ref().map(|sort| {
            let n = expr.name(isk);
            let mut v = |s: &String| expr.value(AttributeValue::S(s.clone()));
            match sort {
                SortCond::BeginsWith(p) => format!("begins_with({n}, {})", v(p)),
                SortCond::Between(a, b) => {
                    let (a, b) = (v(a), v(b));
                    format!("{n} BETWEEN {a} AND {b}")
                }
                SortCond::Eq(x) => format!("{n} = {}", v(x)),
                SortCond::Lt(x) => format!("{n} < {}", v(x)),
                SortCond::Le(x) => format!("{n} <= {}", v(x)),
                SortCond::Gt(x) => format!("{n} > {}", v(x)),
                SortCond::Ge(x) => format!("{n} >= {}", v(x)),
            }
        });
        let condition = match sort {
            Some(sort) => format!("{partition} AND {sort}"),
            None => partition,
        };
        let start = query
            .cursor
            .as_ref()
            .map(|c| decode_cursor(c, query.index))
            .transpose()?;
        let projection = query.keys_only.then(|| {
            let mut attrs = vec!["pk", "sk"];
            if query.index != Index::Primary {
                attrs.extend([ipk, isk]);
            }
            attrs
                .iter()
                .map(|a| expr.name(a))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let (names, values) = expr.into_parts();
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.name().map(str::to_owned))
            .key_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .scan_index_forward(query.ascending)
            .set_exclusive_start_key(start)
            .set_projection_expression(projection)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                // A cursor naming a key the table rejects was not one of ours.
                Some(s)
                    if s.meta().code() == Some("ValidationException") && query.cursor.is_some() =>
                {
                    TableError::BadCursor
                }
                _ => TableError::backend("query", e),
            })?;
        let items = out
            .items()
            .iter()
            .map(from_attrs)
            .filter_map(|item| item.map(live).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let cursor = out.last_evaluated_key().map(encode_cursor).transpose()?;
        Ok(Page { items, cursor })
    }
}
