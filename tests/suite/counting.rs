//! The counts aggregator under faults, with a recount of the recipients as
//! the judge: stream batches delivered again (whole, bisected, reversed),
//! an aggregator that dies half-way through a batch, two aggregators on
//! one batch at once, a crash after each commit through the local event
//! source mapping, and a carrier failing a fifth of the texts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::json;
use shared::adapters::embedded::EmbeddedChanges;
use shared::catalog::Catalog;
use shared::domain::{ChurchId, MessageId};
use shared::keys;
use shared::local::LocalStack;
use shared::messaging::aggregate;
use shared::messaging::entities::{Figures, Message, MessageCounts, Recipient, StatusCounts};
use shared::messaging::model::Status;
use shared::ports::changes::{Change, Changes};
use shared::ports::table::{
    Cond, Item, Key, Page, Query, SortCond, Table, TableError, TxOp, Update, WriteOp,
};
use shared::registry::{Entry, Registry, StreamFuture};
use shared::store::Entities;

use crate::support::{Admin, Stack, expect_status as body};

const MEMBERS: usize = 40;
const IN_BRANCH: usize = 10;

/// A stack on a carrier failing a fifth of its texts, whose counts
/// aggregator runs only when `aggregating` (otherwise the test feeds it).
async fn stack(aggregating: bool, registry: &Registry) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let config = shared::config::Config::local_in(
        dir.path(),
        &[
            // A fifth of the sends answered 5xx (retried), a fifth of the
            // accepted texts finalized as failed.
            ("TELNYX_SIM_FAILURE_RATE", "0.2"),
            ("TELNYX_SIM_DELIVERY_FAILURE_RATE", "0.2"),
            ("TELNYX_SIM_LATENCY_MS", "0-5"),
        ],
    )
    .unwrap();
    let mut catalog = Catalog::builtin().unwrap().clone();
    if !aggregating {
        for function in &mut catalog.functions {
            function.stream_triggers.clear();
        }
    }
    let stack = LocalStack::start(config, &catalog, registry).await.unwrap();
    Stack::wrap(stack, dir)
}

