//! The table port on SQLite: one row per item, GSI keys and TTL copied into
//! indexed columns, the item itself kept as JSON.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;

use super::changes;
use super::condition::{apply, holds};
use super::store::{Store, StoreError};
use crate::ports::table::{
    Cond, Cursor, Index, Item, Key, Page, Query, SortCond, Table, TableError, TxOp, Update,
    WriteOp, is_expired, limits,
};

#[derive(Clone)]
pub struct EmbeddedTable {
    store: Store,
}

impl EmbeddedTable {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Deletes items past their TTL, as DynamoDB's background sweeper does.
    /// Its deletions reach the change stream, as DynamoDB's do; stream
    /// records past the stream's retention go too.
    pub async fn sweep_expired(&self) -> Result<usize, TableError> {
        let now = unix_now();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let expired: Vec<String> = tx
                    .prepare("SELECT body FROM items WHERE ttl IS NOT NULL AND ttl <= ?1")?
                    .query_map([now], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                for body in &expired {
                    let item = parse_item(body)?;
                    write(&tx, &Key::of(&item)?, Some(&item), None)?;
                }
                changes::forget_before(&tx, now - changes::RETENTION_SECS)?;
                tx.commit()?;
                Ok(expired.len())
            })
            .await
    }

    /// Every stored item, for inspection in tests (e.g. "no plaintext phone anywhere").
    pub async fn dump(&self) -> Result<Vec<Item>, TableError> {
        self.store
            .run(|conn| {
                let mut stmt = conn.prepare("SELECT body FROM items ORDER BY pk, sk")?;
                let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
                rows.map(|body| parse_item(&body?)).collect()
            })
            .await
    }
}

impl From<StoreError> for TableError {
    fn from(e: StoreError) -> Self {
        TableError::backend("use the embedded store", e)
    }
}

impl From<rusqlite::Error> for TableError {
    fn from(e: rusqlite::Error) -> Self {
        TableError::backend("query the embedded store", e)
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn parse_item(body: &str) -> Result<Item, TableError> {
    serde_json::from_str(body).map_err(|e| TableError::backend("decode a stored item", e))
}

/// The stored item, expired or not: as in DynamoDB, an item past its TTL
/// still exists (and so fails `NotExists`) until the sweeper removes it.
fn load_raw(tx: &Transaction<'_>, key: &Key) -> Result<Option<Item>, TableError> {
    // Cached statements: the hot path must not re-parse SQL on every call.
    let body: Option<String> = tx
        .prepare_cached("SELECT body FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row(params![key.pk, key.sk], |row| row.get(0))
        .optional()?;
    body.as_deref().map(parse_item).transpose()
}

/// The stored item as reads see it: hidden once past its TTL.
fn load(tx: &Transaction<'_>, key: &Key) -> Result<Option<Item>, TableError> {
    Ok(load_raw(tx, key)?.filter(|item| !is_expired(item, unix_now())))
}

fn save(tx: &Transaction<'_>, item: &Item) -> Result<(), TableError> {
    let key = limits::check_item(item)?;
    let text = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
    let body = serde_json::to_string(item).map_err(|e| TableError::backend("encode an item", e))?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO items (pk, sk, body, gsi1pk, gsi1sk, gsi2pk, gsi2sk, ttl)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        key.pk,
        key.sk,
        body,
        text("gsi1pk"),
        text("gsi1sk"),
        text("gsi2pk"),
        text("gsi2sk"),
        item.get(crate::ports::table::TTL).and_then(Value::as_i64),
    ])?;
    Ok(())
}

fn erase(tx: &Transaction<'_>, key: &Key) -> Result<(), TableError> {
    tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
        .execute(params![key.pk, key.sk])?;
    Ok(())
}

/// Writes `next` over `old` (removes the item when `next` is `None`) and
/// records the change on the stream. A write that changes nothing is no
/// change: DynamoDB Streams records none for it either.
fn write(
    tx: &Transaction<'_>,
    key: &Key,
    old: Option<&Item>,
    next: Option<&Item>,
) -> Result<(), TableError> {
    if old == next {
        return Ok(());
    }
    match next {
        Some(item) => save(tx, item)?,
        None => erase(tx, key)?,
    }
    changes::record(tx, key, old, next, unix_now())
}

fn key_item(key: &Key) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), Value::from(key.pk.clone()));
    item.insert("sk".into(), Value::from(key.sk.clone()));
    item
}

