//! Test worlds: every port on the embedded adapters (in a fresh data folder,
//! with a local stack serving presigned URLs) or on the AWS adapters (fresh
//! resources on the emulator), behind the same fields.

use std::sync::Arc;
use std::time::Duration;

use shared::adapters::aws::provision::{
    create_bucket, create_observed_bus, create_queue, create_table,
};
use shared::adapters::aws::{
    AwsChanges, AwsClients, DynamoTable, EventBridgeEvents, S3Blobs, SqsQueue,
};
use shared::adapters::embedded::{EmbeddedChanges, EmbeddedQueue, QueueSpec};
use shared::catalog::Catalog;
use shared::config::Config;
use shared::local::LocalStack;
use shared::ports::{Blobs, Changes, DomainEvent, Events, Queue, Table};
use shared::registry::Registry;

/// Receives before a message of the test queue moves to its dead-letter queue.
pub const MAX_RECEIVES: u32 = 2;

pub struct World {
    pub table: Arc<dyn Table>,
    /// The table's change stream.
    pub changes: Arc<dyn Changes>,
    pub queue: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
    pub blobs: Arc<dyn Blobs>,
    pub events: Arc<dyn Events>,
    observer: Observer,
    _guard: Guard,
}

enum Observer {
    Embedded(shared::adapters::embedded::EmbeddedEvents),
    /// An EventBridge rule on the bus forwards everything to this queue.
    Aws(SqsQueue),
}

enum Guard {
    Embedded(Box<LocalStack>, tempfile::TempDir),
    Aws,
}

impl World {
    /// The events that reached the bus, oldest first as far as the backend orders them.
    pub async fn published(&self, expected: usize) -> Vec<DomainEvent> {
        match &self.observer {
            Observer::Embedded(log) => log
                .all()
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.event)
                .collect(),
            Observer::Aws(queue) => {
                let mut seen = Vec::new();
                for _ in 0..20 {
                    for m in queue
                        .receive(10, Duration::from_millis(500), None)
                        .await
                        .unwrap()
                    {
                        let envelope: serde_json::Value = serde_json::from_str(&m.body).unwrap();
                        seen.push(DomainEvent::new(
                            envelope["detail-type"].as_str().unwrap_or_default(),
                            envelope["detail"].clone(),
                        ));
                        queue.delete(&m.receipt_handle).await.unwrap();
                    }
                    if seen.len() >= expected {
                        break;
                    }
                }
                seen
            }
        }
    }

    pub async fn finish(self) {
        if let Guard::Embedded(stack, _dir) = self._guard {
            stack.stop().await;
        }
    }
}

/// A config for a local stack on a free port in `dir`.
pub fn local_config(dir: &std::path::Path) -> Config {
    Config::local_in(dir, &[]).unwrap()
}

pub async fn embedded() -> World {
    let dir = tempfile::tempdir().unwrap();
    let stack = LocalStack::start(
        local_config(dir.path()),
        Catalog::builtin().unwrap(),
        &Registry::builtin(),
    )
    .await
    .unwrap();
    let store = stack.parts.store.clone();
    World {
        table: Arc::new(stack.parts.table.clone()),
        changes: Arc::new(EmbeddedChanges::new(store.clone())),
        queue: Arc::new(EmbeddedQueue::new(
            store.clone(),
            QueueSpec::new("TestQueue").dead_letter_after(MAX_RECEIVES, "TestDeadLetters"),
        )),
        dead_letters: Arc::new(EmbeddedQueue::new(store, QueueSpec::new("TestDeadLetters"))),
        blobs: Arc::new(stack.parts.blobs.clone()),
        events: Arc::new(stack.parts.events.clone()),
        observer: Observer::Embedded(stack.parts.events.clone()),
        _guard: Guard::Embedded(Box::new(stack), dir),
    }
}

pub fn emulator_endpoint() -> String {
    std::env::var("KOINONIA_TEST_AWS_ENDPOINT")
        .expect("the AWS conformance tests need the emulator: run ./infra/test.sh (it starts one)")
}

pub async fn aws_clients() -> AwsClients {
    shared::adapters::aws::provision::emulator_clients(&emulator_endpoint()).await
}

/// Resource names unique to one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn aws() -> World {
    let clients = aws_clients().await;
    let (table, queue, bucket, bus) = (unique("kt"), unique("kq"), unique("kb"), unique("ke"));
    create_table(&clients, &table).await.unwrap();
    let dlq_url = create_queue(&clients, &format!("{queue}-dlq"), None)
        .await
        .unwrap();
    let queue_url = create_queue(&clients, &queue, Some((&dlq_url, MAX_RECEIVES)))
        .await
        .unwrap();
    create_bucket(&clients, &bucket).await.unwrap();
    let sink = create_observed_bus(&clients, &bus).await.unwrap();
    World {
        changes: Arc::new(AwsChanges::new(
            clients.dynamodb.clone(),
            clients.streams.clone(),
            table.clone(),
        )),
        table: Arc::new(DynamoTable::new(clients.dynamodb.clone(), table)),
        queue: Arc::new(SqsQueue::new(clients.sqs.clone(), queue_url)),
        dead_letters: Arc::new(SqsQueue::new(clients.sqs.clone(), dlq_url)),
        blobs: Arc::new(S3Blobs::new(clients.s3.clone(), bucket)),
        events: Arc::new(EventBridgeEvents::new(clients.eventbridge.clone(), bus)),
        observer: Observer::Aws(SqsQueue::new(clients.sqs.clone(), sink)),
        _guard: Guard::Aws,
    }
}

