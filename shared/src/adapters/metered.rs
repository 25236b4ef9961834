//! Counting decorators for the table and queue ports: what a workload would
//! cost on AWS, in DynamoDB write units and SQS requests, and what DynamoDB
//! would refuse that the embedded store (one SQLite writer) never shows.
//! The bench wraps the local stack's ports in them; nothing else pays for
//! the counting.
//!
//! Write units follow DynamoDB's rules: one per started KiB of the larger
//! of the item before and after the write, doubled inside a transaction,
//! and charged for a write whose condition fails too. Sizes are the item's
//! JSON length, close to DynamoDB's attribute-name-plus-value sizing for
//! these flat items. The item before is known for deletes (the port returns
//! it) and for writes whose index writes depend on it (below); elsewhere the
//! item after stands in for it.
//!
//! Index writes (`gsi_write_units`): both GSIs project every attribute, so
//! any write to an item that is in an index (has both of its key
//! attributes) before or after also writes the index: a put where the item
//! enters, an update where it stays, a delete where it leaves, a delete and
//! a put where its index key changes, each by the item's size and never
//! doubled (DynamoDB updates indexes outside the transaction). Only
//! successful writes write indexes. To know where the item was, the item
//! before is read from the inner table (uncounted; at most one `get_many`
//! per write call) when the write can move it: a put not conditioned on
//! absence, a delete in a transaction or batch, an update that sets or
//! removes an index key attribute. An update that touches no index key
//! leaves the item where it was, so the item after (returned, or read back
//! in one `get_many` after a transaction) tells. The reads race with
//! concurrent writers: a figure, not a ledger.
//!
//! What DynamoDB refuses (`Hotspots`): a partition takes at most 1,000
//! write units a second and one item can never take more, so every charged
//! write's units are summed by item and by partition key (and index
//! partition) within each wall-clock second since the meter was made; the
//! hottest of each in any one second is kept, and only the current second's
//! sums. (DynamoDB may in time split a hot partition key's items over more
//! partitions, never one item's writes: the item's figure is the hard one.) Transactions are tracked while in flight (from before the inner
//! call to its return): one that starts while another holds one of its
//! items counts as a conflict DynamoDB would cancel it for
//! (`TransactionConflict`), and a single or batch write to an item a
//! transaction holds counts as one DynamoDB would reject. The embedded
//! store's transactions take longer than DynamoDB's (they queue behind its
//! one writer), so the overlaps are an upper bound on DynamoDB's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::ports::queue::{OutgoingMessage, Queue, QueueError, ReceivedMessage, limits};
use crate::ports::table::{
    Cond, Index, Item, Key, Page, Query, Table, TableError, TxOp, Update, WriteOp,
};

#[derive(Debug, Default)]
pub struct Meter {
    pub table_requests: AtomicU64,
    /// Items reads returned (gets, batch gets and query pages).
    pub items_read: AtomicU64,
    /// Base-table write units (transactional writes doubled).
    pub write_units: AtomicU64,
    /// Write units on the GSIs, on top of `write_units`.
    pub gsi_write_units: AtomicU64,
    /// Transactions begun while another in flight held one of their items.
    pub transaction_conflicts: AtomicU64,
    /// Single or batch writes to an item a transaction in flight held.
    pub writes_during_transactions: AtomicU64,
    pub sqs_sends: AtomicU64,
    /// Receives that returned messages (idle long polls are not per-SMS work).
    pub sqs_receives: AtomicU64,
    pub sqs_deletes: AtomicU64,
    pub sqs_visibility_changes: AtomicU64,
    clock: Clock,
    window: Mutex<Window>,
    in_flight: Mutex<InFlight>,
}

