//! The change stream port: what DynamoDB Streams (NEW_AND_OLD_IMAGES)
//! promises, the embedded stream must keep too. Every write goes through
//! the table port; the stream is read back through the change port.
//!
//! DynamoDB Streams shows a write a moment after it returns, so reads poll
//! until what a test waits for has arrived. To show that a write left no
//! record, a test writes a marker to the same item afterwards: records of
//! one item come in write order, so once the marker is there, anything the
//! earlier write recorded would be too.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::ports::changes::{Change, ChangeKind, ChangesError, compare_sequences};
use shared::ports::table::{Cond, Item, Key, TableError, TxOp, Update};

use crate::support::{World, conformance};

conformance!(
    a_put_an_update_and_a_delete_each_appear_once,
    a_transaction_records_each_item_it_changed_once,
    one_items_records_come_in_write_order_in_one_shard,
    reading_after_a_sequence_resumes_right_after_it,
    pages_of_one_read_what_one_big_read_reads,
    a_read_at_the_end_sees_later_writes,
    a_failed_conditional_write_leaves_no_record,
    a_write_that_changes_nothing_leaves_no_record,
    sequence_numbers_increase_within_a_shard,
    shards_list_parents_first_and_refuse_an_unknown_shard,
);

/// Every test's items live under this partition-key prefix, so writes the
/// embedded stack makes on its own never count.
const PREFIX: &str = "STREAM#";

/// How long a test waits for the stream to show its writes.
const PATIENCE: Duration = Duration::from_secs(10);

fn item(value: Value) -> Item {
    value.as_object().cloned().unwrap()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A shard's records after `after` (from its start when `None`), read in
/// pages of `page` to its current end.
async fn read_shard(w: &World, shard: &str, after: Option<&str>, page: u32) -> Vec<Change> {
    let mut after = after.map(str::to_owned);
    let mut records = Vec::new();
    loop {
        let batch = w.changes.read(shard, after.as_deref(), page).await.unwrap();
        assert!(batch.len() <= page as usize, "{} > {page}", batch.len());
        let Some(last) = batch.last() else {
            return records;
        };
        after = Some(last.sequence.clone());
        records.extend(batch);
    }
}

/// The test's records on the whole stream, shard by shard (parents first),
/// each with its shard, read in pages of `page`.
async fn read_stream(w: &World, page: u32) -> Vec<(String, Change)> {
    let mut records = Vec::new();
    for shard in w.changes.shards().await.unwrap() {
        for change in read_shard(w, &shard.id, None, page).await {
            if change.key.pk.starts_with(PREFIX) {
                records.push((shard.id.clone(), change));
            }
        }
    }
    records
}

/// The test's records once `arrived` holds of them (or what there is after
/// `PATIENCE`), read in pages of `page`.
async fn until(
    w: &World,
    page: u32,
    arrived: impl Fn(&[(String, Change)]) -> bool,
) -> Vec<(String, Change)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let records = read_stream(w, page).await;
        if arrived(&records) || Instant::now() >= deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test's records once there are at least `n`.
async fn at_least(w: &World, n: usize) -> Vec<(String, Change)> {
    until(w, 100, |r| r.len() >= n).await
}

/// The records of `key`, in stream order.
fn of<'a>(records: &'a [(String, Change)], key: &Key) -> Vec<&'a Change> {
    records
        .iter()
        .map(|(_, c)| c)
        .filter(|c| &c.key == key)
        .collect()
}

/// What a record says happened: its kind and images.
fn what(change: &Change) -> (ChangeKind, Option<Item>, Option<Item>) {
    (change.kind, change.old.clone(), change.new.clone())
}

/// A marker written last to `key`: a `marker` attribute set to true.
async fn mark(w: &World, key: &Key) -> Item {
    w.table
        .update(key, Update::default().set("marker", true), None)
        .await
        .unwrap()
}

fn is_marked(change: &Change) -> bool {
    change
        .new
        .as_ref()
        .is_some_and(|n| n.get("marker") == Some(&json!(true)))
}

/// The test's records once the marker written to each of `keys` is there.
async fn until_marked(w: &World, keys: &[&Key]) -> Vec<(String, Change)> {
    until(w, 100, |records| {
        keys.iter()
            .all(|k| of(records, k).last().is_some_and(|c| is_marked(c)))
    })
    .await
}

