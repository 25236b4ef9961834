//! The table port: what DynamoDB does, the embedded store must do too.

use serde_json::{Value, json};
use shared::ports::table::{
    Cond, Cursor, Index, Item, Key, Page, Query, SortCond, TableError, TxOp, Update, WriteOp,
};

use crate::support::{World, conformance};

conformance!(
    put_then_get_round_trips_every_json_type,
    get_of_a_missing_key_is_none,
    get_many_answers_in_order_with_gaps,
    conditional_put_refuses_to_overwrite,
    update_creates_a_missing_item_under_its_key,
    a_guarded_state_transition_happens_once,
    update_removes_an_attribute,
    set_if_absent_keeps_the_first_value,
    conditional_delete_returns_the_old_item,
    transaction_is_all_or_nothing,
    transaction_limits_are_enforced_before_the_backend,
    batch_write_of_any_size_lands_every_item,
    query_pages_by_prefix_with_limit_and_cursor,
    query_reads_sort_key_ranges,
    a_descending_query_pages_newest_first,
    gsi_query_orders_by_index_sort_key,
    expired_items_are_invisible,
    a_forged_cursor_is_refused,
    a_keys_only_query_skips_ahead_without_the_items,
    a_keys_only_querys_cursor_continues_with_whole_items,
);

fn item(value: Value) -> Item {
    value.as_object().cloned().unwrap()
}

async fn put_then_get_round_trips_every_json_type(w: &World) {
    let stored = item(json!({
        "pk": "CHURCH#1", "sk": "MEMBER#1",
        "name": "Ruth", "status": "active", "count": 42, "ratio": 0.5, "negative": -7,
        "optIn": true, "nothing": null,
        "tags": ["choir", "youth"], "address": {"city": "Boston", "zip": "02108"},
    }));
    w.table.put(stored.clone(), None).await.unwrap();
    let got = w
        .table
        .get(&Key::new("CHURCH#1", "MEMBER#1"))
        .await
        .unwrap();
    assert_eq!(got, Some(stored));
}

async fn get_of_a_missing_key_is_none(w: &World) {
    assert_eq!(
        w.table.get(&Key::new("CHURCH#1", "NOPE")).await.unwrap(),
        None
    );
}

async fn conditional_put_refuses_to_overwrite(w: &World) {
    let first = item(json!({"pk": "PHONE#h", "sk": "PHONE#h", "churchId": "A"}));
    w.table
        .put(first.clone(), Some(Cond::NotExists))
        .await
        .unwrap();
    let second = item(json!({"pk": "PHONE#h", "sk": "PHONE#h", "churchId": "B"}));
    let err = w
        .table
        .put(second, Some(Cond::NotExists))
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::ConditionFailed), "{err:?}");
    assert_eq!(
        w.table.get(&Key::new("PHONE#h", "PHONE#h")).await.unwrap(),
        Some(first)
    );
}

/// A recipient's key, created `queued` with 1 attempt by a conditional
/// update: the key and what the update answered.
async fn a_queued_recipient(w: &World) -> (Key, Item) {
    let key = Key::new("MSG#1", "RCPT#1");
    let created = w
        .table
        .update(
            &key,
            Update::default().set("status", "queued").add("attempts", 1),
            Some(Cond::NotExists),
        )
        .await
        .unwrap();
    (key, created)
}

/// The condition of a move out of `queued`.
fn from_queued() -> Option<Cond> {
    Some(Cond::In("status".into(), vec![json!("queued")]))
}

/// An update to `sending` (and 1 more attempt) allowed only from `queued`.
async fn to_sending_from_queued(w: &World, key: &Key) -> Result<Item, TableError> {
    w.table
        .update(
            key,
            Update::default()
                .set("status", "sending")
                .add("attempts", 1),
            from_queued(),
        )
        .await
}