/// A point-in-time copy of a meter's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub table_requests: u64,
    pub items_read: u64,
    pub write_units: u64,
    pub gsi_write_units: u64,
    pub transaction_conflicts: u64,
    pub writes_during_transactions: u64,
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

    /// Base-table and index write units together: what the bill counts.
    pub fn total_write_units(&self) -> u64 {
        self.write_units + self.gsi_write_units
    }

    pub fn since(&self, earlier: &Reading) -> Reading {
        Reading {
            table_requests: self.table_requests - earlier.table_requests,
            items_read: self.items_read - earlier.items_read,
            write_units: self.write_units - earlier.write_units,
            gsi_write_units: self.gsi_write_units - earlier.gsi_write_units,
            transaction_conflicts: self.transaction_conflicts - earlier.transaction_conflicts,
            writes_during_transactions: self.writes_during_transactions
                - earlier.writes_during_transactions,
            sqs_sends: self.sqs_sends - earlier.sqs_sends,
            sqs_receives: self.sqs_receives - earlier.sqs_receives,
            sqs_deletes: self.sqs_deletes - earlier.sqs_deletes,
            sqs_visibility_changes: self.sqs_visibility_changes - earlier.sqs_visibility_changes,
        }
    }
}

/// The hottest key of one kind: its write units in its busiest second, or
/// for conflicts, how many transactions it was held by twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hot<K> {
    pub key: K,
    pub count: u64,
}

/// An index's partition: the index name and the partition key in it.
pub type IndexPartition = (&'static str, String);

/// The peaks a meter has seen since it was made or last restarted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hotspots {
    /// The item given the most write units in any one second (≤ 1,000 on DynamoDB).
    pub item: Option<Hot<Key>>,
    /// The partition key given the most write units in any one second (≤ 1,000).
    pub partition: Option<Hot<String>>,
    /// The same for the indexes' partitions (a throttled index throttles the table).
    pub index_partition: Option<Hot<IndexPartition>>,
    /// The item most often held by overlapping transactions.
    pub conflicted_item: Option<Hot<Key>>,
}

impl Meter {
    pub fn read(&self) -> Reading {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Reading {
            table_requests: get(&self.table_requests),
            items_read: get(&self.items_read),
            write_units: get(&self.write_units),
            gsi_write_units: get(&self.gsi_write_units),
            transaction_conflicts: get(&self.transaction_conflicts),
            writes_during_transactions: get(&self.writes_during_transactions),
            sqs_sends: get(&self.sqs_sends),
            sqs_receives: get(&self.sqs_receives),
            sqs_deletes: get(&self.sqs_deletes),
            sqs_visibility_changes: get(&self.sqs_visibility_changes),
        }
    }

    /// The peaks so far. Peaks do not subtract like counters, so a bench
    /// measuring one phase calls `restart_hotspots` as the phase begins.
    pub fn hotspots(&self) -> Hotspots {
        let peaks = lock(&self.window).peaks.clone();
        Hotspots {
            conflicted_item: lock(&self.in_flight).worst.clone(),
            ..peaks
        }
    }

    /// Forgets the peaks and the current second's sums (not the
    /// transactions in flight, which still hold their items).
    pub fn restart_hotspots(&self) {
        *lock(&self.window) = Window::default();
        let mut in_flight = lock(&self.in_flight);
        in_flight.conflicts.clear();
        in_flight.worst = None;
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds a bill to the counters and the current second's sums.
    fn charge(&self, bill: Bill) {
        let base: u64 = bill.base.iter().map(|(_, u)| u).sum();
        let index: u64 = bill.index.iter().map(|(_, u)| u).sum();
        Meter::add(&self.write_units, base);
        Meter::add(&self.gsi_write_units, index);
        let mut window = lock(&self.window);
        window.roll(self.clock.second());
        for (key, units) in bill.base {
            window.add_base(key, units);
        }
        for (partition, units) in bill.index {
            window.add_index(partition, units);
        }
    }

    /// Counts the writes to `keys` that a transaction in flight holds.
    fn check_held<'k>(&self, keys: impl IntoIterator<Item = &'k Key>) {
        let in_flight = lock(&self.in_flight);
        if in_flight.held.is_empty() {
            return;
        }
        let blocked = keys
            .into_iter()
            .filter(|k| in_flight.held.contains_key(*k))
            .count();
        Meter::add(&self.writes_during_transactions, blocked as u64);
    }