/// Declares a conformance suite: each listed async fn taking `&World` runs
/// once against `embedded` and once against `aws`, under the same name.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let world = crate::support::embedded().await;
                    super::$test(&world).await;
                    world.finish().await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let world = crate::support::aws().await;
                    super::$test(&world).await;
                    world.finish().await;
                }
            )*
        }
    };
}
pub(crate) use conformance;

/// A local stack in a fresh folder, with HTTP helpers for its API.
pub struct Stack {
    pub stack: LocalStack,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stack = LocalStack::start(
            local_config(dir.path()),
            Catalog::builtin().unwrap(),
            &Registry::builtin(),
        )
        .await
        .unwrap();
        Self {
            stack,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A stack with these settings over the local defaults.
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::local_in(dir.path(), vars).unwrap();
        let stack = LocalStack::start(config, Catalog::builtin().unwrap(), &Registry::builtin())
            .await
            .unwrap();
        Self::wrap(stack, dir)
    }

    /// A stack whose handlers read the time from `clock`.
    pub async fn start_clocked(clock: Arc<dyn shared::ports::Clock>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stack = LocalStack::start_clocked(
            local_config(dir.path()),
            Catalog::builtin().unwrap(),
            &Registry::builtin(),
            clock,
        )
        .await
        .unwrap();
        Self::wrap(stack, dir)
    }