async fn a_put_an_update_and_a_delete_each_appear_once(w: &World) {
    let started = unix_now();
    let key = Key::new("STREAM#1", "ITEM#1");
    let put = item(json!({
        "pk": "STREAM#1", "sk": "ITEM#1",
        "name": "Ruth", "n": 1, "ratio": 0.5, "optIn": true, "nothing": null,
        "tags": ["choir"], "address": {"city": "Boston"},
    }));
    w.table.put(put.clone(), None).await.unwrap();
    let updated = w
        .table
        .update(
            &key,
            Update::default()
                .set("name", "Naomi")
                .add("n", 1)
                .remove("ratio"),
            None,
        )
        .await
        .unwrap();
    w.table.delete(&key, None).await.unwrap();
    let finished = unix_now();

    let records = at_least(w, 3).await;
    let changes = of(&records, &key);
    assert_eq!(records.len(), changes.len(), "{records:?}");
    assert_eq!(
        changes.iter().copied().map(what).collect::<Vec<_>>(),
        vec![
            (ChangeKind::Insert, None, Some(put.clone())),
            (ChangeKind::Modify, Some(put), Some(updated.clone())),
            (ChangeKind::Remove, Some(updated), None),
        ]
    );
    for change in changes {
        // ApproximateCreationDateTime: seconds, roughly when the write was.
        assert!(
            (started - 5..=finished + 5).contains(&change.at_unix),
            "{} not within {started}..={finished}",
            change.at_unix
        );
    }
}

async fn a_transaction_records_each_item_it_changed_once(w: &World) {
    let (added, changed, removed, checked) = (
        Key::new("STREAM#1", "ADDED"),
        Key::new("STREAM#1", "CHANGED"),
        Key::new("STREAM#2", "REMOVED"),
        Key::new("STREAM#3", "CHECKED"),
    );
    let body = |key: &Key, v: i64| item(json!({"pk": key.pk, "sk": key.sk, "v": v}));
    for key in [&changed, &removed, &checked] {
        w.table.put(body(key, 1), None).await.unwrap();
    }
    w.table
        .transact(vec![
            TxOp::Put {
                item: body(&added, 1),
                cond: Some(Cond::NotExists),
            },
            TxOp::Update {
                key: changed.clone(),
                update: Update::default().add("v", 1),
                cond: Some(Cond::Exists),
            },
            TxOp::Delete {
                key: removed.clone(),
                cond: Some(Cond::eq("v", 1)),
            },
            TxOp::Check {
                key: checked.clone(),
                cond: Cond::Exists,
            },
        ])
        .await
        .unwrap();

    let records = at_least(w, 6).await;
    assert_eq!(records.len(), 6, "{records:?}");
    let whats = |key: &Key| of(&records, key).into_iter().map(what).collect::<Vec<_>>();
    assert_eq!(
        whats(&added),
        [(ChangeKind::Insert, None, Some(body(&added, 1)))]
    );
    assert_eq!(
        whats(&changed),
        [
            (ChangeKind::Insert, None, Some(body(&changed, 1))),
            (
                ChangeKind::Modify,
                Some(body(&changed, 1)),
                Some(body(&changed, 2))
            ),
        ]
    );
    assert_eq!(
        whats(&removed),
        [
            (ChangeKind::Insert, None, Some(body(&removed, 1))),
            (ChangeKind::Remove, Some(body(&removed, 1)), None),
        ]
    );
    // A condition check writes nothing.
    assert_eq!(
        whats(&checked),
        [(ChangeKind::Insert, None, Some(body(&checked, 1)))]
    );
}

async fn one_items_records_come_in_write_order_in_one_shard(w: &World) {
    let key = Key::new("STREAM#1", "COUNTER");
    // Other items' writes in between, on the same and other partitions.
    for n in 1..=10 {
        w.table
            .update(&key, Update::default().add("n", 1), None)
            .await
            .unwrap();
        let other = item(json!({"pk": format!("STREAM#{n}"), "sk": "OTHER", "n": n}));
        w.table.put(other, None).await.unwrap();
    }
    let records = at_least(w, 20).await;
    let counter: Vec<&(String, Change)> = records.iter().filter(|(_, c)| c.key == key).collect();
    assert_eq!(counter.len(), 10, "{records:?}");
    assert!(
        counter.iter().all(|(shard, _)| *shard == counter[0].0),
        "one item's records span shards: {counter:?}"
    );
    let mut before: Option<Item> = None;
    for (n, (_, change)) in (1..).zip(&counter) {
        assert_eq!(change.new.as_ref().unwrap()["n"], n, "{counter:?}");
        assert_eq!(
            change.old, before,
            "record {n} does not follow the one before"
        );
        before = change.new.clone();
    }
}