fn check(cond: Option<&Cond>, current: Option<&Item>) -> bool {
    cond.is_none_or(|c| holds(c, current))
}

/// Applies one transaction op after its condition held.
fn perform(tx: &Transaction<'_>, op: &TxOp, current: Option<Item>) -> Result<(), TableError> {
    match op {
        TxOp::Put { item, .. } => write(tx, &Key::of(item)?, current.as_ref(), Some(item)),
        TxOp::Update { key, update, .. } => {
            let next = apply(update, current.clone().unwrap_or_else(|| key_item(key)))?;
            write(tx, key, current.as_ref(), Some(&next))
        }
        TxOp::Delete { key, .. } => write(tx, key, current.as_ref(), None),
        TxOp::Check { .. } => Ok(()),
    }
}

fn op_cond(op: &TxOp) -> Option<&Cond> {
    match op {
        TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => {
            cond.as_ref()
        }
        TxOp::Check { cond, .. } => Some(cond),
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        limits::check_key(key)?;
        let key = key.clone();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                load(&tx, &key)
            })
            .await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        keys.iter().try_for_each(limits::check_key)?;
        let keys = keys.to_vec();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                keys.iter().map(|key| load(&tx, key)).collect()
            })
            .await
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError> {
        let key = limits::check_item(&item)?;
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let current = load_raw(&tx, &key)?;
                if !check(cond.as_ref(), current.as_ref()) {
                    return Err(TableError::ConditionFailed);
                }
                write(&tx, &key, current.as_ref(), Some(&item))?;
                Ok(tx.commit()?)
            })
            .await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, TableError> {
        limits::check_key(key)?;
        limits::check_update(&update)?;
        let key = key.clone();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let current = load_raw(&tx, &key)?;
                if !check(cond.as_ref(), current.as_ref()) {
                    return Err(TableError::ConditionFailed);
                }
                let next = apply(&update, current.clone().unwrap_or_else(|| key_item(&key)))?;
                write(&tx, &key, current.as_ref(), Some(&next))?;
                tx.commit()?;
                Ok(next)
            })
            .await
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError> {
        limits::check_key(key)?;
        let key = key.clone();
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let current = load_raw(&tx, &key)?;
                if !check(cond.as_ref(), current.as_ref()) {
                    return Err(TableError::ConditionFailed);
                }
                write(&tx, &key, current.as_ref(), None)?;
                tx.commit()?;
                Ok(current.filter(|item| !is_expired(item, unix_now())))
            })
            .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        limits::check_transaction(&ops)?;
        self.store
            .run(move |conn| {
                let tx = conn.transaction()?;
                let mut currents = Vec::with_capacity(ops.len());
                let mut failed = Vec::new();
                for (i, op) in ops.iter().enumerate() {
                    let current = load_raw(&tx, &op.key()?)?;
                    if !check(op_cond(op), current.as_ref()) {
                        failed.push(i);
                    }
                    currents.push(current);
                }
                if !failed.is_empty() {
                    return Err(TableError::TransactionCancelled { failed });
                }
                for (op, current) in ops.iter().zip(currents) {
                    perform(&tx, op, current)?;
                }
                Ok(tx.commit()?)
            })
            .await
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        let chunks = limits::batch_chunks(ops)?;
        self.store
            .run(move |conn| {
                for chunk in chunks {
                    let tx = conn.transaction()?;
                    for op in &chunk {
                        let (key, next) = match op {
                            WriteOp::Put(item) => (Key::of(item)?, Some(item)),
                            WriteOp::Delete(key) => (key.clone(), None),
                        };
                        let current = load_raw(&tx, &key)?;
                        write(&tx, &key, current.as_ref(), next)?;
                    }
                    tx.commit()?;
                }
                Ok(())
            })
            .await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        limits::check_query(&query)?;
        let after = query.cursor.as_ref().map(decode_cursor).transpose()?;
        self.store
            .run(move |conn| run_query(conn, &query, after))
            .await
    }
}

