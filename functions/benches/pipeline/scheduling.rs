//! The cron's rows: one run over 100,000 stored recurring messages with
//! 1,000 due (items read per due occurrence, time to enqueue them all); a
//! run with nothing due (table requests); the Sunday-morning rush — 2,000
//! churches × 50 members all due at 09:00 — end to end through the
//! pipeline to the simulator.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use shared::adapters::metered::Meter;
use shared::directory::admins::NewAdmin;
use shared::directory::churches::{Registration, register};
use shared::directory::members::Ctx;
use shared::domain::{ChurchId, MessageText, PhoneNumber, RecurringId};
use shared::ports::table::{
    Cond, Index, Item, Key, Page, Query, Table, TableError, TxOp, Update, WriteOp,
};
use shared::scheduling::cron::Cron;
use shared::scheduling::recurrence::TimeOfDay;
use shared::scheduling::recurring::{self, RecurringFields, RecurringMessage, Target};

use super::{AREAS, Bench, Row, percentile, row, scale};

/// Items read by the cron's finding (the due index and the items it names)
/// apart from the sends' own reads.
#[derive(Default)]
struct Reads {
    finding: AtomicU64,
    sending: AtomicU64,
}

/// The table, counting the items each read returned, by who asked.
struct CountingReads {
    inner: Arc<dyn Table>,
    reads: Arc<Reads>,
}