    /// Marks a transaction's items as held until the guard drops (also
    /// when the caller's future is dropped mid-call).
    fn hold(&self, keys: Vec<Key>) -> Held<'_> {
        let mut in_flight = lock(&self.in_flight);
        let mut conflicted = false;
        for key in &keys {
            match in_flight.held.get_mut(key) {
                Some(holders) => {
                    *holders += 1;
                    conflicted = true;
                    in_flight.conflicted(key);
                }
                None => {
                    in_flight.held.insert(key.clone(), 1);
                }
            }
        }
        if conflicted {
            Meter::add(&self.transaction_conflicts, 1);
        }
        Held { meter: self, keys }
    }

    /// A meter whose seconds are set by hand, for tests.
    #[cfg(test)]
    fn stepped() -> Self {
        Meter {
            clock: Clock::Stepped(AtomicU64::new(0)),
            ..Meter::default()
        }
    }

    #[cfg(test)]
    fn set_second(&self, second: u64) {
        if let Clock::Stepped(s) = &self.clock {
            s.store(second, Ordering::Relaxed);
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-count; the counts are
/// still usable, and the meter must never fail the write it watches.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a meter reads the second a write falls in.
#[derive(Debug)]
enum Clock {
    /// Whole seconds since the meter was made.
    Since(Instant),
    #[cfg(test)]
    Stepped(AtomicU64),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::Since(Instant::now())
    }
}

impl Clock {
    fn second(&self) -> u64 {
        match self {
            Clock::Since(start) => start.elapsed().as_secs(),
            #[cfg(test)]
            Clock::Stepped(second) => second.load(Ordering::Relaxed),
        }
    }
}

/// The current second's write units by key, and the peaks of all seconds.
#[derive(Debug, Default)]
struct Window {
    second: u64,
    items: HashMap<Key, u64>,
    partitions: HashMap<String, u64>,
    index_partitions: HashMap<IndexPartition, u64>,
    peaks: Hotspots,
}

impl Window {
    /// Starts a new second's sums when `second` is not the current one.
    fn roll(&mut self, second: u64) {
        if second != self.second {
            self.second = second;
            self.items.clear();
            self.partitions.clear();
            self.index_partitions.clear();
        }
    }

    fn add_base(&mut self, key: Key, units: u64) {
        let partition = bump(&mut self.partitions, &key.pk, units);
        raise(&mut self.peaks.partition, &key.pk, partition);
        let item = bump(&mut self.items, &key, units);
        raise(&mut self.peaks.item, &key, item);
    }

    fn add_index(&mut self, partition: IndexPartition, units: u64) {
        let sum = bump(&mut self.index_partitions, &partition, units);
        raise(&mut self.peaks.index_partition, &partition, sum);
    }
}

/// Adds `by` to `key`'s sum (cloning the key only the first time) and
/// answers the new sum.
fn bump<K, Q>(sums: &mut HashMap<K, u64>, key: &Q, by: u64) -> u64
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
{
    match sums.get_mut(key) {
        Some(sum) => {
            *sum += by;
            *sum
        }
        None => {
            sums.insert(key.to_owned(), by);
            by
        }
    }
}

/// Makes `key` the peak if `count` beats the current one.
fn raise<K, Q>(peak: &mut Option<Hot<K>>, key: &Q, count: u64)
where
    Q: ToOwned<Owned = K> + ?Sized,
{
    if peak.as_ref().is_none_or(|p| count > p.count) {
        *peak = Some(Hot {
            key: key.to_owned(),
            count,
        });
    }
}

/// Items held by transactions in flight (how many hold each), and how
/// often each item was held by two at once.
#[derive(Debug, Default)]
struct InFlight {
    held: HashMap<Key, u32>,
    conflicts: HashMap<Key, u64>,
    worst: Option<Hot<Key>>,
}

impl InFlight {
    fn conflicted(&mut self, key: &Key) {
        let count = bump(&mut self.conflicts, key, 1);
        raise(&mut self.worst, key, count);
    }
}

/// A transaction's hold on its items; released on drop.
struct Held<'m> {
    meter: &'m Meter,
    keys: Vec<Key>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.meter.in_flight);
        for key in &self.keys {
            if let Some(holders) = in_flight.held.get_mut(key) {
                *holders -= 1;
                if *holders == 0 {
                    in_flight.held.remove(key);
                }
            }
        }
    }
}

/// Started KiB of an item's JSON (0 for an empty one).
fn size(item: &Item) -> u64 {
    serde_json::to_vec(item).map_or(0, |b| (b.len() as u64).div_ceil(1024))
}

const INDEXES: [Index; 2] = [Index::Gsi1, Index::Gsi2];