    /// A stack started elsewhere (custom configuration or catalog).
    pub fn wrap(stack: LocalStack, dir: tempfile::TempDir) -> Self {
        Self {
            stack,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.base_url())
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    pub async fn raw_post(&self, path: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// Every item in the embedded table, for "nothing was written" checks.
    pub async fn item_count(&self) -> usize {
        self.dump().await.len()
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

/// The sorted keys of a JSON object, to check response shapes exactly.
pub fn keys_of(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// A registered church admin, as the frontend holds them.
pub struct Admin {
    pub token: String,
    pub church_id: String,
}

impl Stack {
    /// The built-in Telnyx simulator's handle.
    pub fn simulator(&self) -> shared::telnyx::simulator::SimulatorHandle {
        self.stack
            .simulator
            .as_ref()
            .expect("the stack runs the built-in simulator")
            .handle()
    }

    /// The platform's Telnyx account buys `number` for `admin`'s church, as
    /// its operator does before the church links it.
    pub fn own_number(&self, admin: &Admin, number: &str) {
        let number = shared::domain::PhoneNumber::parse(number).unwrap();
        self.simulator()
            .assign_number(number.as_e164(), &admin.church_id);
    }

    /// Changes the church's stored profile directly (a plan, a trial's end,
    /// a throughput): what billing or 10DLC registration would set.
    pub async fn change_profile(
        &self,
        church: shared::domain::ChurchId,
        update: shared::ports::table::Update,
    ) {
        self.stack
            .app
            .table
            .update(&shared::keys::church_profile(church), update, None)
            .await
            .unwrap();
    }

    pub async fn register(&self, email: &str) -> Admin {
        let body = serde_json::json!({
            "email": email, "password": "Shepherd123", "firstName": "Ruth", "lastName": "Boaz", "churchName": "Grace Chapel",
        });
        let response = self.post("/api/auth/register", &body).await;
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        Admin {
            token: body["data"]["accessToken"].as_str().unwrap().to_owned(),
            church_id: body["data"]["church"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// `email` (registered by `register`) logs in again: a fresh access token.
    pub async fn login(&self, email: &str) -> Admin {
        let body = serde_json::json!({ "email": email, "password": "Shepherd123" });
        let response = self.post("/api/auth/login", &body).await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        Admin {
            token: body["data"]["accessToken"].as_str().unwrap().to_owned(),
            church_id: body["data"]["church"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// A request as `admin`, with a bearer token.
    pub async fn call(
        &self,
        admin: &Admin,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&admin.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Posts `event` to the Telnyx webhook, signed with the built-in
    /// simulator's key as Telnyx signs, stamped `age` seconds ago.
    pub async fn post_signed(&self, event: &serde_json::Value, age: i64) -> reqwest::Response {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let seed: [u8; 32] = self
            .stack
            .app
            .config
            .telnyx_sim_signing_key
            .as_ref()
            .unwrap()
            .expose()
            .try_into()
            .unwrap();
        let body = event.to_string();
        let ts = (chrono::Utc::now().timestamp() - age).to_string();
        let signature = base64::engine::general_purpose::STANDARD.encode(
            ed25519_dalek::SigningKey::from_bytes(&seed)
                .sign(format!("{ts}|{body}").as_bytes())
                .to_bytes(),
        );
        self.http
            .post(self.url("/api/webhooks/telnyx/status"))
            .header("telnyx-timestamp", ts)
            .header("telnyx-signature-ed25519", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A registered church on the growth plan, sending from `number` at
    /// `mps`, with `n` members (phones +1 303 555 0000 onwards).
    pub async fn church_with_members(
        &self,
        email: &str,
        number: &str,
        mps: u32,
        n: usize,
    ) -> (Admin, Vec<String>) {
        let admin = self.register(email).await;
        let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
        let growth = shared::ports::table::Update::default()
            .set("plan", "growth")
            .set("sendingMps", mps);
        self.change_profile(church, growth).await;
        self.own_number(&admin, number);
        let link = serde_json::json!({ "phoneNumber": number });
        let linked = self
            .call(&admin, "POST", "/api/admin/phone-numbers/link", Some(link))
            .await;
        expect_status(linked, reqwest::StatusCode::OK).await;
        let mut ids = Vec::new();
        for i in 0..n {
            let member = serde_json::json!({"firstName": format!("M{i:03}"), "lastName": "T", "phone": format!("+1303555{i:04}")});
            let created = self
                .call(&admin, "POST", "/api/members", Some(member))
                .await;
            let created = expect_status(created, reqwest::StatusCode::CREATED).await;
            ids.push(created["data"]["id"].as_str().unwrap().to_owned());
        }
        (admin, ids)
    }

    /// Sends `content` to all of `admin`'s members; the message id.
    pub async fn send_to_all(&self, admin: &Admin, content: &str) -> String {
        let send = serde_json::json!({ "content": content, "targetType": "all" });
        let sent = self
            .call(admin, "POST", "/api/messages/send", Some(send))
            .await;
        let sent = expect_status(sent, reqwest::StatusCode::CREATED).await;
        sent["data"]["id"].as_str().unwrap().to_owned()
    }

    /// The message's view once every recipient is terminal (`completed`).
    pub async fn until_complete(
        &self,
        admin: &Admin,
        id: &str,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let view = self
                .call(admin, "GET", &format!("/api/messages/{id}"), None)
                .await;
            let view = expect_status(view, reqwest::StatusCode::OK).await;
            if view["data"]["state"] == "completed" {
                return view["data"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not complete within {within:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The message's view once `settled` holds of it: its counts come from
    /// the aggregator, a moment behind the recipients (`LAG_BOUND`).
    pub async fn view_when(
        &self,
        admin: &Admin,
        id: &str,
        settled: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + LAG_BOUND;
        loop {
            let view = self
                .call(admin, "GET", &format!("/api/messages/{id}"), None)
                .await;
            let view = expect_status(view, reqwest::StatusCode::OK).await;
            if settled(&view["data"]) || std::time::Instant::now() >= deadline {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where `member`'s recipient of `message` is stored (its lane).
    pub async fn recipient_key(
        &self,
        church: shared::domain::ChurchId,
        message: shared::domain::MessageId,
        member: shared::domain::MemberId,
    ) -> shared::ports::Key {
        use shared::store::Entities;
        let stored: shared::messaging::entities::Message = self
            .stack
            .app
            .table
            .load(&shared::keys::message(church, message))
            .await
            .unwrap()
            .expect("the message is stored");
        shared::keys::recipient(message, shared::keys::lane_of(member, stored.lanes), member)
    }

    /// Every item of the embedded table, sorted by key — less the per-minute
    /// request counters, which every authenticated request bumps.
    pub async fn dump(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let mut items = self.stack.parts.table.dump().await.unwrap();
        items.retain(|i| !i["pk"].as_str().unwrap_or_default().starts_with("RATE#"));
        items
    }
}

/// How far behind the recipients the aggregated counts may be, locally:
/// the batching window (1 s) and a poll, with room for a loaded machine.
pub const LAG_BOUND: Duration = Duration::from_secs(10);

/// The JSON body of a response, after checking its status (the body is
/// shown when the status is not the expected one).
pub async fn expect_status(
    response: reqwest::Response,
    status: reqwest::StatusCode,
) -> serde_json::Value {
    let got = response.status();
    let value: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    assert_eq!(got, status, "{value}");
    value
}

/// The Lambda binary as it is deployed (the `koinonia-lambda` package,
/// without the local stack): `infra/test.sh` builds it and names it in
/// `KOINONIA_LAMBDA_BIN`; a plain `cargo test` builds it here once.
pub fn lambda_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("KOINONIA_LAMBDA_BIN") {
                return path.into();
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--quiet", "--locked", "-p", "koinonia-lambda"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build -p koinonia-lambda failed");
            // target/debug/deps/suite-… → target/debug/koinonia-lambda
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent()
                .and_then(std::path::Path::parent)
                .expect("the test binary lives in target/<profile>/deps")
                .join("koinonia-lambda")
        })
        .clone()
}

/// A file of `tests/fixtures` (real Telnyx and AWS material; each has a
/// `.NOTE` naming its source), read as text.
pub fn fixture_text(path: &str) -> String {
    let path = fixture_path(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Where a file or folder of `tests/fixtures` lives.
pub fn fixture_path(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(path)
}