/// Eight items on one partition (one shard) and two on others.
async fn some_writes(w: &World) -> usize {
    for n in 0..8 {
        let one = item(json!({"pk": "STREAM#1", "sk": format!("ITEM#{n}"), "n": n}));
        w.table.put(one, None).await.unwrap();
    }
    for pk in ["STREAM#2", "STREAM#3"] {
        w.table
            .put(item(json!({"pk": pk, "sk": "ITEM"})), None)
            .await
            .unwrap();
    }
    10
}

async fn reading_after_a_sequence_resumes_right_after_it(w: &World) {
    let n = some_writes(w).await;
    let records = at_least(w, n).await;
    assert_eq!(records.len(), n, "{records:?}");
    let ours = |changes: Vec<Change>| -> Vec<Change> {
        changes
            .into_iter()
            .filter(|c| c.key.pk.starts_with(PREFIX))
            .collect()
    };
    for shard in w.changes.shards().await.unwrap() {
        let whole = ours(read_shard(w, &shard.id, None, 1000).await);
        for (i, change) in whole.iter().enumerate() {
            let rest = read_shard(w, &shard.id, Some(&change.sequence), 1000).await;
            // A short read after it starts at the very next record too.
            let next = w
                .changes
                .read(&shard.id, Some(&change.sequence), 1)
                .await
                .unwrap();
            assert_eq!(next, rest.iter().take(1).cloned().collect::<Vec<_>>());
            assert_eq!(
                ours(rest),
                whole[i + 1..],
                "after {} of {}",
                change.sequence,
                shard.id
            );
        }
    }
}

async fn pages_of_one_read_what_one_big_read_reads(w: &World) {
    let n = some_writes(w).await;
    let big = at_least(w, n).await;
    assert_eq!(big.len(), n, "{big:?}");
    assert_eq!(read_stream(w, 1).await, big);
    assert_eq!(read_stream(w, 3).await, big);
}