impl CountingReads {
    fn count(&self, finding: bool, n: usize) {
        let counter = if finding {
            &self.reads.finding
        } else {
            &self.reads.sending
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

fn found(items: &[Option<Item>]) -> usize {
    items.iter().filter(|i| i.is_some()).count()
}

#[async_trait]
impl Table for CountingReads {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let item = self.inner.get(key).await?;
        self.count(false, usize::from(item.is_some()));
        Ok(item)
    }
    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, TableError> {
        let items = self.inner.get_many(keys).await?;
        let finding = keys
            .iter()
            .all(|k| k.sk.starts_with(shared::keys::RECURRING_PREFIX));
        self.count(finding && !keys.is_empty(), found(&items));
        Ok(items)
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
        self.inner.transact(ops).await
    }
    async fn batch_write(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        self.inner.batch_write(ops).await
    }
    async fn query(&self, query: Query) -> Result<Page, TableError> {
        let finding = query.index == Index::Gsi1 && query.partition.starts_with("DUE#");
        let page = self.inner.query(query).await?;
        self.count(finding, page.items.len());
        Ok(page)
    }
}

/// A church registered straight through the use case (no password hashing,
/// which is not what is measured), on the pro plan, sending from `number`
/// at `mps`, quiet hours off, with `members` members.
async fn church(bench: &Bench, n: usize, number: &str, mps: u32, members: usize) -> ChurchId {
    let app = &bench.stack.app;
    let registration = Registration {
        church_name: format!("Church {n}"),
        admin: NewAdmin {
            email: format!("pastor{n}@bench.example"),
            password_hash: "not-a-hash".into(),
            first_name: "B".into(),
            last_name: "N".into(),
        },
    };
    let (view, _) = register(app.table.as_ref(), registration, Utc::now())
        .await
        .unwrap();
    let ctx = Ctx {
        church: view.id,
        table: app.table.as_ref(),
        vault: app.vault().unwrap(),
        now: Utc::now(),
    };
    let number = PhoneNumber::parse(number).unwrap();
    if let Some(simulator) = &bench.stack.simulator {
        simulator
            .handle()
            .assign_number(number.as_e164(), &view.id.to_string());
    }
    shared::directory::profile::link_number(&ctx, app.carrier().unwrap(), &number)
        .await
        .unwrap();
    let settings = Update::default()
        .set("plan", "pro")
        .set("sendingMps", mps)
        .set("quietHours", "off");
    app.table
        .update(&shared::keys::church_profile(view.id), settings, None)
        .await
        .unwrap();
    if members > 0 {
        let mut csv = String::from("firstName,lastName,phone\n");
        for i in 0..members {
            csv.push_str(&format!("M{i},T,(303) 555-{:04}\n", 1_000 + i));
        }
        let imported = shared::directory::import::import(&ctx, csv.as_bytes())
            .await
            .unwrap()
            .imported;
        assert_eq!(imported, members);
    }
    view.id
}

fn number(n: usize) -> String {
    format!("+1{}555{:04}", AREAS[n / 500], 1_000 + n % 500)
}

/// A stored recurring message of `church`, next due at `next`.
fn stored(church: ChurchId, next: DateTime<Utc>) -> Item {
    let stamp = Utc::now().to_rfc3339();
    let r = RecurringMessage {
        id: RecurringId::generate(),
        church_id: church,
        name: "Reminder".into(),
        content: "See you Sunday".into(),
        target: Target {
            target_type: "all".into(),
            target_ids: Vec::new(),
        },
        frequency: "daily".into(),
        day_of_week: None,
        day_of_month: None,
        time_of_day: next.format("%H:%M").to_string(),
        timezone: "UTC".into(),
        next_send_at: Some(next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        is_active: true,
        created_at: stamp.clone(),
        updated_at: stamp,
        last_sent_at: None,
        last_message_id: None,
        last_error: None,
        missed_count: 0,
        last_missed_at: None,
    };
    shared::store::to_item(&r).unwrap()
}

pub async fn cron_at_scale(rows: &mut Vec<Row>) {
    let meter = Arc::new(Meter::default());
    // No consumers: the run's work ends at the fan-out queue.
    let bench = Bench::start(&[], false, Some(Arc::clone(&meter)), None).await;
    let churches = scale(1_000);
    let per_church = recurring::MAX_PER_CHURCH;
    let due = Utc.with_ymd_and_hms(2026, 12, 6, 14, 0, 0).unwrap();
    let mut items = Vec::new();
    for n in 0..churches {
        let id = church(&bench, n, &number(n), 10, 0).await;
        items.push(stored(id, due));
        // The rest fall due later, through the next four days.
        for k in 1..per_church {
            items.push(stored(id, due + chrono::Duration::minutes(k as i64 * 59)));
        }
    }
    let stored_count = items.len();
    for chunk in items.chunks(500) {
        let ops = chunk.iter().cloned().map(WriteOp::Put).collect();
        bench.stack.app.table.batch_write(ops).await.unwrap();
    }
    let app = &bench.stack.app;
    let reads = Arc::new(Reads::default());
    let table = CountingReads {
        inner: Arc::clone(&app.table),
        reads: Arc::clone(&reads),
    };
    let cron = |now| Cron {
        table: &table,
        fanout: app.fanout_queue.as_ref(),
        blobs: app.blobs.as_ref(),
        now,
    };

    let before = meter.read();
    let idle = cron(due - chrono::Duration::minutes(1))
        .run()
        .await
        .unwrap();
    let idle_used = meter.read().since(&before);
    assert_eq!(idle.found, 0);
    row(
        rows,
        format!("cron run with nothing due ({stored_count} stored)"),
        format!("{} table requests", idle_used.table_requests),
        "≤ 5 table requests",
    );

    let before = meter.read();
    reads.finding.store(0, Ordering::Relaxed);
    reads.sending.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let run = cron(due).run().await.unwrap();
    let elapsed = started.elapsed();
    let used = meter.read().since(&before);
    assert_eq!(run.sent, churches, "{run:?}");
    let finding = reads.finding.load(Ordering::Relaxed) as f64 / churches as f64;
    let sending = reads.sending.load(Ordering::Relaxed) as f64 / churches as f64;
    row(
        rows,
        format!(
            "cron run, {stored_count} recurring stored, {churches} due: items read per due occurrence"
        ),
        format!(
            "{finding:.2} finding it (the index entry, the item) · {sending:.2} more by its send (profile, counters, idempotency claim, template use)"
        ),
        "≤ 2",
    );
    row(
        rows,
        format!("cron run, {churches} due: all sent and their fan-out jobs enqueued"),
        format!(
            "{:.2} s · {} table requests · {} SQS sends",
            elapsed.as_secs_f64(),
            used.table_requests,
            used.sqs_sends
        ),
        "≤ 10 s",
    );
    let before = meter.read();
    let again = cron(due).run().await.unwrap();
    assert_eq!(again.found, 0, "all moved on");
    row(
        rows,
        "the same run again (nothing due any more)",
        format!(
            "{} table requests",
            meter.read().since(&before).table_requests
        ),
        "≤ 5 table requests",
    );
    bench.stop().await;
}

pub async fn sunday_rush(rows: &mut Vec<Row>) {
    let bench = Bench::start(&[], true, None, None).await;
    let churches = scale(2_000);
    let members = 50;
    let ny = chrono_tz::America::New_York;
    // The coming Sunday's 09:00 in New York, and a church setting it up an hour before.
    let sunday = ny
        .with_ymd_and_hms(2026, 12, 6, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let mut numbers = HashMap::new();
    for n in 0..churches {
        let id = church(&bench, n, &number(n), 10, members).await;
        numbers.insert(
            PhoneNumber::parse(&number(n)).unwrap().as_e164().to_owned(),
            id,
        );
        let ctx = recurring::Ctx {
            church: id,
            table: bench.stack.app.table.as_ref(),
            now: sunday - chrono::Duration::hours(1),
        };
        let fields = RecurringFields {
            name: Some("Sunday".into()),
            content: Some(MessageText::parse("Service at 10, see you there").unwrap()),
            frequency: Some("weekly".into()),
            day_of_week: Some(0),
            time_of_day: TimeOfDay::parse("09:00"),
            ..RecurringFields::default()
        };
        let made = recurring::create(&ctx, fields).await.unwrap();
        assert_eq!(
            made["nextSendAt"],
            sunday.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    let app = &bench.stack.app;
    let simulator = bench.stack.simulator.as_ref().unwrap();
    let already = simulator.ledger().len();
    let started_at = Utc::now();
    let started = Instant::now();
    let run = Cron {
        table: app.table.as_ref(),
        fanout: app.fanout_queue.as_ref(),
        blobs: app.blobs.as_ref(),
        now: sunday,
    }
    .run()
    .await
    .unwrap();
    let cron_took = started.elapsed();
    assert_eq!(run.sent, churches, "{run:?}");
    // Each church's first text, from the carrier's ledger.
    let mut first: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut at_30s: Option<Vec<usize>> = None;
    while (first.len() < churches || at_30s.is_none()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let ledger = simulator.ledger();
        for entry in &ledger[already..] {
            let after = (entry.at - started_at).to_std().unwrap_or_default();
            first.entry(entry.from.clone()).or_insert(after);
        }
        if at_30s.is_none() && started.elapsed() >= Duration::from_secs(30) {
            let mut per: HashMap<&str, usize> = HashMap::new();
            for entry in &ledger[already..] {
                *per.entry(entry.from.as_str()).or_default() += 1;
            }
            let mut counts: Vec<usize> = numbers
                .keys()
                .map(|n| per.get(n.as_str()).copied().unwrap_or(0))
                .collect();
            counts.sort_unstable();
            at_30s = Some(counts);
        }
    }
    let mut firsts: Vec<Duration> = first.values().copied().collect();
    firsts.sort();
    let within = firsts
        .iter()
        .filter(|d| **d <= Duration::from_secs(30))
        .count();
    row(
        rows,
        format!("Sunday rush: {churches} churches × {members} members due at 09:00 — the cron run"),
        format!("{:.2} s for {} sends", cron_took.as_secs_f64(), run.sent),
        "—",
    );
    row(
        rows,
        "Sunday rush: each church's first SMS after 09:00",
        format!(
            "p50 {:.1} s · p99 {:.1} s · max {:.1} s · {within}/{churches} within 30 s",
            percentile(&firsts, 0.5).as_secs_f64(),
            percentile(&firsts, 0.99).as_secs_f64(),
            firsts.last().copied().unwrap_or_default().as_secs_f64(),
        ),
        "every church within 30 s",
    );
    if let Some(counts) = at_30s {
        row(
            rows,
            "Sunday rush: SMS each church had at 30 s (fairness)",
            format!(
                "min {} · median {} · max {} of {members}",
                counts.first().copied().unwrap_or(0),
                counts[counts.len() / 2],
                counts.last().copied().unwrap_or(0)
            ),
            "no church starved while others finish",
        );
    }
    bench.stop().await;
}