/// What a write's units depend on in one version of an item: its size and
/// where it sits in each index. The absent item is `Image::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Image {
    kib: u64,
    /// The item's (partition, sort) key in gsi1 and gsi2, when it is in them.
    entries: [Option<(String, String)>; 2],
}

impl Image {
    fn of(item: Option<&Item>) -> Self {
        let Some(item) = item else {
            return Image::default();
        };
        let entry = |index: Index| {
            let (pk, sk) = index.key_attributes();
            let text = |attr| item.get(attr).and_then(|v| v.as_str()).map(str::to_owned);
            text(pk).zip(text(sk))
        };
        Image {
            kib: size(item),
            entries: INDEXES.map(entry),
        }
    }
}

fn put_before(cond: Option<&Cond>) -> Before {
    match cond {
        Some(Cond::NotExists) => Before::Absent,
        _ => Before::Read,
    }
}

/// An update that sets or removes an index key attribute can move the item
/// into, out of or within an index; no other can.
fn update_before(update: &Update) -> Before {
    let index_key = |attr: &str| {
        INDEXES.iter().any(|i| {
            let (pk, sk) = i.key_attributes();
            attr == pk || attr == sk
        })
    };
    let moves = update
        .set
        .iter()
        .chain(&update.set_if_absent)
        .map(|(a, _)| a.as_str())
        .chain(update.remove.iter().map(String::as_str))
        .any(index_key);
    if moves { Before::Read } else { Before::AsAfter }
}

/// Write units to charge, by base-table item and by index partition.
#[derive(Debug, Default)]
struct Bill {
    base: Vec<(Key, u64)>,
    index: Vec<(IndexPartition, u64)>,
}

impl Bill {
    /// One base-table write of `key` from `before` to `after` (`times` 2
    /// inside a transaction), with its index writes when it `landed`.
    fn write(&mut self, key: Key, before: &Image, after: &Image, times: u64, landed: bool) {
        self.base
            .push((key, times * before.kib.max(after.kib).max(1)));
        if !landed {
            return;
        }
        for (i, index) in INDEXES.iter().enumerate() {
            let Some(name) = index.name() else { continue };
            let mut write = |entry: &(String, String), kib: u64| {
                self.index.push(((name, entry.0.clone()), kib.max(1)));
            };
            match (&before.entries[i], &after.entries[i]) {
                (None, None) => {}
                (Some(old), Some(new)) if old == new => write(new, after.kib),
                (old, new) => {
                    if let Some(old) = old {
                        write(old, before.kib);
                    }
                    if let Some(new) = new {
                        write(new, after.kib);
                    }
                }
            }
        }
    }
}

pub struct MeteredTable {
    pub inner: Arc<dyn Table>,
    pub meter: Arc<Meter>,
}

/// One write, as far as its bill needs it.
struct Planned {
    key: Key,
    before: Before,
    /// The item after when known (a put, a delete); `None` reads it back.
    after: Option<Image>,
}

/// How a planned write learns the item before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// Read it first: the write can move the item in the indexes.
    Read,
    /// A put conditioned on absence: nothing was there (if it landed).
    Absent,
    /// An update touching no index key: where it was is where it is.
    AsAfter,
}

impl MeteredTable {
    fn request(&self) {
        Meter::add(&self.meter.table_requests, 1);
    }

    /// The items under `keys` now, as images (not itself counted; a failed
    /// read reads as absent, which charges the minimum).
    async fn images(&self, keys: &[&Key]) -> Vec<Image> {
        if keys.is_empty() {
            return Vec::new();
        }
        let owned: Vec<Key> = keys.iter().map(|k| (*k).clone()).collect();
        match self.inner.get_many(&owned).await {
            Ok(items) => items.iter().map(|i| Image::of(i.as_ref())).collect(),
            Err(_) => vec![Image::default(); keys.len()],
        }
    }