async fn update_creates_a_missing_item_under_its_key(w: &World) {
    let (_, created) = a_queued_recipient(w).await;
    assert_eq!(created["status"], "queued");
    assert_eq!(created["attempts"], 1);
    assert_eq!(created["pk"], "MSG#1");
}

async fn a_guarded_state_transition_happens_once(w: &World) {
    let (key, _) = a_queued_recipient(w).await;
    // queued → sending is allowed; a second consumer trying the same loses.
    let sending = to_sending_from_queued(w, &key).await.unwrap();
    assert_eq!(
        (sending["status"].as_str(), sending["attempts"].as_i64()),
        (Some("sending"), Some(2))
    );
    let err = w
        .table
        .update(
            &key,
            Update::default().set("status", "sending"),
            from_queued(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::ConditionFailed), "{err:?}");
}

async fn update_removes_an_attribute(w: &World) {
    let (key, _) = a_queued_recipient(w).await;
    to_sending_from_queued(w, &key).await.unwrap();
    let done = w
        .table
        .update(
            &key,
            Update::default().set("status", "sent").remove("attempts"),
            Some(Cond::eq("status", "sending")),
        )
        .await
        .unwrap();
    assert_eq!(done.get("attempts"), None);
    assert_eq!(w.table.get(&key).await.unwrap().unwrap()["status"], "sent");
}

async fn set_if_absent_keeps_the_first_value(w: &World) {
    let key = Key::new("CHURCH#1", "STATS#2026-11-25");
    for (at, count) in [("2026-11-25T10:00:00Z", 1), ("2026-11-25T11:00:00Z", 2)] {
        let got = w
            .table
            .update(
                &key,
                Update::default()
                    .set_if_absent("firstAt", at)
                    .add("sent", 1),
                None,
            )
            .await
            .unwrap();
        assert_eq!(got["firstAt"], "2026-11-25T10:00:00Z");
        assert_eq!(got["sent"], count);
    }
}

async fn conditional_delete_returns_the_old_item(w: &World) {
    let stored = item(json!({"pk": "CHURCH#1", "sk": "GROUP#1", "version": 3}));
    w.table.put(stored.clone(), None).await.unwrap();
    let key = Key::new("CHURCH#1", "GROUP#1");
    let err = w
        .table
        .delete(&key, Some(Cond::eq("version", 2)))
        .await
        .unwrap_err();
    assert!(matches!(err, TableError::ConditionFailed), "{err:?}");
    assert_eq!(
        w.table
            .delete(&key, Some(Cond::eq("version", 3)))
            .await
            .unwrap(),
        Some(stored)
    );
    assert_eq!(w.table.get(&key).await.unwrap(), None);
    assert_eq!(w.table.delete(&key, None).await.unwrap(), None);
}