/// Position of the last item of a page: (index sort key, pk, sk).
type Position = (String, String, String);

fn encode_cursor(position: &Position) -> Cursor {
    let json = serde_json::to_vec(position).unwrap_or_default();
    Cursor(URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(cursor: &Cursor) -> Result<Position, TableError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(&cursor.0)
        .map_err(|_| TableError::BadCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| TableError::BadCursor)
}

fn run_query(
    conn: &mut rusqlite::Connection,
    query: &Query,
    after: Option<Position>,
) -> Result<Page, TableError> {
    let (ipk, isk) = query.index.key_attributes();
    let primary = query.index == Index::Primary;
    let select = if query.keys_only {
        format!("json_object('pk', pk, 'sk', sk, '{ipk}', {ipk}, '{isk}', {isk})")
    } else {
        "body".to_owned()
    };
    let mut sql = format!("SELECT {select}, {isk}, pk, sk FROM items WHERE {ipk} = ?");
    let mut args: Vec<SqlValue> = vec![SqlValue::Text(query.partition.clone())];
    let mut arg = |sql: &mut String, clause: &str, values: Vec<String>| {
        sql.push_str(clause);
        args.extend(values.into_iter().map(SqlValue::Text));
    };
    if !primary {
        arg(&mut sql, &format!(" AND {isk} IS NOT NULL"), vec![]);
    }
    match &query.sort {
        None => {}
        Some(SortCond::BeginsWith(p)) => arg(
            &mut sql,
            // Everything with the prefix sorts between it and the prefix followed
            // by the highest code point, so the index answers the range.
            &format!(" AND {isk} >= ? AND {isk} < ? || char(1114111)"),
            vec![p.clone(), p.clone()],
        ),
        Some(SortCond::Between(a, b)) => arg(
            &mut sql,
            &format!(" AND {isk} BETWEEN ? AND ?"),
            vec![a.clone(), b.clone()],
        ),
        Some(SortCond::Eq(v)) => arg(&mut sql, &format!(" AND {isk} = ?"), vec![v.clone()]),
        Some(SortCond::Lt(v)) => arg(&mut sql, &format!(" AND {isk} < ?"), vec![v.clone()]),
        Some(SortCond::Le(v)) => arg(&mut sql, &format!(" AND {isk} <= ?"), vec![v.clone()]),
        Some(SortCond::Gt(v)) => arg(&mut sql, &format!(" AND {isk} > ?"), vec![v.clone()]),
        Some(SortCond::Ge(v)) => arg(&mut sql, &format!(" AND {isk} >= ?"), vec![v.clone()]),
    }
    let direction = if query.ascending { "ASC" } else { "DESC" };
    let beyond = if query.ascending { ">" } else { "<" };
    if let Some((s, pk, sk)) = after {
        if primary {
            arg(&mut sql, &format!(" AND sk {beyond} ?"), vec![sk]);
        } else {
            arg(
                &mut sql,
                &format!(" AND ({isk}, pk, sk) {beyond} (?, ?, ?)"),
                vec![s, pk, sk],
            );
        }
    }
    sql.push_str(" AND (ttl IS NULL OR ttl > ?)");
    args.push(SqlValue::Integer(unix_now()));
    if primary {
        sql.push_str(&format!(" ORDER BY sk {direction} LIMIT ?"));
    } else {
        sql.push_str(&format!(
            " ORDER BY {isk} {direction}, pk {direction}, sk {direction} LIMIT ?"
        ));
    }
    // One extra row tells whether another page exists.
    args.push(SqlValue::Integer(i64::from(query.limit) + 1));

    let tx = conn.transaction()?;
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut items = Vec::new();
    let mut last: Option<Position> = None;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if items.len() == query.limit as usize {
            more = true;
            break;
        }
        items.push(parse_item(&row.get::<_, String>(0)?)?);
        last = Some((row.get(1)?, row.get(2)?, row.get(3)?));
    }
    Ok(Page {
        items,
        cursor: last.filter(|_| more).as_ref().map(encode_cursor),
    })
}
