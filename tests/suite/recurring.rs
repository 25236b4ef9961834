//! Recurring messages and scheduled sends: the routes as the frontend reads
//! them, bad input named by field, and the cron job — run here with its
//! clock set (`Cron { now }`) — judged by the Telnyx simulator's ledger.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration as Span, Timelike, Utc, Weekday};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::ports::table::{
    Cond, Item, Key, Page, Query, Table, TableError, TxOp, Update, WriteOp,
};
use shared::scheduling::cron::{Cron, RunReport};

use crate::support::{Admin, Stack, expect_status as body};

fn at(text: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn cron_with(s: &Stack, table: &dyn Table, now: DateTime<Utc>) -> RunReport {
    Cron {
        table,
        fanout: s.stack.app.fanout_queue.as_ref(),
        blobs: s.stack.app.blobs.as_ref(),
        now,
    }
    .run()
    .await
    .unwrap()
}

async fn cron(s: &Stack, now: DateTime<Utc>) -> RunReport {
    cron_with(s, s.stack.app.table.as_ref(), now).await
}

fn sunday_reminder() -> Value {
    json!({"name": "Sunday reminder", "content": "Service at 10am, see you there!", "targetType": "all", "frequency": "weekly", "dayOfWeek": 0, "timeOfDay": "09:00"})
}

async fn create(s: &Stack, admin: &Admin, recurring: Value) -> Value {
    body(
        s.call(admin, "POST", "/api/recurring", Some(recurring))
            .await,
        StatusCode::CREATED,
    )
    .await
}

async fn list(s: &Stack, admin: &Admin) -> Vec<Value> {
    let listed = body(
        s.call(admin, "GET", "/api/recurring", None).await,
        StatusCode::OK,
    )
    .await;
    listed.as_array().unwrap().clone()
}

/// Quiet hours off, so the sends of these tests go whatever the real time
/// of day is where the suite runs.
async fn quiet_hours_off(s: &Stack, admin: &Admin) {
    let off = json!({"quietHours": null});
    let changed = s.call(admin, "PUT", "/api/admin/profile", Some(off)).await;
    let profile = body(changed, StatusCode::OK).await;
    assert_eq!(profile["data"]["quietHours"], Value::Null);
}

/// How many texts with `text` the carrier took.
fn carried(s: &Stack, text: &str) -> usize {
    let ledger = s.stack.simulator.as_ref().unwrap().ledger();
    ledger
        .iter()
        .filter(|e| e.text.as_deref() == Some(text))
        .count()
}

/// Waits until the carrier took `n` texts with `text`, then a moment more
/// (a duplicate would come within it); the count then.
async fn carried_once_settled(s: &Stack, text: &str, n: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while carried(s, text) < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    carried(s, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_routes_answer_as_the_frontend_reads_them() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = Utc::now();
    let created = create(&s, &admin, sunday_reminder()).await;
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    for field in [
        "id",
        "churchId",
        "name",
        "content",
        "targetType",
        "targetIds",
        "frequency",
        "dayOfWeek",
        "timeOfDay",
        "nextSendAt",
        "isActive",
        "createdAt",
        "updatedAt",
    ] {
        assert!(keys.contains(&field), "{field} in {keys:?}");
    }
    assert_eq!(created["churchId"], admin.church_id.as_str());
    assert_eq!(
        created["targetIds"], "[]",
        "a JSON string, as the frontend expects"
    );
    assert_eq!(created["frequency"], "weekly");
    assert_eq!(created["dayOfWeek"], 0);
    assert_eq!(created["timeOfDay"], "09:00");
    assert_eq!(created["isActive"], true);
    // The next Sunday 09:00 in the church's zone (New York, by default).
    let next = at(&created["nextSendAt"]).with_timezone(&chrono_tz::America::New_York);
    assert_eq!(
        (next.weekday(), next.hour(), next.minute()),
        (Weekday::Sun, 9, 0)
    );
    assert!(next > before && next <= before + Span::days(7), "{next}");

    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(list(&s, &admin).await, vec![created.clone()]);

    // An edit as the frontend sends it: every field of the form.
    let edit = json!({"name": "Daily verse", "content": "Verse of the day: Psalm 23", "targetType": "all", "frequency": "daily", "timeOfDay": "10:30"});
    let edited = body(
        s.call(&admin, "PUT", &format!("/api/recurring/{id}"), Some(edit))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(edited["frequency"], "daily");
    assert_eq!(edited["dayOfWeek"], Value::Null);
    let next = at(&edited["nextSendAt"]).with_timezone(&chrono_tz::America::New_York);
    assert_eq!((next.hour(), next.minute()), (10, 30));
    assert!(next.with_timezone(&Utc) <= Utc::now() + Span::days(1));

    let off = body(
        s.call(
            &admin,
            "PUT",
            &format!("/api/recurring/{id}/toggle"),
            Some(json!({"isActive": false})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(off["isActive"], false);
    assert_eq!(off["name"], "Daily verse");
    assert_eq!(list(&s, &admin).await[0]["isActive"], false);

    // Another church finds none of it.
    let other = s.register("elder@hope.example").await;
    assert!(list(&s, &other).await.is_empty());
    for (method, path) in [
        ("PUT", format!("/api/recurring/{id}")),
        ("PUT", format!("/api/recurring/{id}/toggle")),
        ("DELETE", format!("/api/recurring/{id}")),
    ] {
        let answer = s
            .call(
                &other,
                method,
                &path,
                Some(json!({"isActive": true, "name": "x"})),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }

    let deleted = body(
        s.call(&admin, "DELETE", &format!("/api/recurring/{id}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(deleted, json!({"success": true}));
    assert!(list(&s, &admin).await.is_empty());
    let again = s
        .call(&admin, "DELETE", &format!("/api/recurring/{id}"), None)
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_recurring_input_is_named_by_field_and_writes_nothing() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let with = |field: &str, value: Value| {
        let mut r = sunday_reminder();
        r[field] = value;
        r
    };
    let without = |field: &str| {
        let mut r = sunday_reminder();
        r.as_object_mut().unwrap().remove(field);
        r
    };
    let cases = [
        (
            with("timeOfDay", json!("25:00")),
            StatusCode::BAD_REQUEST,
            "timeOfDay",
        ),
        (
            with("timeOfDay", json!("9am")),
            StatusCode::BAD_REQUEST,
            "timeOfDay",
        ),
        (
            with("dayOfWeek", json!(9)),
            StatusCode::BAD_REQUEST,
            "dayOfWeek",
        ),
        (
            with("dayOfWeek", json!("Sunday")),
            StatusCode::BAD_REQUEST,
            "dayOfWeek",
        ),
        (without("dayOfWeek"), StatusCode::BAD_REQUEST, "dayOfWeek"),
        (
            with("frequency", json!("hourly")),
            StatusCode::BAD_REQUEST,
            "frequency",
        ),
        (
            with("content", json!("")),
            StatusCode::BAD_REQUEST,
            "content",
        ),
        (without("name"), StatusCode::BAD_REQUEST, "name"),
        (
            with("targetType", json!("individual")),
            StatusCode::BAD_REQUEST,
            "targetType",
        ),
        (
            with("targetType", json!("branches")),
            StatusCode::BAD_REQUEST,
            "targetIds",
        ),
        (
            {
                let mut r = with("targetType", json!("groups"));
                r["targetIds"] = json!(["01J9ZQ3K4X5Y6Z7A8B9C0D1E2G"]);
                r
            },
            StatusCode::BAD_REQUEST,
            "targetIds",
        ),
        (
            {
                let mut r = with("frequency", json!("monthly"));
                r["dayOfMonth"] = json!(32);
                r
            },
            StatusCode::BAD_REQUEST,
            "dayOfMonth",
        ),
        // Inside the default quiet hours (21:00–08:00).
        (
            with("timeOfDay", json!("22:00")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "timeOfDay",
        ),
    ];
    for (request, status, field) in cases {
        let answer = s
            .call(&admin, "POST", "/api/recurring", Some(request.clone()))
            .await;
        let refusal = body(answer, status).await;
        assert_eq!(refusal["success"], false, "{request}");
        assert_eq!(
            refusal["details"][0]["field"], field,
            "{request}: {refusal}"
        );
    }
    assert!(list(&s, &admin).await.is_empty(), "nothing written");

    // A bad edit leaves the stored one as it was.
    let created = create(&s, &admin, sunday_reminder()).await;
    let id = created["id"].as_str().unwrap();
    let bad = json!({"timeOfDay": "25:00"});
    let refused = s
        .call(&admin, "PUT", &format!("/api/recurring/{id}"), Some(bad))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let toggle = s
        .call(
            &admin,
            "PUT",
            &format!("/api/recurring/{id}/toggle"),
            Some(json!({"isActive": "maybe"})),
        )
        .await;
    assert_eq!(
        body(toggle, StatusCode::BAD_REQUEST).await["details"][0]["field"],
        "isActive"
    );
    assert_eq!(list(&s, &admin).await, vec![created]);
    s.stop().await;
}

/// A church of three members sending from a number, quiet hours off, and a
/// daily recurring message of `text` at 12:00; its first occurrence.
async fn a_daily_message(
    s: &Stack,
    email: &str,
    number: &str,
    text: &str,
) -> (Admin, String, DateTime<Utc>) {
    let (admin, _) = s.church_with_members(email, number, 50, 3).await;
    quiet_hours_off(s, &admin).await;
    let daily = json!({"name": "Daily", "content": text, "targetType": "all", "frequency": "daily", "timeOfDay": "12:00"});
    let created = create(s, &admin, daily).await;
    (
        admin,
        created["id"].as_str().unwrap().to_owned(),
        at(&created["nextSendAt"]),
    )
}

async fn recurring_of(s: &Stack, admin: &Admin, id: &str) -> Value {
    list(s, admin)
        .await
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_send_each_occurrence_once_and_move_it_on() {
    let s = Stack::start().await;
    let text = "Daily verse: Psalm 23";
    let (admin, id, due) = a_daily_message(&s, "pastor@grace.example", "+12025550100", text).await;
    assert_eq!(
        cron(&s, due - Span::seconds(1)).await.sent,
        0,
        "not before its time"
    );
    let (one, two) = tokio::join!(cron(&s, due), cron(&s, due));
    assert_eq!(one.found + two.found, 2, "both runs found it");
    assert_eq!(
        carried_once_settled(&s, text, 3).await,
        3,
        "each member once"
    );
    let after = recurring_of(&s, &admin, &id).await;
    assert_eq!(at(&after["lastSentAt"]), due);
    assert_eq!(at(&after["nextSendAt"]), due + Span::days(1));
    assert!(after["lastMessageId"].is_string());
    // A run repeated at the same time finds nothing due any more.
    assert_eq!(cron(&s, due).await, RunReport::default());
    assert_eq!(carried(&s, text), 3);
    s.stop().await;
}

/// A table on which recording a recurring message's occurrence fails: a
/// cron run that dies after its sends, before it moves them on.
struct DiesBeforeMovingOn {
    inner: Arc<dyn Table>,
}

#[async_trait]
impl Table for DiesBeforeMovingOn {
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
        if key.sk.starts_with(shared::keys::RECURRING_PREFIX) {
            return Err(TableError::backend(
                "record the occurrence",
                "the run was killed",
            ));
        }
        self.inner.update(key, update, cond).await
    }
    async fn delete(&self, key: &Key, cond: Option<Cond>) -> Result<Option<Item>, TableError> {
        self.inner.delete(key, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
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
async fn a_run_retried_after_dying_mid_batch_sends_nothing_twice() {
    let s = Stack::start().await;
    let texts = ["Morning prayer 1", "Morning prayer 2", "Morning prayer 3"];
    let (admin, first, due) =
        a_daily_message(&s, "pastor@grace.example", "+12025550100", texts[0]).await;
    let mut ids = vec![first];
    for text in &texts[1..] {
        let daily = json!({"name": "Daily", "content": text, "targetType": "all", "frequency": "daily", "timeOfDay": "12:00"});
        ids.push(
            create(&s, &admin, daily).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let dying = DiesBeforeMovingOn {
        inner: Arc::clone(&s.stack.app.table),
    };
    let died = cron_with(&s, &dying, due).await;
    assert_eq!((died.found, died.failed, died.sent), (3, 3, 0), "{died:?}");
    for id in &ids {
        assert_eq!(
            at(&recurring_of(&s, &admin, id).await["nextSendAt"]),
            due,
            "still due"
        );
    }
    // The next run (a retry) finds them due again and moves them on.
    let retried = cron(&s, due + Span::minutes(1)).await;
    assert_eq!((retried.found, retried.sent, retried.failed), (3, 3, 0));
    for text in texts {
        assert_eq!(
            carried_once_settled(&s, text, 3).await,
            3,
            "{text}: each member once"
        );
    }
    let history = body(
        s.call(&admin, "GET", "/api/messages/history", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        history["pagination"]["total"], 3,
        "one message per occurrence: {history}"
    );
    for id in &ids {
        let r = recurring_of(&s, &admin, id).await;
        assert_eq!(at(&r["nextSendAt"]), due + Span::days(1));
        assert_eq!(at(&r["lastSentAt"]), due);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_late_still_sends_two_days_late_is_recorded_missed() {
    let s = Stack::start().await;
    let text = "Noon prayer";
    let (admin, id, due) = a_daily_message(&s, "pastor@grace.example", "+12025550100", text).await;
    // Down ten minutes: within the lateness allowed, sent.
    let late = cron(&s, due + Span::minutes(10)).await;
    assert_eq!((late.sent, late.missed), (1, 0));
    assert_eq!(carried_once_settled(&s, text, 3).await, 3);
    let r = recurring_of(&s, &admin, &id).await;
    assert_eq!(at(&r["lastSentAt"]), due);
    let next = at(&r["nextSendAt"]);
    assert_eq!(next, due + Span::days(1));
    // Down two days: both occurrences are past the lateness, never sent.
    let back = next + Span::days(2) - Span::hours(1);
    let outage = cron(&s, back).await;
    assert_eq!((outage.sent, outage.missed), (0, 1), "{outage:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(carried(&s, text), 3, "no burst of stale texts");
    let r = recurring_of(&s, &admin, &id).await;
    assert_eq!(r["missedCount"], 2);
    assert_eq!(at(&r["lastMissedAt"]), next + Span::days(1));
    assert_eq!(
        at(&r["nextSendAt"]),
        next + Span::days(2),
        "the next one still comes"
    );
    assert_eq!(at(&r["lastSentAt"]), due);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_the_send_refuses_is_recorded_and_moved_on() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let created = create(&s, &admin, sunday_reminder()).await;
    let due = at(&created["nextSendAt"]);
    let run = cron(&s, due).await;
    assert_eq!((run.refused, run.sent), (1, 0));
    let r = list(&s, &admin).await.remove(0);
    assert_eq!(r["lastError"], "no_sending_number");
    assert_eq!(at(&r["nextSendAt"]), due + Span::days(7));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_zone_change_moves_every_next_send() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let created = create(&s, &admin, sunday_reminder()).await;
    let id = created["id"].as_str().unwrap();
    let zone = json!({"timezone": "Australia/Sydney"});
    body(
        s.call(&admin, "PUT", "/api/admin/profile", Some(zone))
            .await,
        StatusCode::OK,
    )
    .await;
    let moved = recurring_of(&s, &admin, id).await;
    assert_eq!(moved["timezone"], "Australia/Sydney");
    let next = at(&moved["nextSendAt"]).with_timezone(&chrono_tz::Australia::Sydney);
    assert_eq!(
        (next.weekday(), next.hour(), next.minute()),
        (Weekday::Sun, 9, 0)
    );
    assert_ne!(moved["nextSendAt"], created["nextSendAt"]);
    s.stop().await;
}

async fn schedule(s: &Stack, admin: &Admin, text: &str, when: &str) -> reqwest::Response {
    let send = json!({"content": text, "targetType": "all", "scheduledAt": when});
    s.call(admin, "POST", "/api/messages/send", Some(send))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_send_waits_for_its_time_then_goes_once() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 3)
        .await;
    quiet_hours_off(&s, &admin).await;
    let text = "Christmas Eve service at 7pm";
    let when = (Utc::now() + Span::minutes(5))
        .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap());
    let accepted = body(
        schedule(&s, &admin, text, &when.to_rfc3339()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(accepted["data"]["state"], "scheduled");
    let id = accepted["data"]["id"].as_str().unwrap().to_owned();
    let due = at(&accepted["data"]["scheduledAt"]);
    assert_eq!(due.timestamp(), when.timestamp());
    let view = body(
        s.call(&admin, "GET", &format!("/api/messages/{id}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["data"]["state"], "scheduled");
    assert_eq!(cron(&s, due - Span::seconds(30)).await.fired, 0);
    let (one, two) = tokio::join!(cron(&s, due), cron(&s, due));
    assert!(one.fired + two.fired >= 1, "{one:?} {two:?}");
    assert_eq!(
        carried_once_settled(&s, text, 3).await,
        3,
        "each member once"
    );
    let done = s.until_complete(&admin, &id, Duration::from_secs(20)).await;
    assert_eq!(done["totalRecipients"], 3);
    assert_eq!(
        cron(&s, due + Span::minutes(1)).await.found,
        0,
        "out of the due index"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_send_found_too_late_is_recorded_missed_and_refunded() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 3)
        .await;
    quiet_hours_off(&s, &admin).await;
    let text = "Advent evening";
    let when = Utc::now() + Span::minutes(2);
    let accepted = body(
        schedule(&s, &admin, text, &when.to_rfc3339()).await,
        StatusCode::CREATED,
    )
    .await;
    let id = accepted["data"]["id"].as_str().unwrap().to_owned();
    let plan = body(
        s.call(&admin, "GET", "/api/billing/plan", None).await,
        StatusCode::OK,
    )
    .await;
    // Reserved in the month it goes out: this one, unless run a minute
    // before a month ends.
    let this_month = when.format("%Y-%m").to_string() == Utc::now().format("%Y-%m").to_string();
    let reserved = if this_month { 3 } else { 0 };
    assert_eq!(
        plan["data"]["usage"]["messagesThisMonth"], reserved,
        "reserved when scheduled"
    );
    let run = cron(&s, at(&accepted["data"]["scheduledAt"]) + Span::hours(3)).await;
    assert_eq!(run.missed, 1);
    let view = body(
        s.call(&admin, "GET", &format!("/api/messages/{id}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["data"]["state"], "missed");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(carried(&s, text), 0);
    let plan = body(
        s.call(&admin, "GET", "/api/billing/plan", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(plan["data"]["usage"]["messagesThisMonth"], 0, "given back");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scheduled_times_are_named_and_store_nothing() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 1)
        .await;
    let now = Utc::now();
    let ny = chrono_tz::America::New_York;
    // 23:00 in New York on a day a week ahead: inside the default quiet hours.
    let late_night = (now + Span::days(7))
        .with_timezone(&ny)
        .date_naive()
        .and_hms_opt(23, 0, 0)
        .unwrap();
    let late_night = late_night.and_local_timezone(ny).earliest().unwrap();
    let cases = [
        ("tomorrow".to_owned(), StatusCode::BAD_REQUEST),
        ("2026-12-24T19:00:00".to_owned(), StatusCode::BAD_REQUEST),
        (
            (now + Span::seconds(30)).to_rfc3339(),
            StatusCode::BAD_REQUEST,
        ),
        (
            (now + Span::days(400)).to_rfc3339(),
            StatusCode::BAD_REQUEST,
        ),
        (late_night.to_rfc3339(), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (when, status) in cases {
        let refusal = body(schedule(&s, &admin, "Hello", &when).await, status).await;
        assert_eq!(
            refusal["details"][0]["field"], "scheduledAt",
            "{when}: {refusal}"
        );
    }
    let history = body(
        s.call(&admin, "GET", "/api/messages/history", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        history["pagination"]["total"], 0,
        "nothing stored: {history}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_send_cancelled_before_its_time_never_goes() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+12025550100", 50, 3)
        .await;
    quiet_hours_off(&s, &admin).await;
    let text = "Carols on the green";
    let when = Utc::now() + Span::minutes(10);
    let accepted = body(
        schedule(&s, &admin, text, &when.to_rfc3339()).await,
        StatusCode::CREATED,
    )
    .await;
    let id = accepted["data"]["id"].as_str().unwrap().to_owned();
    let cancelled = body(
        s.call(&admin, "POST", &format!("/api/messages/{id}/cancel"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["data"]["state"], "cancelled");
    let plan = body(
        s.call(&admin, "GET", "/api/billing/plan", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(plan["data"]["usage"]["messagesThisMonth"], 0, "given back");
    let run = cron(&s, at(&accepted["data"]["scheduledAt"])).await;
    assert_eq!((run.found, run.fired), (0, 0), "out of the due index");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(carried(&s, text), 0);
    let again = s
        .call(&admin, "POST", &format!("/api/messages/{id}/cancel"), None)
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    s.stop().await;
}