async fn transaction_is_all_or_nothing(w: &World) {
    let counter = Key::new("CHURCH#1", "COUNTERS");
    w.table
        .put(item(json!({"pk": "CHURCH#1", "sk": "MEMBER#taken"})), None)
        .await
        .unwrap();
    let member = |id: &str| TxOp::Put {
        item: item(json!({"pk": "CHURCH#1", "sk": format!("MEMBER#{id}")})),
        cond: Some(Cond::NotExists),
    };
    let bump = || TxOp::Update {
        key: counter.clone(),
        update: Update::default().add("members", 1),
        cond: None,
    };

    let err = w
        .table
        .transact(vec![member("new"), member("taken"), bump()])
        .await
        .unwrap_err();
    match err {
        TableError::TransactionCancelled { failed } => assert_eq!(failed, vec![1]),
        other => panic!("expected a cancelled transaction, got {other:?}"),
    }
    assert_eq!(
        w.table
            .get(&Key::new("CHURCH#1", "MEMBER#new"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(w.table.get(&counter).await.unwrap(), None);

    w.table
        .transact(vec![
            member("new"),
            bump(),
            TxOp::Check {
                key: Key::new("CHURCH#1", "MEMBER#taken"),
                cond: Cond::Exists,
            },
        ])
        .await
        .unwrap();
    assert!(
        w.table
            .get(&Key::new("CHURCH#1", "MEMBER#new"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(w.table.get(&counter).await.unwrap().unwrap()["members"], 1);
}

async fn transaction_limits_are_enforced_before_the_backend(w: &World) {
    let ops: Vec<TxOp> = (0..101)
        .map(|i| TxOp::Put {
            item: item(json!({"pk": "T", "sk": format!("{i:03}")})),
            cond: None,
        })
        .collect();
    assert!(matches!(
        w.table.transact(ops).await,
        Err(TableError::Invalid(_))
    ));
    let twice = vec![
        TxOp::Put {
            item: item(json!({"pk": "T", "sk": "1"})),
            cond: None,
        },
        TxOp::Delete {
            key: Key::new("T", "1"),
            cond: None,
        },
    ];
    assert!(matches!(
        w.table.transact(twice).await,
        Err(TableError::Invalid(_))
    ));
    let huge = item(json!({"pk": "T", "sk": "big", "blob": "x".repeat(401 * 1024)}));
    assert!(matches!(
        w.table.put(huge, None).await,
        Err(TableError::Invalid(_))
    ));
    let page = w.table.query(Query::partition("T")).await.unwrap();
    assert!(
        page.items.is_empty(),
        "nothing of a refused request may land"
    );
}

async fn batch_write_of_any_size_lands_every_item(w: &World) {
    let puts: Vec<WriteOp> = (0..60)
        .map(|i| {
            WriteOp::Put(item(
                json!({"pk": "MSG#big", "sk": format!("RCPT#{i:04}"), "status": "queued"}),
            ))
        })
        .collect();
    w.table.batch_write(puts).await.unwrap();
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = w
            .table
            .query(Query::partition("MSG#big").limit(1000).after(cursor))
            .await
            .unwrap();
        all.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 60);
    let deletes: Vec<WriteOp> = (0..30)
        .map(|i| WriteOp::Delete(Key::new("MSG#big", format!("RCPT#{i:04}"))))
        .collect();
    w.table.batch_write(deletes).await.unwrap();
    let left = w
        .table
        .query(Query::partition("MSG#big").limit(1000))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 30);
    assert_eq!(left.items[0]["sk"], "RCPT#0030");

    let duplicate = vec![
        WriteOp::Put(item(json!({"pk": "D", "sk": "1"}))),
        WriteOp::Put(item(json!({"pk": "D", "sk": "1"}))),
    ];
    assert!(matches!(
        w.table.batch_write(duplicate).await,
        Err(TableError::Invalid(_))
    ));
}

/// Every item of a query, page by page.
async fn drain(w: &World, query: Query) -> (Vec<String>, usize) {
    let mut sks = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = w.table.query(query.clone().after(cursor)).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= query.limit as usize);
        sks.extend(
            page.items
                .iter()
                .map(|i| i["sk"].as_str().unwrap().to_owned()),
        );
        cursor = page.cursor;
        if cursor.is_none() {
            return (sks, pages);
        }
    }
}

async fn query_pages_by_prefix_with_limit_and_cursor(w: &World) {
    for i in 0..7 {
        w.table
            .put(
                item(json!({"pk": "CHURCH#1", "sk": format!("MEMBER#{i:02}")})),
                None,
            )
            .await
            .unwrap();
    }
    w.table
        .put(item(json!({"pk": "CHURCH#1", "sk": "MEMBERSHIP"})), None)
        .await
        .unwrap();
    w.table
        .put(item(json!({"pk": "CHURCH#1", "sk": "BRANCH#01"})), None)
        .await
        .unwrap();
    w.table
        .put(item(json!({"pk": "CHURCH#2", "sk": "MEMBER#99"})), None)
        .await
        .unwrap();

    let query = Query::partition("CHURCH#1")
        .sort(SortCond::BeginsWith("MEMBER#".into()))
        .limit(3);
    let (sks, pages) = drain(w, query).await;
    let expected: Vec<String> = (0..7).map(|i| format!("MEMBER#{i:02}")).collect();
    assert_eq!(sks, expected);
    assert!(pages >= 3);
}

/// Four days' items under CHURCH#1, 2026-11-01 to 2026-11-04.
async fn four_days(w: &World) {
    for day in ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"] {
        w.table
            .put(
                item(json!({"pk": "CHURCH#1", "sk": format!("DAY#{day}")})),
                None,
            )
            .await
            .unwrap();
    }
}

async fn query_reads_sort_key_ranges(w: &World) {
    four_days(w).await;
    let between = Query::partition("CHURCH#1")
        .sort(SortCond::Between(
            "DAY#2026-11-02".into(),
            "DAY#2026-11-03".into(),
        ))
        .limit(10);
    assert_eq!(
        drain(w, between).await.0,
        ["DAY#2026-11-02", "DAY#2026-11-03"]
    );
    let before = Query::partition("CHURCH#1")
        .sort(SortCond::Lt("DAY#2026-11-02".into()))
        .limit(10);
    assert_eq!(drain(w, before).await.0, ["DAY#2026-11-01"]);
}

async fn a_descending_query_pages_newest_first(w: &World) {
    four_days(w).await;
    let newest_first = Query::partition("CHURCH#1")
        .sort(SortCond::Ge("DAY#2026-11-02".into()))
        .limit(2)
        .descending();
    assert_eq!(
        drain(w, newest_first).await.0,
        ["DAY#2026-11-04", "DAY#2026-11-03", "DAY#2026-11-02"]
    );
}

async fn gsi_query_orders_by_index_sort_key(w: &World) {
    // Members of a church, indexed by lower-cased name for prefix search.
    for (id, name) in [
        ("1", "ruth"),
        ("2", "boaz"),
        ("3", "rachel"),
        ("4", "naomi"),
        ("5", "rebekah"),
    ] {
        w.table
            .put(item(json!({"pk": format!("MEMBER#{id}"), "sk": "PROFILE", "gsi1pk": "CHURCH#1#NAMES", "gsi1sk": name})), None)
            .await
            .unwrap();
    }
    w.table
        .put(
            item(json!({"pk": "MEMBER#6", "sk": "PROFILE", "name": "not indexed"})),
            None,
        )
        .await
        .unwrap();
    let r_names = Query::partition("CHURCH#1#NAMES")
        .index(Index::Gsi1)
        .sort(SortCond::BeginsWith("r".into()))
        .limit(2);
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = w.table.query(r_names.clone().after(cursor)).await.unwrap();
        names.extend(
            page.items
                .iter()
                .map(|i| i["gsi1sk"].as_str().unwrap().to_owned()),
        );
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(names, ["rachel", "rebekah", "ruth"]);
    let none = w
        .table
        .query(Query::partition("CHURCH#1#NAMES").index(Index::Gsi2))
        .await
        .unwrap();
    assert!(none.items.is_empty());
}

async fn expired_items_are_invisible(w: &World) {
    let past = chrono::Utc::now().timestamp() - 10;
    let future = chrono::Utc::now().timestamp() + 3600;
    w.table
        .put(item(json!({"pk": "IDEMP", "sk": "old", "ttl": past})), None)
        .await
        .unwrap();
    w.table
        .put(
            item(json!({"pk": "IDEMP", "sk": "new", "ttl": future})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(w.table.get(&Key::new("IDEMP", "old")).await.unwrap(), None);
    assert!(
        w.table
            .get(&Key::new("IDEMP", "new"))
            .await
            .unwrap()
            .is_some()
    );
    let page = w.table.query(Query::partition("IDEMP")).await.unwrap();
    assert_eq!(page.items.len(), 1);
    // As in DynamoDB, an expired item exists until swept: claiming its key
    // again must allow for expiry explicitly.
    let claim = || item(json!({"pk": "IDEMP", "sk": "old", "ttl": future}));
    let naive = w.table.put(claim(), Some(Cond::NotExists)).await;
    assert!(
        matches!(naive, Err(TableError::ConditionFailed)),
        "{naive:?}"
    );
    let expiry_aware = Cond::Or(vec![
        Cond::NotExists,
        Cond::Lt("ttl".into(), json!(chrono::Utc::now().timestamp())),
    ]);
    w.table.put(claim(), Some(expiry_aware)).await.unwrap();
    assert!(
        w.table
            .get(&Key::new("IDEMP", "old"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_forged_cursor_is_refused(w: &World) {
    w.table
        .put(item(json!({"pk": "P", "sk": "1"})), None)
        .await
        .unwrap();
    for forged in ["not base64!", "bm90IGpzb24", "e30"] {
        let result = w
            .table
            .query(Query::partition("P").after(Some(Cursor(forged.into()))))
            .await;
        assert!(
            matches!(result, Err(TableError::BadCursor)),
            "{forged}: {result:?}"
        );
    }
}

async fn get_many_answers_in_order_with_gaps(w: &World) {
    let keys: Vec<Key> = (0..150)
        .map(|i| Key::new("CHURCH#1", format!("MEMBER#{i:03}")))
        .collect();
    let puts = keys
        .iter()
        .step_by(2)
        .map(|k| WriteOp::Put(item(json!({"pk": k.pk, "sk": k.sk, "n": k.sk}))))
        .collect();
    w.table.batch_write(puts).await.unwrap();
    let mut asked = keys.clone();
    asked.push(keys[0].clone());
    let got = w.table.get_many(&asked).await.unwrap();
    assert_eq!(got.len(), 151);
    for (i, found) in got.iter().take(150).enumerate() {
        assert_eq!(found.is_some(), i % 2 == 0, "{i}");
        if let Some(found) = found {
            assert_eq!(found["sk"], keys[i].sk.as_str());
        }
    }
    assert_eq!(got[150], got[0], "a repeated key answers twice");
    assert!(w.table.get_many(&[]).await.unwrap().is_empty());
}

/// Thirty members indexed by name, each with a sealed phone; the name
/// query and its first 20 read keys only.
async fn twenty_of_thirty_names_keys_only(w: &World) -> (Query, Page) {
    for i in 0..30 {
        let item = item(
            json!({"pk": format!("MEMBER#{i:02}"), "sk": "PROFILE", "gsi1pk": "NAMES", "gsi1sk": format!("name{i:02}"), "phoneSealed": "secret"}),
        );
        w.table.put(item, None).await.unwrap();
    }
    let query = Query::partition("NAMES").index(Index::Gsi1);
    let skipped = w
        .table
        .query(query.clone().keys_only().limit(20))
        .await
        .unwrap();
    (query, skipped)
}

async fn a_keys_only_query_skips_ahead_without_the_items(w: &World) {
    let (_, skipped) = twenty_of_thirty_names_keys_only(w).await;
    assert_eq!(skipped.items.len(), 20);
    assert!(
        skipped.items.iter().all(|i| i.get("phoneSealed").is_none()),
        "keys only"
    );
    assert_eq!(skipped.items[19]["gsi1sk"], "name19");
}

async fn a_keys_only_querys_cursor_continues_with_whole_items(w: &World) {
    let (query, skipped) = twenty_of_thirty_names_keys_only(w).await;
    let rest = w
        .table
        .query(query.limit(100).after(skipped.cursor))
        .await
        .unwrap();
    let names: Vec<&str> = rest
        .items
        .iter()
        .map(|i| i["gsi1sk"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"name20"));
    assert_eq!(names.len(), 10);
    assert_eq!(
        rest.items[0]["phoneSealed"], "secret",
        "whole items after the skip"
    );
}