async fn a_read_at_the_end_sees_later_writes(w: &World) {
    let key = Key::new("STREAM#1", "LATER");
    w.table
        .update(&key, Update::default().add("n", 1), None)
        .await
        .unwrap();
    let first = at_least(w, 1).await;
    let (shard, change) = first.first().cloned().unwrap();
    // Nothing more yet: an empty read, then the next writes.
    let at_end = w
        .changes
        .read(&shard, Some(&change.sequence), 10)
        .await
        .unwrap();
    assert!(
        at_end.iter().all(|c| !c.key.pk.starts_with(PREFIX)),
        "{at_end:?}"
    );
    for _ in 0..2 {
        w.table
            .update(&key, Update::default().add("n", 1), None)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    let mut later = Vec::new();
    let mut after = change.sequence.clone();
    while later.len() < 2 && Instant::now() < deadline {
        let batch = w.changes.read(&shard, Some(&after), 10).await.unwrap();
        match batch.last() {
            Some(last) => after = last.sequence.clone(),
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
        later.extend(batch.into_iter().filter(|c| c.key == key));
    }
    let counts: Vec<Value> = later
        .iter()
        .map(|c| c.new.as_ref().unwrap()["n"].clone())
        .collect();
    assert_eq!(counts, [json!(2), json!(3)], "{later:?}");
}

async fn a_failed_conditional_write_leaves_no_record(w: &World) {
    let key = Key::new("STREAM#1", "GUARDED");
    let bystander = Key::new("STREAM#2", "BYSTANDER");
    let stored = item(json!({"pk": "STREAM#1", "sk": "GUARDED", "v": 1}));
    w.table.put(stored.clone(), None).await.unwrap();

    let refused = item(json!({"pk": "STREAM#1", "sk": "GUARDED", "v": 2}));
    let failed = w.table.put(refused.clone(), Some(Cond::NotExists)).await;
    assert!(
        matches!(failed, Err(TableError::ConditionFailed)),
        "{failed:?}"
    );
    let failed = w
        .table
        .update(&key, Update::default().set("v", 3), Some(Cond::eq("v", 2)))
        .await;
    assert!(
        matches!(failed, Err(TableError::ConditionFailed)),
        "{failed:?}"
    );
    let failed = w.table.delete(&key, Some(Cond::NotExists)).await;
    assert!(
        matches!(failed, Err(TableError::ConditionFailed)),
        "{failed:?}"
    );
    // A cancelled transaction writes none of its items, not even those
    // whose own conditions held.
    let failed = w
        .table
        .transact(vec![
            TxOp::Put {
                item: item(json!({"pk": "STREAM#2", "sk": "BYSTANDER", "v": 1})),
                cond: None,
            },
            TxOp::Put {
                item: refused,
                cond: Some(Cond::NotExists),
            },
        ])
        .await;
    assert!(
        matches!(failed, Err(TableError::TransactionCancelled { .. })),
        "{failed:?}"
    );

    let marked = mark(w, &key).await;
    let bystander_marked = mark(w, &bystander).await;
    let records = until_marked(w, &[&key, &bystander]).await;
    assert_eq!(
        of(&records, &key).into_iter().map(what).collect::<Vec<_>>(),
        [
            (ChangeKind::Insert, None, Some(stored.clone())),
            (ChangeKind::Modify, Some(stored), Some(marked)),
        ]
    );
    assert_eq!(
        of(&records, &bystander)
            .into_iter()
            .map(what)
            .collect::<Vec<_>>(),
        [(ChangeKind::Insert, None, Some(bystander_marked))]
    );
}

async fn a_write_that_changes_nothing_leaves_no_record(w: &World) {
    let key = Key::new("STREAM#1", "SAME");
    let stored = item(json!({"pk": "STREAM#1", "sk": "SAME", "v": 1}));
    w.table.put(stored.clone(), None).await.unwrap();
    // DynamoDB Streams records no write that leaves the item as it was.
    w.table.put(stored.clone(), None).await.unwrap();
    w.table
        .update(&key, Update::default().set("v", 1), None)
        .await
        .unwrap();
    w.table
        .delete(&Key::new("STREAM#1", "NEVER-WRITTEN"), None)
        .await
        .unwrap();

    let marked = mark(w, &key).await;
    let records = until_marked(w, &[&key]).await;
    assert_eq!(
        records.iter().map(|(_, c)| what(c)).collect::<Vec<_>>(),
        [
            (ChangeKind::Insert, None, Some(stored.clone())),
            (ChangeKind::Modify, Some(stored), Some(marked)),
        ]
    );
}

async fn sequence_numbers_increase_within_a_shard(w: &World) {
    let n = some_writes(w).await;
    let records = at_least(w, n).await;
    assert_eq!(records.len(), n, "{records:?}");
    for shard in w.changes.shards().await.unwrap() {
        let whole = read_shard(w, &shard.id, None, 1000).await;
        for change in &whole {
            assert!(
                !change.sequence.is_empty() && change.sequence.bytes().all(|b| b.is_ascii_digit()),
                "sequence {:?} is not digits",
                change.sequence
            );
        }
        for pair in whole.windows(2) {
            assert_eq!(
                compare_sequences(&pair[0].sequence, &pair[1].sequence),
                Ordering::Less,
                "{} then {} in {}",
                pair[0].sequence,
                pair[1].sequence,
                shard.id
            );
        }
    }
}

async fn shards_list_parents_first_and_refuse_an_unknown_shard(w: &World) {
    some_writes(w).await;
    let shards = w.changes.shards().await.unwrap();
    assert!(!shards.is_empty());
    let ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    for (i, shard) in shards.iter().enumerate() {
        if let Some(parent) = &shard.parent
            && let Some(p) = ids.iter().position(|id| id == parent)
        {
            assert!(p < i, "{} listed before its parent {parent}", shard.id);
        }
    }
    let unknown = "shardId-00000000000000000000-ffffffff";
    let refused = w.changes.read(unknown, None, 10).await;
    assert!(
        matches!(&refused, Err(ChangesError::UnknownShard(s)) if s == unknown),
        "{refused:?}"
    );
}
