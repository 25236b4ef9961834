//! The local stack end to end: over HTTP, through a SIGKILL, with consumers.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{Value, json};
use shared::adapters::embedded::{EmbeddedTable, Store};
use shared::app::App;
use shared::catalog::{Catalog, FunctionDecl, QueueTrigger};
use shared::local::LocalStack;
use shared::ports::table::{Item, Key, Query, Update};
use shared::ports::{OutgoingMessage, Queue, Table};
use shared::registry::{Entry, Registry, SqsFuture};

use crate::support::local_config;

async fn start(dir: &Path) -> LocalStack {
    LocalStack::start(
        local_config(dir),
        Catalog::builtin().unwrap(),
        &Registry::builtin(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn health_routes_answer_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let base = stack.base_url();
    for path in ["/health", "/health/live", "/health/ready"] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}");
        assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    }
    let detailed: Value = reqwest::get(format!("{base}/health/detailed"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detailed["status"], "ok");
    for dependency in ["table", "queue", "blobs"] {
        assert_eq!(
            detailed["checks"][dependency]["status"], "ok",
            "{dependency}"
        );
    }
    let missing = reqwest::get(format!("{base}/api/nothing-here"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        (body["success"].clone(), body["code"].clone()),
        (json!(false), json!("not_found"))
    );
    stack.stop().await;
}

/// A GET of the stack's /health from `origin`.
async fn health_from(stack: &LocalStack, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/health", stack.base_url()))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// A browser's preflight from `origin` for a JSON POST with a CSRF token
/// to /api/messages/send.
async fn preflight(stack: &LocalStack, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(
            http::Method::OPTIONS,
            format!("{}/api/messages/send", stack.base_url()),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-csrf-token",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_answers_an_allowed_origin_exactly_with_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let allowed = health_from(&stack, "http://localhost:5173").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    stack.stop().await;
}

#[tokio::test]
async fn cors_allows_no_other_origin() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let foreign = health_from(&stack, "https://evil.example").await;
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_allows_the_apps_headers() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let ok = preflight(&stack, "http://127.0.0.1:5173").await;
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
    let allowed_headers = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for header in [
        "content-type",
        "authorization",
        "x-csrf-token",
        "x-requested-with",
        "idempotency-key",
    ] {
        assert!(allowed_headers.contains(header), "{header}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    assert_eq!(
        preflight(&stack, "https://evil.example").await.status(),
        403
    );
    stack.stop().await;
}

#[test]
fn bad_configuration_exits_with_one_line_naming_the_variable() {
    let local = std::path::PathBuf::from(env!("CARGO_BIN_EXE_koinonia-local"));
    let lambda = crate::support::lambda_binary();
    let cases = [
        (&local, "AWS_ENDPOINT_URL", "not a url"),
        (&local, "KOINONIA_ADDR", "everywhere"),
        (&lambda, "TABLE_NAME", ""),
        (&lambda, "KOINONIA_FUNCTION", ""),
        // A secret's value never sits in a Lambda's environment.
        (&lambda, "JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        (&lambda, "TELNYX_API_KEY", "KEY-live"),
        (&lambda, "DATA_SECRET_ARN", "koinonia/prod/data"),
    ];
    for (binary, var, value) in cases {
        let function = if var == "KOINONIA_FUNCTION" {
            ""
        } else {
            "HealthFunction"
        };
        let output = Command::new(binary)
            .env_clear()
            .env("KOINONIA_FUNCTION", function)
            .env(var, value)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .unwrap();
        let binary = binary.display();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{binary} {var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{binary} {var}: {stderr}");
        assert!(stderr.contains(var), "{binary}: {stderr}");
        assert!(!stderr.contains("panicked"), "{binary}: {stderr}");
    }
}

// --- Consumers ---------------------------------------------------------------

/// A catalog with one extra consumer on the fan-out queue, whose visibility
/// timeout and redrive are shortened so redelivery happens within a test.
fn catalog_with_consumer(id: &str, batch_size: u32) -> Catalog {
    let mut catalog = Catalog::builtin().unwrap().clone();
    // The test consumer is the fan-out queue's only reader.
    for function in &mut catalog.functions {
        function.queue_triggers.retain(|t| t.queue != "FanoutQueue");
    }
    catalog.functions.push(FunctionDecl {
        id: id.to_owned(),
        binary: "test-only".into(),
        entry: Some(id.to_owned()),
        routes: vec![],
        queue_triggers: vec![QueueTrigger {
            queue: "FanoutQueue".into(),
            batch_size,
            reports_batch_item_failures: true,
            maximum_concurrency: 1,
        }],
        stream_triggers: vec![],
        schedules: vec![],
    });
    let fanout = catalog
        .queues
        .iter_mut()
        .find(|q| q.id == "FanoutQueue")
        .unwrap();
    fanout.visibility_timeout = Duration::from_secs(1);
    fanout.redrive = Some(("FanoutDeadLetterQueue".into(), 2));
    catalog
}

fn record_key(body: &str) -> Key {
    Key::new("PROCESSED", body)
}

/// Counts each delivery in the table; fails `fail-once` on its first
/// delivery and `always-fail` on every one, as partial batch failures.
fn flaky<'a>(app: &'a App, event: SqsEvent) -> SqsFuture<'a> {
    Box::pin(async move {
        let mut failures = Vec::new();
        for record in event.records {
            let body = record.body.clone().unwrap_or_default();
            let seen = app
                .table
                .update(
                    &record_key(&body),
                    Update::default().add("deliveries", 1),
                    None,
                )
                .await?;
            let fail = body == "always-fail" || (body == "fail-once" && seen["deliveries"] == 1);
            if fail {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.unwrap_or_default();
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        Ok(response)
    })
}

async fn deliveries(table: &dyn Table, body: &str) -> i64 {
    table
        .get(&record_key(body))
        .await
        .unwrap()
        .and_then(|i| i["deliveries"].as_i64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_honour_partial_batch_failures_and_dead_letter_poison() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::builtin().with("FlakyConsumer", Entry::Sqs(flaky));
    let stack = LocalStack::start(
        local_config(dir.path()),
        &catalog_with_consumer("FlakyConsumer", 10),
        &registry,
    )
    .await
    .unwrap();
    let bodies = ["ok", "fail-once", "always-fail"];
    stack
        .app
        .fanout_queue
        .send_batch(bodies.iter().map(|b| OutgoingMessage::new(*b)).collect())
        .await
        .unwrap();

    let dlq = shared::adapters::embedded::EmbeddedQueue::new(
        stack.parts.store.clone(),
        shared::adapters::embedded::QueueSpec::new("FanoutDeadLetterQueue"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while dlq.approximate_depth().await.unwrap() == 0
        || stack.app.fanout_queue.approximate_depth().await.unwrap() > 0
    {
        assert!(
            Instant::now() < deadline,
            "poison never reached the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = stack.app.table.as_ref();
    assert_eq!(
        deliveries(table, "ok").await,
        1,
        "a success is deleted, not redelivered"
    );
    assert_eq!(
        deliveries(table, "fail-once").await,
        2,
        "a reported failure comes back once"
    );
    assert_eq!(
        deliveries(table, "always-fail").await,
        2,
        "poison stops after maxReceiveCount"
    );
    let dead = dlq.receive(10, Duration::from_secs(1), None).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["always-fail"]
    );
    stack.stop().await;
}

// --- SIGKILL -------------------------------------------------------------------

const CHILD_DIR: &str = "KOINONIA_TEST_CHILD_DATA_DIR";
const JOBS: usize = 20;

/// Processes each job slowly, so a kill lands while a batch is in flight.
fn slow_recorder<'a>(app: &'a App, event: SqsEvent) -> SqsFuture<'a> {
    Box::pin(async move {
        for record in event.records {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let body = record.body.unwrap_or_default();
            let receives: i64 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let update = Update::default()
                .add("deliveries", 1)
                .set("lastReceiveCount", receives);
            app.table.update(&record_key(&body), update, None).await?;
        }
        Ok(SqsBatchResponse::default())
    })
}

/// Not a test on its own: the SIGKILL test runs this binary again with only
/// this function selected, as the process it kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of sigkill_with_messages_in_flight_loses_nothing"]
async fn child_local_stack() {
    let dir =
        std::env::var(CHILD_DIR).expect("run by sigkill_with_messages_in_flight_loses_nothing");
    let registry = Registry::builtin().with("SlowRecorder", Entry::Sqs(slow_recorder));
    let mut catalog = catalog_with_consumer("SlowRecorder", 10);
    catalog
        .queues
        .iter_mut()
        .find(|q| q.id == "FanoutQueue")
        .unwrap()
        .visibility_timeout = Duration::from_secs(2);
    let _stack = LocalStack::start(local_config(Path::new(&dir)), &catalog, &registry)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

fn spawn_child(dir: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "local_stack::child_local_stack",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn processed(table: &EmbeddedTable) -> Vec<Item> {
    table
        .query(Query::partition("PROCESSED").limit(1000))
        .await
        .unwrap()
        .items
}

async fn wait_for(table: &EmbeddedTable, at_least: usize, within: Duration) -> Vec<Item> {
    let deadline = Instant::now() + within;
    loop {
        let items = processed(table).await;
        if items.len() >= at_least || Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_messages_in_flight_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let church = json!({"pk": "CHURCH#01J", "sk": "PROFILE", "name": "Grace Chapel"})
        .as_object()
        .cloned()
        .unwrap();
    {
        // Data and queued jobs from an earlier run of the stack. It runs no
        // consumers: its fan-out consumer could otherwise take a batch before
        // it stops (and, the jobs being unreadable to it, hide them for the
        // real queue's 120 s visibility timeout).
        let mut quiet = Catalog::builtin().unwrap().clone();
        for function in &mut quiet.functions {
            function.queue_triggers.clear();
        }
        let stack = LocalStack::start(local_config(dir.path()), &quiet, &Registry::builtin())
            .await
            .unwrap();
        stack.app.table.put(church.clone(), None).await.unwrap();
        let jobs = (0..JOBS)
            .map(|i| OutgoingMessage::new(format!("job-{i:02}")))
            .collect();
        stack.app.fanout_queue.send_batch(jobs).await.unwrap();
        stack.stop().await;
    }
    let store = Store::open(dir.path()).unwrap();
    let table = EmbeddedTable::new(store.clone());

    let mut first = spawn_child(dir.path());
    let before_kill = wait_for(&table, 1, Duration::from_secs(30)).await;
    first.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    first.wait().unwrap();
    let done_before = processed(&table).await.len();
    assert!(
        !before_kill.is_empty() && done_before < JOBS,
        "the kill must land mid-batch ({done_before} done)"
    );

    let mut second = spawn_child(dir.path());
    let after = wait_for(&table, JOBS, Duration::from_secs(60)).await;
    let fanout = shared::adapters::embedded::EmbeddedQueue::new(
        store.clone(),
        Catalog::builtin()
            .unwrap()
            .queue("FanoutQueue")
            .unwrap()
            .spec(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while fanout.approximate_depth().await.unwrap() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let bodies: Vec<&str> = after.iter().map(|i| i["sk"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..JOBS).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(bodies, expected, "every job is processed after the restart");
    assert!(
        after
            .iter()
            .any(|i| i["lastReceiveCount"].as_i64() >= Some(2)),
        "the jobs in flight at the kill were delivered again"
    );
    assert_eq!(fanout.approximate_depth().await.unwrap(), 0);
    assert_eq!(
        table.get(&Key::new("CHURCH#01J", "PROFILE")).await.unwrap(),
        Some(church)
    );
}