    /// Bills planned writes: reads what the plan leaves unknown, before
    /// the inner call (`write`) and after it, and charges it all at once.
    async fn bill_around<T>(
        &self,
        plan: Vec<Planned>,
        times: u64,
        write: impl Future<Output = Result<T, TableError>>,
    ) -> Result<T, TableError> {
        let to_read: Vec<&Key> = plan
            .iter()
            .filter(|p| p.before == Before::Read)
            .map(|p| &p.key)
            .collect();
        let mut read = self.images(&to_read).await.into_iter();
        let befores: Vec<Option<Image>> = plan
            .iter()
            .map(|p| match p.before {
                Before::Read => read.next(),
                Before::Absent => Some(Image::default()),
                Before::AsAfter => None,
            })
            .collect();
        let result = write.await;
        let to_read: Vec<&Key> = plan
            .iter()
            .filter(|p| p.after.is_none())
            .map(|p| &p.key)
            .collect();
        let mut read = self.images(&to_read).await.into_iter();
        let mut bill = Bill::default();
        for (p, before) in plan.into_iter().zip(befores) {
            let after = p.after.or_else(|| read.next()).unwrap_or_default();
            // Unread before: the write left the item where it was.
            let before = before.unwrap_or_else(|| after.clone());
            bill.write(p.key, &before, &after, times, result.is_ok());
        }
        self.meter.charge(bill);
        result
    }
}

#[async_trait]
impl Table for MeteredTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.request();
        let found = self.inner.get(key).await?;
        Meter::add(&self.meter.items_read, u64::from(found.is_some()));
        Ok(found)
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        Meter::add(&self.meter.table_requests, keys.len().div_ceil(100) as u64);
        let found = self.inner.get_many(keys).await?;
        let n = found.iter().filter(|i| i.is_some()).count();
        Meter::add(&self.meter.items_read, n as u64);
        Ok(found)
    }

    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError> {
        self.request();
        let Ok(key) = Key::of(&item) else {
            // Refused before it is written; nothing to bill but the minimum.
            Meter::add(&self.meter.write_units, 1);
            return self.inner.put(item, cond).await;
        };
        self.meter.check_held([&key]);
        let plan = vec![Planned {
            key,
            before: put_before(cond.as_ref()),
            after: Some(Image::of(Some(&item))),
        }];
        self.bill_around(plan, 1, self.inner.put(item, cond)).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, TableError> {
        self.request();
        self.meter.check_held([key]);
        let before = if update_before(&update) == Before::Read {
            self.images(&[key]).await.pop()
        } else {
            None
        };
        let result = self.inner.update(key, update, cond).await;
        let after = Image::of(result.as_ref().ok());
        let before = before.unwrap_or_else(|| after.clone());
        let mut bill = Bill::default();
        bill.write(key.clone(), &before, &after, 1, result.is_ok());
        self.meter.charge(bill);
        result
    }

    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError> {
        self.request();
        self.meter.check_held([key]);
        let result = self.inner.delete(key, cond).await;
        let before = Image::of(result.as_ref().ok().and_then(Option::as_ref));
        let mut bill = Bill::default();
        bill.write(key.clone(), &before, &Image::default(), 1, result.is_ok());
        self.meter.charge(bill);
        result
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        self.request();
        let held: Vec<Key> = ops.iter().filter_map(|op| op.key().ok()).collect();
        // Condition checks write nothing and are not billed here.
        let plan: Vec<Planned> = ops
            .iter()
            .filter_map(|op| {
                let key = op.key().ok()?;
                Some(match op {
                    TxOp::Put { item, cond } => Planned {
                        key,
                        before: put_before(cond.as_ref()),
                        after: Some(Image::of(Some(item))),
                    },
                    TxOp::Update { update, .. } => Planned {
                        key,
                        before: update_before(update),
                        after: None,
                    },
                    TxOp::Delete { .. } => Planned {
                        key,
                        before: Before::Read,
                        after: Some(Image::default()),
                    },
                    TxOp::Check { .. } => return None,
                })
            })
            .collect();
        let inner = &self.inner;
        let meter = &self.meter;
        self.bill_around(plan, 2, async move {
            // Held only around the inner call, not the meter's own reads.
            let _held = meter.hold(held);
            inner.transact(ops).await
        })
        .await
    }

    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        Meter::add(&self.meter.table_requests, ops.len().div_ceil(25) as u64);
        let plan: Vec<Planned> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Put(item) => Some(Planned {
                    key: Key::of(item).ok()?,
                    before: Before::Read,
                    after: Some(Image::of(Some(item))),
                }),
                WriteOp::Delete(key) => Some(Planned {
                    key: key.clone(),
                    before: Before::Read,
                    after: Some(Image::default()),
                }),
            })
            .collect();
        self.meter.check_held(plan.iter().map(|p| &p.key));
        self.bill_around(plan, 1, self.inner.batch_write(ops)).await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.request();
        let page = self.inner.query(query).await?;
        Meter::add(&self.meter.items_read, page.items.len() as u64);
        Ok(page)
    }
}

