//! The foundation's bench: the ports on the embedded store and on the AWS
//! emulator, and the local stack's HTTP path. Run with `./infra/bench.sh`
//! (it starts the emulator); prints a Markdown table.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::adapters::aws::{DynamoTable, SqsQueue};
use shared::adapters::embedded::{EmbeddedQueue, QueueSpec};
use shared::catalog::Catalog;
use shared::config::Config;
use shared::local::LocalStack;
use shared::ports::table::{Item, Key, Query, TxOp, Update, WriteOp};
use shared::ports::{OutgoingMessage, Queue, Table};
use shared::registry::Registry;

struct Row {
    backend: &'static str,
    operation: String,
    count: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn print(&self) {
        let per_sec = self.count as f64 / self.elapsed.as_secs_f64();
        let pct = |p: f64| -> String {
            if self.latencies.is_empty() {
                return "—".into();
            }
            let mut sorted = self.latencies.clone();
            sorted.sort();
            let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
            format!("{:.2}", sorted[i].as_secs_f64() * 1000.0)
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {} |",
            self.backend,
            self.operation,
            self.count,
            self.elapsed.as_secs_f64() * 1000.0,
            per_sec,
            pct(0.5),
            pct(0.99)
        );
    }
}

fn item(pk: &str, i: usize) -> Item {
    json!({"pk": pk, "sk": format!("RCPT#{i:06}"), "status": "queued", "memberId": format!("{i:026}")})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Runs `op` `n` times one after another, timing each.
async fn sequential<F, Fut>(backend: &'static str, operation: &str, n: usize, mut op: F) -> Row
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        op(i).await;
        latencies.push(t.elapsed());
    }
    Row {
        backend,
        operation: operation.into(),
        count: n,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn table_rows(backend: &'static str, table: Arc<dyn Table>, n: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    rows.push(
        sequential(backend, "table put (conditional)", n, |i| {
            let table = Arc::clone(&table);
            async move {
                table
                    .put(item("BENCH#put", i), Some(shared::ports::Cond::NotExists))
                    .await
                    .unwrap()
            }
        })
        .await,
    );
    rows.push(
        sequential(backend, "table get", n, |i| {
            let table = Arc::clone(&table);
            async move {
                table
                    .get(&Key::new("BENCH#put", format!("RCPT#{i:06}")))
                    .await
                    .unwrap();
            }
        })
        .await,
    );
    rows.push(
        sequential(
            backend,
            "table update (state transition + counter)",
            n,
            |i| {
                let table = Arc::clone(&table);
                async move {
                    let cond = shared::ports::Cond::eq("status", "queued");
                    table
                        .update(
                            &Key::new("BENCH#put", format!("RCPT#{i:06}")),
                            Update::default()
                                .set("status", "sending")
                                .add("attempts", 1),
                            Some(cond),
                        )
                        .await
                        .unwrap();
                }
            },
        )
        .await,
    );
    rows.push(
        sequential(backend, "table transaction (item + counter)", n / 5, |i| {
            let table = Arc::clone(&table);
            async move {
                table
                    .transact(vec![
                        TxOp::Put {
                            item: item("BENCH#tx", i),
                            cond: Some(shared::ports::Cond::NotExists),
                        },
                        TxOp::Update {
                            key: Key::new("BENCH#tx", "COUNTERS"),
                            update: Update::default().add("members", 1),
                            cond: None,
                        },
                    ])
                    .await
                    .unwrap()
            }
        })
        .await,
    );
    let writes: Vec<WriteOp> = (0..n)
        .map(|i| WriteOp::Put(item("BENCH#batch", i)))
        .collect();
    let started = Instant::now();
    table.batch_write(writes).await.unwrap();
    rows.push(Row {
        backend,
        operation: "table batch write (items)".into(),
        count: n,
        elapsed: started.elapsed(),
        latencies: vec![],
    });
    let started = Instant::now();
    let (mut cursor, mut read, mut pages) = (None, 0, Vec::new());
    loop {
        let t = Instant::now();
        let page = table
            .query(Query::partition("BENCH#batch").limit(100).after(cursor))
            .await
            .unwrap();
        pages.push(t.elapsed());
        read += page.items.len();
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    rows.push(Row {
        backend,
        operation: format!("table query, pages of 100 ({read} items; per page)"),
        count: pages.len(),
        elapsed: started.elapsed(),
        latencies: pages,
    });
    rows
}

async fn queue_rows(backend: &'static str, queue: Arc<dyn Queue>, n: usize) -> Vec<Row> {
    let started = Instant::now();
    queue
        .send_batch(
            (0..n)
                .map(|i| OutgoingMessage::new(format!("{{\"job\":{i}}}")))
                .collect(),
        )
        .await
        .unwrap();
    let send = Row {
        backend,
        operation: "queue send (batches of 10; messages)".into(),
        count: n,
        elapsed: started.elapsed(),
        latencies: vec![],
    };
    let started = Instant::now();
    let mut received = 0;
    let mut latencies = Vec::new();
    while received < n {
        let t = Instant::now();
        let batch = queue
            .receive(10, Duration::from_millis(100), None)
            .await
            .unwrap();
        for m in &batch {
            queue.delete(&m.receipt_handle).await.unwrap();
        }
        latencies.push(t.elapsed());
        received += batch.len();
    }
    let drain = Row {
        backend,
        operation: "queue receive 10 + delete each (messages; per batch)".into(),
        count: received,
        elapsed: started.elapsed(),
        latencies,
    };
    vec![send, drain]
}

async fn http_row(base: &str, n: usize, concurrency: usize) -> Row {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (client, url) = (client.clone(), format!("{base}/health/live"));
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for _ in (worker..n).step_by(concurrency) {
                let t = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    Row {
        backend: "local stack",
        operation: format!("GET /health/live over HTTP, {concurrency} concurrent"),
        count: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::local_in(dir.path(), &[]).unwrap();
    let stack = LocalStack::start(config, Catalog::builtin().unwrap(), &Registry::builtin())
        .await
        .unwrap();

    let mut rows = Vec::new();
    rows.extend(table_rows("embedded", Arc::new(stack.parts.table.clone()), n).await);
    let bench_queue = EmbeddedQueue::new(stack.parts.store.clone(), QueueSpec::new("BenchQueue"));
    rows.extend(queue_rows("embedded", Arc::new(bench_queue), n).await);
    rows.push(http_row(&stack.base_url(), n * 2, 16).await);

    if let Ok(endpoint) = std::env::var("KOINONIA_TEST_AWS_ENDPOINT") {
        let clients = shared::adapters::aws::provision::emulator_clients(&endpoint).await;
        let table = format!("bench-{}", ulid::Ulid::new().to_string().to_lowercase());
        shared::adapters::aws::provision::create_table(&clients, &table)
            .await
            .unwrap();
        let queue = clients
            .sqs
            .create_queue()
            .queue_name(format!("{table}-q"))
            .send()
            .await
            .unwrap();
        let small = n / 4;
        rows.extend(
            table_rows(
                "AWS adapters on ministack",
                Arc::new(DynamoTable::new(clients.dynamodb.clone(), table)),
                small,
            )
            .await,
        );
        let queue = SqsQueue::new(clients.sqs.clone(), queue.queue_url().unwrap_or_default());
        rows.extend(queue_rows("AWS adapters on ministack", Arc::new(queue), small).await);
    }
    stack.stop().await;

    println!(
        "machine: {} cores; n = {n}",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );
    println!();
    println!("| backend | operation | count | total ms | per second | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        row.print();
    }
}
