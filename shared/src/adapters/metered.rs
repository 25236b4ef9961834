//! Counting decorators for the table and queue ports: what a workload would
//! cost on AWS, in DynamoDB write units and SQS requests. The bench wraps
//! the local stack's ports in them; nothing else pays for the counting.
//!
//! Write units follow DynamoDB's rules: one per started KiB of the item
//! written (the larger of before and after is approximated by after),
//! doubled inside a transaction, and charged for a write whose condition
//! fails too. Sizes are the item's JSON length, close to DynamoDB's
//! attribute-name-plus-value sizing for these flat items.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage, limits};
use crate::ports::table::{Item, Key, Page, Query, Table, TableError, TxOp, Update, WriteOp};

#[derive(Debug, Default)]
pub struct Meter {
    pub table_requests: AtomicU64,
    pub write_units: AtomicU64,
    pub sqs_sends: AtomicU64,
    /// Receives that returned messages (idle long polls are not per-SMS work).
    pub sqs_receives: AtomicU64,
    pub sqs_deletes: AtomicU64,
    pub sqs_visibility_changes: AtomicU64,
}

/// A point-in-time copy of a meter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub table_requests: u64,
    pub write_units: u64,
    pub sqs_sends: u64,
    pub sqs_receives: u64,
    pub sqs_deletes: u64,
    pub sqs_visibility_changes: u64,
}

impl Reading {
    /// SQS requests as Lambda's event source mapping makes them: one
    /// DeleteMessageBatch per received batch, not one delete per message.
    pub fn sqs_requests_as_lambda(&self) -> u64 {
        self.sqs_sends + 2 * self.sqs_receives + self.sqs_visibility_changes
    }

    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            table_requests: self.table_requests - earlier.table_requests,
            write_units: self.write_units - earlier.write_units,
            sqs_sends: self.sqs_sends - earlier.sqs_sends,
            sqs_receives: self.sqs_receives - earlier.sqs_receives,
            sqs_deletes: self.sqs_deletes - earlier.sqs_deletes,
            sqs_visibility_changes: self.sqs_visibility_changes - earlier.sqs_visibility_changes,
        }
    }
}

impl Meter {
    pub fn read(&self) -> Reading {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Reading {
            table_requests: get(&self.table_requests),
            write_units: get(&self.write_units),
            sqs_sends: get(&self.sqs_sends),
            sqs_receives: get(&self.sqs_receives),
            sqs_deletes: get(&self.sqs_deletes),
            sqs_visibility_changes: get(&self.sqs_visibility_changes),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Write units for an item of this JSON size (at least one).
fn units(item: Option<&Item>) -> u64 {
    let bytes = item
        .and_then(|i| serde_json::to_vec(i).ok())
        .map_or(0, |b| b.len() as u64);
    bytes.div_ceil(1024).max(1)
}

pub struct MeteredTable {
    pub inner: Arc<dyn Table>,
    pub meter: Arc<Meter>,
}

impl MeteredTable {
    fn request(&self) {
        Meter::add(&self.meter.table_requests, 1);
    }

    fn wrote(&self, units: u64) {
        Meter::add(&self.meter.write_units, units);
    }

    /// The stored size of `key` now (not itself counted).
    async fn size_of(&self, key: &Key) -> u64 {
        units(self.inner.get(key).await.ok().flatten().as_ref())
    }
}

#[async_trait]
impl Table for MeteredTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.request();
        self.inner.get(key).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        Meter::add(&self.meter.table_requests, keys.len().div_ceil(100) as u64);
        self.inner.get_many(keys).await
    }

    async fn put(
        &self,
        item: Item,
        cond: Option<crate::ports::table::Cond>,
    ) -> Result<(), TableError> {
        self.request();
        self.wrote(units(Some(&item)));
        self.inner.put(item, cond).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<crate::ports::table::Cond>,
    ) -> Result<Item, TableError> {
        self.request();
        let result = self.inner.update(key, update, cond).await;
        self.wrote(units(result.as_ref().ok()));
        result
    }

    async fn delete(
        &self,
        key: &Key,
        cond: Option<crate::ports::table::Cond>,
    ) -> Result<Option<Item>, TableError> {
        self.request();
        let result = self.inner.delete(key, cond).await;
        self.wrote(units(result.as_ref().ok().and_then(Option::as_ref)));
        result
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        self.request();
        let keys: Vec<Option<Key>> = ops
            .iter()
            .map(|op| match op {
                TxOp::Update { key, .. } | TxOp::Delete { key, .. } => Some(key.clone()),
                TxOp::Put { .. } | TxOp::Check { .. } => None,
            })
            .collect();
        let put_units: u64 = ops
            .iter()
            .map(|op| match op {
                TxOp::Put { item, .. } => units(Some(item)),
                _ => 0,
            })
            .sum();
        let result = self.inner.transact(ops).await;
        let mut total = put_units;
        for key in keys.iter().flatten() {
            total += self.size_of(key).await;
        }
        self.wrote(2 * total);
        result
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        Meter::add(&self.meter.table_requests, ops.len().div_ceil(25) as u64);
        let total: u64 = ops
            .iter()
            .map(|op| match op {
                WriteOp::Put(item) => units(Some(item)),
                WriteOp::Delete(_) => 1,
            })
            .sum();
        self.wrote(total);
        self.inner.batch_write(ops).await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.request();
        self.inner.query(query).await
    }
}

pub struct MeteredQueue {
    pub inner: Arc<dyn Queue>,
    pub meter: Arc<Meter>,
}

#[async_trait]
impl Queue for MeteredQueue {
    async fn send_batch(&self, messages: Vec<OutgoingMessage>) -> Result<(), QueueError> {
        let requests = limits::batches(messages.clone()).map_or(0, |b| b.len() as u64);
        Meter::add(&self.meter.sqs_sends, requests);
        self.inner.send_batch(messages).await
    }

    async fn receive(
        &self,
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let received = self.inner.receive(max, wait, visibility).await?;
        if !received.is_empty() {
            Meter::add(&self.meter.sqs_receives, 1);
        }
        Ok(received)
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        Meter::add(&self.meter.sqs_visibility_changes, 1);
        self.inner.change_visibility(receipt_handle, timeout).await
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        Meter::add(&self.meter.sqs_deletes, 1);
        self.inner.delete(receipt_handle).await
    }

    async fn approximate_depth(&self) -> Result<u64, QueueError> {
        self.inner.approximate_depth().await
    }
}