/// A key's shape with its ids left out, for printing: each `#`-separated
/// part that is an upper-case label is kept, anything else (ids, phones,
/// dates, names) becomes `…`. `CHURCH#01J…` / `MSG#01J…` → `CHURCH#…/MSG#…`.
pub fn key_shape(key: &Key) -> String {
    format!("{}/{}", shape(&key.pk), shape(&key.sk))
}

/// One key attribute's shape (see `key_shape`).
pub fn shape(part: &str) -> String {
    part.split('#')
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                p
            } else {
                "…"
            }
        })
        .collect::<Vec<_>>()
        .join("#")
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::{Value, json};
    use tokio::sync::Barrier;

    use super::*;

    /// A table in a map, conditions ignored; `together` makes every
    /// transaction wait at a barrier, so tests can overlap them for sure.
    #[derive(Default)]
    struct Memory {
        items: Mutex<HashMap<Key, Item>>,
        together: Option<Arc<Barrier>>,
    }

    impl Memory {
        fn items(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Item>> {
            self.items.lock().unwrap()
        }

        fn apply(&self, key: &Key, update: &Update) -> Item {
            let mut items = self.items();
            let item = items.entry(key.clone()).or_insert_with(|| {
                let mut item = Item::new();
                item.insert("pk".into(), key.pk.clone().into());
                item.insert("sk".into(), key.sk.clone().into());
                item
            });
            for (attr, value) in &update.set {
                item.insert(attr.clone(), value.clone());
            }
            for (attr, value) in &update.set_if_absent {
                item.entry(attr.clone()).or_insert_with(|| value.clone());
            }
            for (attr, by) in &update.add {
                let now = item.get(attr).and_then(Value::as_i64).unwrap_or(0);
                item.insert(attr.clone(), (now + by).into());
            }
            for attr in &update.remove {
                item.remove(attr);
            }
            item.clone()
        }
    }

    #[async_trait]
    impl Table for Memory {
        async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
            Ok(self.items().get(key).cloned())
        }
        async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
            let items = self.items();
            Ok(keys.iter().map(|k| items.get(k).cloned()).collect())
        }
        async fn put(&self, item: Item, _: Option<Cond>) -> Result<(), TableError> {
            self.items().insert(Key::of(&item)?, item);
            Ok(())
        }
        async fn update(
            &self,
            key: &Key,
            update: Update,
            _: Option<Cond>,
        ) -> Result<Item, TableError> {
            Ok(self.apply(key, &update))
        }
        async fn delete(&self, key: &Key, _: Option<Cond>) -> Result<Option<Item>, TableError> {
            Ok(self.items().remove(key))
        }
        async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
            if let Some(barrier) = &self.together {
                barrier.wait().await;
            }
            for op in ops {
                match op {
                    TxOp::Put { item, .. } => self.put(item, None).await?,
                    TxOp::Update { key, update, .. } => drop(self.apply(&key, &update)),
                    TxOp::Delete { key, .. } => drop(self.items().remove(&key)),
                    TxOp::Check { .. } => {}
                }
            }
            Ok(())
        }
        async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
            for op in ops {
                match op {
                    WriteOp::Put(item) => self.put(item, None).await?,
                    WriteOp::Delete(key) => drop(self.items().remove(&key)),
                }
            }
            Ok(())
        }
        async fn query(&self, _: Query) -> Result<Page, TableError> {
            Err(TableError::Invalid(
                "the test table answers no queries".into(),
            ))
        }
    }

    fn metered(inner: Memory) -> (MeteredTable, Arc<Meter>) {
        let meter = Arc::new(Meter::stepped());
        let table = MeteredTable {
            inner: Arc::new(inner),
            meter: Arc::clone(&meter),
        };
        (table, meter)
    }

    fn item(value: Value) -> Item {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object: {value}"),
        }
    }

    fn count(units: u64) -> Update {
        Update::default().add("sent", units as i64)
    }

    fn bump(key: &Key) -> TxOp {
        TxOp::Update {
            key: key.clone(),
            update: count(1),
            cond: None,
        }
    }

    #[tokio::test]
    async fn a_burst_to_one_item_in_one_second_is_that_items_units_per_second() {
        let (table, meter) = metered(Memory::default());
        let counters = Key::new("CHURCH#1", "MSG#1");
        for _ in 0..5 {
            table.update(&counters, count(1), None).await.unwrap();
        }
        // Transactional writes take two units each.
        table.transact(vec![bump(&counters)]).await.unwrap();
        meter.set_second(1);
        for _ in 0..3 {
            table.update(&counters, count(1), None).await.unwrap();
        }

        let hot = meter.hotspots();
        assert_eq!(
            hot.item,
            Some(Hot {
                key: counters.clone(),
                count: 7
            })
        );
        assert_eq!(
            hot.partition,
            Some(Hot {
                key: "CHURCH#1".into(),
                count: 7
            })
        );
        assert_eq!(meter.read().write_units, 10);
    }

    #[tokio::test]
    async fn writes_spread_over_one_partition_are_that_partitions_units_per_second() {
        let (table, meter) = metered(Memory::default());
        let recipient = |i: u32| json!({"pk": "MSG#1", "sk": format!("RCPT#{i}")});
        for i in 0..12 {
            table.put(item(recipient(i)), None).await.unwrap();
        }
        table
            .batch_write((12..20).map(|i| WriteOp::Put(item(recipient(i)))).collect())
            .await
            .unwrap();
        table
            .put(item(json!({"pk": "CHURCH#1", "sk": "PROFILE"})), None)
            .await
            .unwrap();
        // The next second starts from nothing: its 6 do not add to the 20.
        meter.set_second(1);
        for i in 20..26 {
            table.put(item(recipient(i)), None).await.unwrap();
        }

        let hot = meter.hotspots();
        assert_eq!(
            hot.partition,
            Some(Hot {
                key: "MSG#1".into(),
                count: 20
            })
        );
        assert_eq!(hot.item.map(|h| h.count), Some(1));
        assert_eq!(hot.index_partition, None);
    }

    #[tokio::test]
    async fn overlapping_transactions_on_one_item_count_one_conflict() {
        let together = Arc::new(Barrier::new(2));
        let (table, meter) = metered(Memory {
            together: Some(Arc::clone(&together)),
            ..Memory::default()
        });
        let counters = Key::new("CHURCH#1", "MSG#1");
        let (a, b) = tokio::join!(
            table.transact(vec![bump(&counters), bump(&Key::new("MSG#1", "RCPT#1"))]),
            table.transact(vec![bump(&counters), bump(&Key::new("MSG#1", "RCPT#2"))]),
        );
        a.unwrap();
        b.unwrap();

        assert_eq!(meter.read().transaction_conflicts, 1);
        assert_eq!(
            meter.hotspots().conflicted_item,
            Some(Hot {
                key: counters,
                count: 1
            })
        );
    }

    #[tokio::test]
    async fn transactions_one_after_another_do_not_conflict() {
        let (table, meter) = metered(Memory::default());
        let counters = Key::new("CHURCH#1", "MSG#1");
        table.transact(vec![bump(&counters)]).await.unwrap();
        table.transact(vec![bump(&counters)]).await.unwrap();

        assert_eq!(meter.read().transaction_conflicts, 0);
        assert_eq!(meter.hotspots().conflicted_item, None);
    }

    #[tokio::test]
    async fn a_write_to_an_item_a_transaction_holds_is_counted() {
        let together = Arc::new(Barrier::new(2));
        let (table, meter) = metered(Memory {
            together: Some(Arc::clone(&together)),
            ..Memory::default()
        });
        let counters = Key::new("CHURCH#1", "MSG#1");
        let (a, b) = tokio::join!(table.transact(vec![bump(&counters)]), async {
            let during = table.update(&counters, count(1), None).await;
            let elsewhere = table
                .update(&Key::new("CHURCH#1", "DAY#1"), count(1), None)
                .await;
            together.wait().await;
            during.and(elsewhere)
        });
        a.unwrap();
        b.unwrap();
        // After the transaction, the item is free again.
        table.update(&counters, count(1), None).await.unwrap();

        let used = meter.read();
        assert_eq!(used.writes_during_transactions, 1);
        assert_eq!(used.transaction_conflicts, 0);
    }

    #[tokio::test]
    async fn a_put_of_an_item_in_gsi1_costs_an_index_write_unit() {
        let (table, meter) = metered(Memory::default());
        let indexed =
            json!({"pk": "MSG#1", "sk": "RCPT#1", "gsi1pk": "CARRIER#abc", "gsi1sk": "RCPT"});
        table.put(item(indexed), None).await.unwrap();
        assert_eq!(meter.read().gsi_write_units, 1);
        assert_eq!(meter.read().write_units, 1);
        assert_eq!(
            meter.hotspots().index_partition,
            Some(Hot {
                key: ("gsi1", "CARRIER#abc".into()),
                count: 1
            })
        );

        // Half an index key is no place in the index.
        let half = json!({"pk": "MSG#1", "sk": "RCPT#2", "gsi1pk": "CARRIER#def"});
        table.put(item(half), None).await.unwrap();
        assert_eq!(meter.read().gsi_write_units, 1);
    }

    #[tokio::test]
    async fn index_writes_follow_the_item_into_out_of_and_within_an_index() {
        let (table, meter) = metered(Memory::default());
        let key = Key::new("MSG#1", "RCPT#1");
        let gsi = |m: &Meter| m.read().gsi_write_units;

        // Not in an index: no index write.
        table.update(&key, count(1), None).await.unwrap();
        assert_eq!(gsi(&meter), 0);
        // Enters gsi1 in a transaction: one put on the index, not doubled.
        let enter = Update::default()
            .set("gsi1pk", "CARRIER#abc")
            .set("gsi1sk", "RCPT");
        table
            .transact(vec![TxOp::Update {
                key: key.clone(),
                update: enter,
                cond: None,
            }])
            .await
            .unwrap();
        assert_eq!(gsi(&meter), 1);
        // Stays (no index key touched): one update on the index.
        table.update(&key, count(1), None).await.unwrap();
        assert_eq!(gsi(&meter), 2);
        // Its index key changes: a delete and a put.
        table
            .update(&key, Update::default().set("gsi1pk", "CARRIER#def"), None)
            .await
            .unwrap();
        assert_eq!(gsi(&meter), 4);
        // Leaves: one delete.
        table
            .update(&key, Update::default().remove("gsi1sk"), None)
            .await
            .unwrap();
        assert_eq!(gsi(&meter), 5);
        // Enters gsi2; then a put over it without index keys deletes the entry.
        table
            .update(
                &key,
                Update::default().set("gsi2pk", "A").set("gsi2sk", "B"),
                None,
            )
            .await
            .unwrap();
        assert_eq!(gsi(&meter), 6);
        table
            .batch_write(vec![WriteOp::Put(item(
                json!({"pk": "MSG#1", "sk": "RCPT#1"}),
            ))])
            .await
            .unwrap();
        assert_eq!(gsi(&meter), 7);
        // Base-table units are counted apart: 1 + 2 + 1 + 1 + 1 + 1 + 1.
        assert_eq!(meter.read().write_units, 8);
        assert_eq!(meter.read().total_write_units(), 15);
    }

    #[tokio::test]
    async fn a_restart_forgets_the_peaks_but_not_the_counters() {
        let (table, meter) = metered(Memory::default());
        let key = Key::new("CHURCH#1", "COUNTERS");
        table.update(&key, count(1), None).await.unwrap();
        meter.restart_hotspots();
        assert_eq!(meter.hotspots(), Hotspots::default());
        assert_eq!(meter.read().write_units, 1);
        table.update(&key, count(1), None).await.unwrap();
        assert_eq!(meter.hotspots().item.map(|h| h.count), Some(1));
    }

    #[test]
    fn a_keys_shape_keeps_its_labels_and_drops_its_ids() {
        let key = Key::new("CHURCH#01J9ZX3Q", "MSG#01J9ZY7R");
        assert_eq!(key_shape(&key), "CHURCH#…/MSG#…");
        assert_eq!(shape("CONVS#01J9ZX3Q#open"), "CONVS#…#…");
        assert_eq!(shape("NUMBER#+15551234567"), "NUMBER#…");
        assert_eq!(shape("CHURCH#01J9ZX3Q#LASTNAME"), "CHURCH#…#LASTNAME");
    }
}