/// A church with `MEMBERS` members, `IN_BRANCH` of them in a branch.
async fn church(s: &Stack) -> (Admin, ChurchId) {
    let (admin, _) = s
        .church_with_members("pastor@counting.example", "+12025550100", 100, 0)
        .await;
    let branch = body(
        s.call(
            &admin,
            "POST",
            "/api/branches",
            Some(json!({"name": "North"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..MEMBERS {
        let mut member = json!({"firstName": format!("M{i:02}"), "lastName": "T", "phone": format!("+1303555{i:04}")});
        if i < IN_BRANCH {
            member["branchId"] = json!(branch);
        }
        body(
            s.call(&admin, "POST", "/api/members", Some(member)).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let church = ChurchId::parse(&admin.church_id).unwrap();
    (admin, church)
}

/// Every recipient of a message, read from its lanes.
async fn recipients(
    table: &dyn Table,
    church: ChurchId,
    id: MessageId,
) -> (Message, Vec<Recipient>) {
    let message: Message = table
        .load(&keys::message(church, id))
        .await
        .unwrap()
        .unwrap();
    let mut all = Vec::new();
    for lane in 0..message.lanes {
        let query = Query::partition(keys::recipients(id, lane))
            .sort(SortCond::BeginsWith(keys::RECIPIENT_PREFIX.into()));
        all.extend(table.find_all::<Recipient>(query).await.unwrap());
    }
    (message, all)
}

/// What the counts must be: recounted from the recipients themselves.
struct Recount {
    counts: MessageCounts,
    /// Sent (the carrier took it), delivered, failed, opted out, per day.
    days: BTreeMap<String, Tally5>,
    /// The same, per branch.
    branches: BTreeMap<String, Tally5>,
}

/// Sent, delivered, failed, opted out, refused (failed, never taken).
type Tally5 = (i64, i64, i64, i64, i64);

fn figures_of(r: &Recipient) -> Tally5 {
    let failed = r.status == Status::Failed;
    (
        i64::from(r.carrier_id.is_some()),
        i64::from(r.status == Status::Delivered),
        i64::from(failed),
        i64::from(r.status == Status::OptedOut),
        i64::from(failed && r.carrier_id.is_none()),
    )
}

fn plus(a: Tally5, b: Tally5) -> Tally5 {
    (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3, a.4 + b.4)
}

async fn recount(
    table: &dyn Table,
    church: ChurchId,
    ids: &[MessageId],
) -> BTreeMap<MessageId, Recount> {
    let mut out = BTreeMap::new();
    for id in ids {
        let (_, all) = recipients(table, church, *id).await;
        let mut counts = StatusCounts::default();
        let mut days: BTreeMap<String, Tally5> = BTreeMap::new();
        let mut branches: BTreeMap<String, Tally5> = BTreeMap::new();
        for r in &all {
            let n = match r.status {
                Status::Queued => &mut counts.queued_count,
                Status::Sending => &mut counts.sending_count,
                Status::Sent => &mut counts.sent_count,
                Status::Delivered => &mut counts.delivered_count,
                Status::Failed => &mut counts.failed_count,
                Status::OptedOut => &mut counts.opted_out_count,
                Status::Uncertain => &mut counts.uncertain_count,
                Status::Cancelled => &mut counts.cancelled_count,
            };
            *n += 1;
            let day = days.entry(r.updated_at[..10].to_owned()).or_default();
            *day = plus(*day, figures_of(r));
            if let Some(b) = r.branch_id {
                let branch = branches.entry(b.to_string()).or_default();
                *branch = plus(*branch, figures_of(r));
            }
        }
        let counts = MessageCounts {
            recipients: all.len() as i64,
            counts,
        };
        out.insert(
            *id,
            Recount {
                counts,
                days,
                branches,
            },
        );
    }
    out
}

/// Asserts every counter the aggregator keeps equals the recount.
async fn assert_counts_are_the_recount(
    s: &Stack,
    admin: &Admin,
    church: ChurchId,
    ids: &[MessageId],
    when: &str,
) {
    let table = s.stack.app.table.as_ref();
    let expected = recount(table, church, ids).await;
    let mut days: BTreeMap<String, Tally5> = BTreeMap::new();
    let mut by_branch: BTreeMap<String, Tally5> = BTreeMap::new();
    for (id, recount) in &expected {
        let counted: MessageCounts = table
            .load(&keys::message_counts(church, *id))
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(counted, recount.counts, "{when}: message {id}'s counts");
        for (day, f) in &recount.days {
            let d = days.entry(day.clone()).or_default();
            *d = plus(*d, *f);
        }
        for (b, f) in &recount.branches {
            let branch = by_branch.entry(b.clone()).or_default();
            *branch = plus(*branch, *f);
        }
    }
    for (day, expected) in days {
        let f: Figures = table
            .load(&keys::day(church, &day))
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(
            (f.sent, f.delivered, f.failed, f.opted_out, f.refused),
            expected,
            "{when}: the figures of {day}"
        );
    }
    let branches = body(
        s.call(admin, "GET", "/api/analytics/branches", None).await,
        StatusCode::OK,
    )
    .await;
    // North holds IN_BRANCH members; the rest joined the Main Campus.
    for row in branches.as_array().unwrap() {
        let f = by_branch
            .get(row["id"].as_str().unwrap())
            .copied()
            .unwrap_or_default();
        assert_eq!(
            row["messageCount"],
            json!(f.0 + f.4),
            "{when}: {}'s texts, sent or refused",
            row["name"]
        );
    }
}

/// Waits until every recipient of `ids` is in a final state.
async fn until_settled(s: &Stack, church: ChurchId, ids: &[MessageId]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut settled = true;
        for id in ids {
            let (message, all) = recipients(s.stack.app.table.as_ref(), church, *id).await;
            settled &= message.fanned_out && all.iter().all(|r| r.status.is_terminal());
        }
        if settled {
            return;
        }
        assert!(Instant::now() < deadline, "recipients left unsettled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to `within`) until the aggregator's counts are the recount.
async fn until_counted(s: &Stack, church: ChurchId, ids: &[MessageId], within: Duration) {
    let table = s.stack.app.table.as_ref();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let expected = recount(table, church, ids).await;
        let mut all = true;
        for (id, recount) in &expected {
            let counted: Option<MessageCounts> = table
                .load(&keys::message_counts(church, *id))
                .await
                .unwrap();
            all &= counted == Some(recount.counts);
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of the stream so far, shard by shard in order.
async fn the_stream(s: &Stack) -> Vec<Vec<Change>> {
    let changes = EmbeddedChanges::new(s.stack.parts.store.clone());
    let mut shards = Vec::new();
    for shard in changes.shards().await.unwrap() {
        shards.push(changes.read(&shard.id, None, 100_000).await.unwrap());
    }
    shards
}

async fn send_three(s: &Stack, admin: &Admin) -> Vec<MessageId> {
    let mut ids = Vec::new();
    for text in ["Sunday at 10", "Choir at 7", "Potluck Friday"] {
        ids.push(MessageId::parse(&s.send_to_all(admin, text).await).unwrap());
    }
    ids
}

/// Three messages sent to the church and settled, none of it counted yet.
async fn three_sent_uncounted() -> (Stack, Admin, ChurchId, Vec<MessageId>) {
    let s = stack(false, &Registry::builtin()).await;
    let (admin, church) = church(&s).await;
    let ids = send_three(&s, &admin).await;
    until_settled(&s, church, &ids).await;
    (s, admin, church, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_delivered_again_whole_bisected_or_reversed_count_once() {
    let (s, admin, church, ids) = three_sent_uncounted().await;
    let table = s.stack.app.table.as_ref();
    let shards = the_stream(&s).await;
    // First delivery, in batches of 37 per shard.
    for shard in &shards {
        for batch in shard.chunks(37) {
            aggregate::apply(table, batch).await.unwrap();
        }
    }
    assert_counts_are_the_recount(&s, &admin, church, &ids, "after one delivery").await;
    // Lambda delivers again: the same batches, bisected halves, a shard
    // read from its start, and records in reverse (older after newer).
    for shard in &shards {
        for batch in shard.chunks(37) {
            let outcome = aggregate::apply(table, batch).await.unwrap();
            assert_eq!(outcome.counted, 0, "a redelivered batch counts nothing");
            let (a, b) = batch.split_at(batch.len() / 2);
            aggregate::apply(table, a).await.unwrap();
            aggregate::apply(table, b).await.unwrap();
        }
        aggregate::apply(table, shard).await.unwrap();
        let reversed: Vec<Change> = shard.iter().rev().cloned().collect();
        aggregate::apply(table, &reversed).await.unwrap();
    }
    assert_counts_are_the_recount(&s, &admin, church, &ids, "after every redelivery").await;
    let view = s.view_when(&admin, &ids[0].to_string(), |_| true).await;
    assert_eq!(view["data"]["state"], "completed");
    s.stop().await;
}

/// A table whose transactions fail once `budget` of them have committed:
/// an aggregator killed half-way through a batch.
struct DiesAfter {
    inner: Arc<dyn Table>,
    budget: AtomicUsize,
}

#[async_trait]
impl Table for DiesAfter {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        self.inner.get_many(keys).await
    }
    async fn put(&self, item: Item, cond: Option<Cond>) -> Result<(), TableError> {
        self.inner.put(item, cond).await
    }
    async fn update(
        &self,
        key: &Key,
        update: Update,
        cond: Option<Cond>,
    ) -> Result<Item, TableError> {
        self.inner.update(key, update, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        let left = self.budget.load(Ordering::SeqCst);
        if left == 0 {
            return Err(TableError::backend(
                "write a transaction",
                "the aggregator was killed",
            ));
        }
        self.budget.store(left - 1, Ordering::SeqCst);
        self.inner.transact(ops).await
    }
    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        self.inner.batch_write(ops).await
    }
    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.inner.query(query).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_killed_mid_batch_then_given_the_batch_again_loses_and_doubles_nothing() {
    let (s, admin, church, ids) = three_sent_uncounted().await;
    let shards = the_stream(&s).await;
    let mut deaths = 0;
    for shard in &shards {
        for (n, batch) in shard.chunks(200).enumerate() {
            // Three messages in a batch, a transaction each: it dies after n % 3.
            let dying = DiesAfter {
                inner: Arc::clone(&s.stack.app.table),
                budget: AtomicUsize::new(n % 3),
            };
            if aggregate::apply(&dying, batch).await.is_err() {
                deaths += 1;
            }
            // Lambda gives the batch again, to an aggregator that lives.
            aggregate::apply(s.stack.app.table.as_ref(), batch)
                .await
                .unwrap();
        }
    }
    assert!(deaths > 0, "some batches died half-way");
    assert_counts_are_the_recount(&s, &admin, church, &ids, "after the crashes").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_aggregators_on_the_same_records_at_once_count_them_once() {
    let (s, admin, church, ids) = three_sent_uncounted().await;
    let table = s.stack.app.table.as_ref();
    let all: Vec<Change> = the_stream(&s).await.into_iter().flatten().collect();
    for batch in all.chunks(50) {
        let (a, b) = tokio::join!(
            aggregate::apply(table, batch),
            aggregate::apply(table, batch)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let recipients = batch
            .iter()
            .filter(|c| c.key.sk.starts_with(keys::RECIPIENT_PREFIX))
            .count();
        assert_eq!(
            a.counted + b.counted,
            recipients,
            "of two racing aggregators, each record is counted by one"
        );
    }
    assert_counts_are_the_recount(&s, &admin, church, &ids, "after the race").await;
    s.stop().await;
}

static INVOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// The real aggregator, crashing after every third commit: the local event
/// source mapping delivers the batch again, bisected.
fn crashes_after_committing<'a>(
    app: &'a shared::app::App,
    event: aws_lambda_events::event::dynamodb::Event,
) -> StreamFuture<'a> {
    Box::pin(async move {
        shared::handlers::consumers::counts(app, event).await?;
        if INVOCATIONS.fetch_add(1, Ordering::SeqCst).is_multiple_of(3) {
            return Err("killed after its commit".into());
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_event_source_mapping_redelivers_a_crashed_batch_and_counts_stay_exact() {
    let registry = Registry::builtin().with(
        "CountsAggregatorFunction",
        Entry::Stream(crashes_after_committing),
    );
    let s = stack(true, &registry).await;
    let (admin, church) = church(&s).await;
    let ids = send_three(&s, &admin).await;
    until_settled(&s, church, &ids).await;
    // Retries and bisects take a while: not the lag bound's business.
    until_counted(&s, church, &ids, Duration::from_secs(60)).await;
    assert!(
        INVOCATIONS.load(Ordering::SeqCst) > 2,
        "batches were redelivered"
    );
    assert_counts_are_the_recount(&s, &admin, church, &ids, "through the event source mapping")
        .await;
    let counts = &s.view_when(&admin, &ids[0].to_string(), |_| true).await["data"]["counts"];
    assert!(
        counts["failed"].as_i64().unwrap() > 0,
        "the carrier failed some: {counts}"
    );
    s.stop().await;
}
