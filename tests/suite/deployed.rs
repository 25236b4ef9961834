//! The deployed shape: template.yaml after the SAM transform,
//! created in the emulator's CloudFormation with IAM enforced (each function
//! calls AWS with its own role's credentials), the real Lambda bootstrap
//! behind its gateway routes, queue triggers and the table's stream, the
//! Telnyx simulator as the carrier — and driven only through the gateway's
//! execute-api URL and the simulator. `infra/emulator_stack.py` creates the
//! stack, names what the emulator does differently from AWS (README,
//! "Deployed shape"), and stands in for the stream's event source mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use shared::catalog::Catalog;
use shared::telnyx::simulator::{SimConfig, Simulator};

use crate::support::{emulator_endpoint, lambda_binary, unique};

const CHURCH_NUMBER: &str = "+13035550100";
const MEMBERS: usize = 100;
/// Members in the group whose delete outgrows one request (over 200).
const GROUP: usize = 230;
const API_KEY: &str = "KEY-deployed";
/// An id of nothing, for the routes whose path names a thing.
const NO_SUCH_ID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn phone(i: usize) -> String {
    format!("+1303555{:04}", 2000 + i)
}

/// Runs the stack driver with `input` on stdin; its JSON answer.
fn driver(args: &[&str], input: &Value) -> Value {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the deployed-shape test needs .venv: run ./infra/test.sh (it installs it)"
    );
    let mut child = Command::new(python)
        .arg(repo().join("infra/emulator_stack.py"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "infra/emulator_stack.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the driver answers JSON")
}

/// `infra/emulator_stack.py mappings`: Lambda's DynamoDB-stream event
/// source mappings of the stack, which the emulator does not run as Lambda
/// does, for as long as this lives (its stdin closing stops it too).
struct StreamMappings {
    child: Child,
    log: PathBuf,
}

impl StreamMappings {
    fn start(endpoint: &str, stack: &str) -> Self {
        let log = std::env::temp_dir().join(format!("{stack}-stream-mappings.log"));
        let mut child = Command::new(repo().join(".venv/bin/python"))
            .arg(repo().join("infra/emulator_stack.py"))
            .arg("mappings")
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        use std::io::Write;
        let request = json!({"endpoint": endpoint, "stack": stack, "log": log});
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "infra/emulator_stack.py mappings did not start (its error is above)"
        );
        Self { child, log }
    }
}

impl Drop for StreamMappings {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test shows what the aggregator was handed and answered.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "stream mappings, last invocations ({}):",
                self.log.display()
            );
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let response = self.call(method, path, body).await;
        let got = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(got.as_u16(), status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Imports members `numbers` from a CSV (a multipart body through the gateway); the report.
    async fn import(&self, numbers: std::ops::Range<usize>) -> Value {
        let mut csv = String::from("First Name,Last Name,Phone\n");
        for i in numbers {
            csv.push_str(&format!("Member{i:03},Test,{}\n", phone(i)));
        }
        let part = Part::text(csv)
            .file_name("members.csv")
            .mime_str("text/csv")
            .unwrap();
        let imported = self
            .http
            .post(self.url("/api/members/import"))
            .bearer_auth(&self.token)
            .multipart(Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(imported.status(), StatusCode::OK);
        imported.json().await.unwrap()
    }

    /// Every member of the church, a page of 100 at a time.
    async fn every_member(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let path = format!("/api/members?limit=100&page={page}");
            let listed = self.expect("GET", &path, None, 200).await;
            let data = listed["data"].as_array().cloned().unwrap_or_default();
            if data.is_empty() {
                return all;
            }
            all.extend(data);
        }
        all
    }

    /// Sends `content` to every member; its id and its view once completed
    /// with `delivered` delivered and `opted_out` opted out. The counts are
    /// the aggregator's, summed from the table's stream: they must reach
    /// exactly these and stay there (a batch counted twice would overshoot).
    async fn broadcast(
        &self,
        content: &str,
        delivered: usize,
        opted_out: usize,
    ) -> (String, Value) {
        let body = json!({"content": content, "targetType": "all"});
        let sent = self
            .expect("POST", "/api/messages/send", Some(body), 201)
            .await;
        let id = sent["data"]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/messages/{id}");
        let converged = |v: &Value| {
            let data = &v["data"];
            data["state"] == "completed"
                && data["deliveredCount"] == delivered
                && data["counts"]["delivered"] == delivered
                && data["counts"]["optedOut"] == opted_out
                && [
                    "queued",
                    "sending",
                    "sent",
                    "failed",
                    "uncertain",
                    "cancelled",
                ]
                .iter()
                .all(|c| data["counts"][c] == 0)
        };
        let view = self.until(&path, Duration::from_secs(120), converged).await;
        // Longer than the mapping's batching window and an invocation.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let again = self.expect("GET", &path, None, 200).await;
        assert_eq!(
            again["data"]["counts"], view["data"]["counts"],
            "the counts moved after converging"
        );
        (id, view)
    }

    /// Polls `path` until `done` holds for its body.
    async fn until(&self, path: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let view = self.expect("GET", path, None, 200).await;
            if done(&view) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "{path} not done within {within:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn random_base64(n: usize) -> String {
    STANDARD.encode((0..n).map(|_| rand::random::<u8>()).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stack_template_yaml_creates_serves_a_church_end_to_end() {
    let endpoint = emulator_endpoint();
    let simulator = Simulator::start(
        SimConfig::new(API_KEY, rand::random()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let stack = unique("dep");
    let deployed = driver(
        &[],
        &json!({
            "endpoint": endpoint,
            "stack": stack,
            "bootstrap": lambda_binary(),
            "parameters": {
                "Architecture": "x86_64",
                "StageName": stack,
                "TelnyxApiUrl": simulator.base_url(),
                "AllowedOrigins": "http://localhost:5173",
            },
            "secrets": {
                "TokenSecretArn": {"JWT_SECRET": random_base64(48)},
                "DataSecretArn": {"DATA_KEY": random_base64(32), "PHONE_HASH_KEY": random_base64(32)},
                "CarrierSecretArn": {"TELNYX_API_KEY": API_KEY, "TELNYX_PUBLIC_KEY": simulator.public_key_base64()},
            },
        }),
    );
    let base = deployed["apiUrl"].as_str().unwrap().to_owned();
    let resources = deployed["resources"].clone();
    // Recipients' changes reach the counts aggregator through it.
    let mappings = StreamMappings::start(&endpoint, &stack);
    // The messaging profile's webhook, as set in Telnyx's portal (RUNBOOK.md).
    simulator.set_profile_webhook(&format!("{base}/api/webhooks/telnyx/status"));
    let mut api = Api {
        http: reqwest::Client::new(),
        base,
        token: String::new(),
    };
    let mut invoked: BTreeSet<String> = BTreeSet::new();

    // An admin registers, logs in and loads the app (GET /api/auth/me on every page).
    let registered = api
        .expect(
            "POST",
            "/api/auth/register",
            Some(json!({"email": "pastor@grace.example", "password": "Shepherd123", "firstName": "Ruth", "lastName": "Boaz", "churchName": "Grace Chapel"})),
            201,
        )
        .await;
    let church_id = registered["data"]["church"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = api
        .expect(
            "POST",
            "/api/auth/login",
            Some(json!({"email": "pastor@grace.example", "password": "Shepherd123"})),
            200,
        )
        .await;
    api.token = login["data"]["accessToken"].as_str().unwrap().to_owned();
    let me = api.expect("GET", "/api/auth/me", None, 200).await;
    assert_eq!(me["data"]["church"]["id"], church_id.as_str());
    // The platform's Telnyx account bought the number for this church; the
    // deployed link function asks Telnyx (the simulator) before linking.
    simulator.handle().assign_number(CHURCH_NUMBER, &church_id);
    api.expect(
        "POST",
        "/api/admin/phone-numbers/link",
        Some(json!({"phoneNumber": CHURCH_NUMBER})),
        200,
    )
    .await;

    // 100 members from a CSV.
    let report = api.import(0..MEMBERS).await;
    assert_eq!(report["data"]["imported"], MEMBERS, "{report}");

    // The number's throughput (its 10DLC class), as the admin sets it.
    api.expect(
        "PUT",
        "/api/admin/profile",
        Some(json!({"sendingMps": 100})),
        200,
    )
    .await;
    // The plan is billing's (a later wave): the operator sets it. Pro's
    // request limit leaves room for this test's polling.
    let clients = crate::support::aws_clients().await;
    let table = shared::adapters::aws::DynamoTable::new(
        clients.dynamodb.clone(),
        resources["Table"].as_str().unwrap(),
    );
    shared::ports::Table::update(
        &table,
        &shared::keys::church_profile(shared::domain::ChurchId::parse(&church_id).unwrap()),
        shared::ports::table::Update::default().set("plan", "pro"),
        None,
    )
    .await
    .unwrap();

    // A broadcast: send → fan-out queue → fan-out Lambda → send queue → send
    // Lambda → Telnyx (the simulator) → signed receipts → webhook route, and
    // each recipient's change → the table's stream → the counts aggregator.
    let started = Instant::now();
    let (message, view) = api
        .broadcast("Hi {firstName}, service is at 10.", MEMBERS, 0)
        .await;
    let delivered_in = started.elapsed();
    assert_eq!(view["data"]["counts"]["delivered"], MEMBERS, "{view}");
    let recipients = api
        .expect(
            "GET",
            &format!("/api/messages/{message}/recipients?status=delivered"),
            None,
            200,
        )
        .await;
    assert_eq!(recipients["pagination"]["total"], MEMBERS, "{recipients}");
    assert!(
        recipients["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "delivered"),
        "{recipients}"
    );
    let ledger = simulator.ledger();
    let to: BTreeSet<&str> = ledger.iter().map(|e| e.to.as_str()).collect();
    assert_eq!(to.len(), MEMBERS, "one text per member");
    assert!(
        ledger
            .iter()
            .any(|e| e.text.as_deref() == Some("Hi Member007, service is at 10."))
    );

    // An upload put bigger than it declared is refused before a send uses
    // it: the send function reads the stored object's size (an S3 HEAD,
    // under its own role's grant).
    let granted = api
        .expect(
            "POST",
            "/api/media",
            Some(json!({"contentType": "image/png", "size": 1000})),
            200,
        )
        .await;
    let put = reqwest::Client::new()
        .put(granted["data"]["uploadUrl"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(vec![7u8; 1_100_000])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let refused = api
        .expect(
            "POST",
            "/api/messages/send",
            Some(json!({"content": "Poster", "targetType": "all", "mediaIds": [granted["data"]["id"]]})),
            400,
        )
        .await;
    assert_eq!(refused["details"][0]["field"], "mediaIds", "{refused}");

    // A member texts STOP, signed by Telnyx's key, through the webhook route.
    let inbound = format!("{}/api/webhooks/telnyx/mms", api.base);
    let sim = simulator.handle();
    assert!(
        sim.deliver_inbound(&inbound, &phone(7), CHURCH_NUMBER, "STOP", &[])
            .await
    );
    let confirmed = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let confirmations = simulator
                .ledger()
                .into_iter()
                .filter(|e| e.to == phone(7))
                .count();
            if confirmations == 2 || Instant::now() > deadline {
                break confirmations;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(confirmed, 2, "the broadcast, then one STOP confirmation");
    // The next broadcast leaves them out.
    let (_, view) = api.broadcast("Potluck Sunday", MEMBERS - 1, 1).await;
    assert_eq!(view["data"]["counts"]["optedOut"], 1, "{view}");
    assert_eq!(view["data"]["counts"]["delivered"], MEMBERS - 1, "{view}");

    // A photo texted in is copied into the bucket by the media queue's Lambda.
    let photo = Bytes::from((0..20_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let link = sim.host_media("image/jpeg", photo.clone());
    assert!(
        sim.deliver_inbound(
            &inbound,
            &phone(3),
            CHURCH_NUMBER,
            "Our new baby!",
            std::slice::from_ref(&link)
        )
        .await
    );
    let listed = api
        .until(
            "/api/messages/conversations",
            Duration::from_secs(30),
            |v| v["data"].as_array().is_some_and(|c| c.len() == 2),
        )
        .await;
    let conversation = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["member"]["phone"] == phone(3).as_str())
        .unwrap_or_else(|| panic!("no conversation with the texter: {listed}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let thread = api
        .until(
            &format!("/api/messages/conversations/{conversation}"),
            Duration::from_secs(60),
            |v| {
                v["messages"].as_array().into_iter().flatten().any(|m| {
                    m["mediaUrl"]
                        .as_str()
                        .is_some_and(|u| !u.starts_with(&simulator.base_url()))
                })
            },
        )
        .await;
    let shown = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|m| {
            m["mediaUrl"]
                .as_str()
                .filter(|u| !u.starts_with(&simulator.base_url()))
        })
        .unwrap()
        .to_owned();
    let copy = api.http.get(&shown).send().await.unwrap();
    assert_eq!(copy.status(), StatusCode::OK, "{shown}");
    assert_eq!(
        copy.bytes().await.unwrap(),
        photo,
        "the church's copy, presigned"
    );
    // And the church answers in the thread.
    api.expect(
        "POST",
        &format!("/api/messages/conversations/{conversation}/reply"),
        Some(json!({"content": "Congratulations!"})),
        201,
    )
    .await;

    // A group bigger than one request clears: its delete hands the rest to
    // the fan-out queue, whose Lambda finishes it.
    let report = api.import(MEMBERS..GROUP).await;
    assert_eq!(report["data"]["imported"], GROUP - MEMBERS, "{report}");
    let choir = api
        .expect("POST", "/api/groups", Some(json!({"name": "Choir"})), 201)
        .await;
    let choir = choir["data"]["id"].as_str().unwrap().to_owned();
    let members = api.every_member().await;
    assert_eq!(members.len(), GROUP);
    let joins = members.iter().map(|m| {
        let path = format!("/api/groups/{choir}/members/{}", m["id"].as_str().unwrap());
        let api = &api;
        async move { api.expect("PUT", &path, None, 200).await }
    });
    futures_util::stream::iter(joins)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let deleted = api
        .expect("DELETE", &format!("/api/groups/{choir}"), None, 200)
        .await;
    assert_eq!(deleted["data"]["membershipsPending"], true, "{deleted}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while api
        .every_member()
        .await
        .iter()
        .any(|m| m["groupIds"] != json!([]))
    {
        assert!(
            Instant::now() < deadline,
            "the choir's memberships never all went"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A template of the church's own, through its four functions: each
    // role allows what its use case reads and writes.
    let template = api
        .expect(
            "POST",
            "/api/templates",
            Some(json!({"name": "Picnic", "content": "Picnic at noon!", "category": "event"})),
            201,
        )
        .await;
    let template = template["id"].as_str().unwrap().to_owned();
    let path = format!("/api/templates/{template}");
    let edited = api
        .expect(
            "PUT",
            &path,
            Some(json!({"content": "Picnic at one!"})),
            200,
        )
        .await;
    assert_eq!(edited["content"], "Picnic at one!", "{edited}");
    let listed = api.expect("GET", "/api/templates", None, 200).await;
    assert!(
        listed
            .as_array()
            .is_some_and(|all| all.iter().any(|t| t["id"] == template.as_str())),
        "{listed}"
    );
    api.expect("DELETE", &path, None, 200).await;
    invoked.extend(
        [
            "TemplatesCreateFunction",
            "TemplatesUpdateFunction",
            "TemplatesListFunction",
            "TemplatesDeleteFunction",
        ]
        .map(String::from),
    );

    // A recurring message, set up through the gateway; made due (as if its
    // time had come), it is sent by DueSendsFunction, which the emulator's
    // EventBridge Scheduler fires every minute.
    api.expect(
        "PUT",
        "/api/admin/profile",
        Some(json!({"quietHours": null})),
        200,
    )
    .await;
    let daily = json!({"name": "Daily verse", "content": "Verse of the day (deployed)", "targetType": "all", "frequency": "daily", "timeOfDay": "12:00"});
    let recurring = api.expect("POST", "/api/recurring", Some(daily), 201).await;
    let recurring_id = recurring["id"].as_str().unwrap().to_owned();
    let recurring_path = format!("/api/recurring/{recurring_id}");
    api.expect(
        "PUT",
        &recurring_path,
        Some(json!({"timeOfDay": "12:30"})),
        200,
    )
    .await;
    api.expect(
        "PUT",
        &format!("{recurring_path}/toggle"),
        Some(json!({"isActive": true})),
        200,
    )
    .await;
    let due = chrono::Utc::now() - chrono::Duration::minutes(1);
    let due_text = shared::scheduling::due::utc_text(due);
    let recurring_key = shared::keys::recurring(
        shared::domain::ChurchId::parse(&church_id).unwrap(),
        shared::domain::RecurringId::parse(&recurring_id).unwrap(),
    );
    let made_due = shared::scheduling::due::place(
        shared::ports::table::Update::default().set("nextSendAt", due_text.clone()),
        &recurring_key,
        shared::scheduling::due::DueKind::Recurring,
        due,
    );
    shared::ports::Table::update(&table, &recurring_key, made_due, None)
        .await
        .unwrap();
    let fired = api
        .until("/api/recurring", Duration::from_secs(180), |all| {
            all.as_array().is_some_and(|all| {
                all.iter().any(|r| {
                    r["id"] == recurring_id.as_str() && r["lastSentAt"] == due_text.as_str()
                })
            })
        })
        .await;
    let fired = fired
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == recurring_id.as_str())
        .unwrap()
        .clone();
    assert!(
        fired["nextSendAt"].as_str().unwrap() > due_text.as_str(),
        "{fired}"
    );
    let occurrence = fired["lastMessageId"].as_str().unwrap();
    let sent = api
        .until(
            &format!("/api/messages/{occurrence}"),
            Duration::from_secs(120),
            |v| v["data"]["state"] == "completed",
        )
        .await;
    assert_eq!(sent["data"]["content"], "Verse of the day (deployed)");
    api.expect("GET", "/api/recurring", None, 200).await;
    api.expect("DELETE", &recurring_path, None, 200).await;
    invoked.extend(
        [
            "RecurringCreateFunction",
            "RecurringUpdateFunction",
            "RecurringToggleFunction",
            "RecurringListFunction",
            "RecurringDeleteFunction",
            "DueSendsFunction",
        ]
        .map(String::from),
    );

    // Every other route, once: each function runs in its deployed form (a
    // 5xx here is a missing IAM action, a failed init or a crash).
    let catalog = Catalog::builtin().unwrap();
    // Logging out ends the session the sweep calls with, so it goes last.
    let mut routes: Vec<_> = catalog.routes().collect();
    routes.sort_by_key(|(f, _)| f.id == "AuthLogoutFunction");
    for (function, route) in routes {
        if !invoked.insert(function.id.clone()) {
            continue;
        }
        let path = route
            .path
            .split('/')
            .map(|segment| match segment {
                "{conversationId}" => conversation.clone(),
                "{messageId}" => message.clone(),
                s if s.starts_with('{') && s.ends_with("+}") => "status".to_owned(),
                s if s.starts_with('{') => NO_SUCH_ID.to_owned(),
                s => s.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = if route.method == "ANY" {
            "GET"
        } else {
            route.method.as_str()
        };
        let body = (method != "GET" && method != "DELETE").then(|| json!({}));
        let response = api.call(method, &path, body).await;
        let status = response.status().as_u16();
        let answered_by_us = response.headers().contains_key("x-request-id");
        let text = response.text().await.unwrap_or_default();
        assert!(
            answered_by_us,
            "{} {path} ({}) was not answered by the function: {status} {text}",
            route.method, function.id
        );
        let expected_5xx = function.id == "LaterWaveFunction" && status == 501;
        assert!(
            status < 500 || expected_5xx,
            "{} {path} ({}) answered {status}: {text}",
            route.method,
            function.id
        );
    }

    // The aggregator gave up on no batch of the stream (its OnFailure queue).
    let given_up = clients
        .sqs
        .receive_message()
        .queue_url(resources["CountsFailuresQueue"].as_str().unwrap())
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(
        given_up.messages().is_empty(),
        "the counts aggregator gave up on stream batches: {:?}",
        given_up.messages()
    );

    // Every function of the template was invoked, as its logs show.
    let names: BTreeMap<String, String> = catalog
        .functions
        .iter()
        .map(|f| (f.id.clone(), resources[&f.id].as_str().unwrap().to_owned()))
        .collect();
    let report = driver(
        &["report"],
        &json!({"endpoint": endpoint, "functions": names}),
    );
    let mut init_ms: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for function in &catalog.functions {
        let seen = &report[&function.id];
        assert!(
            seen["invocations"].as_u64().unwrap_or(0) > 0,
            "{} was never invoked: {seen}",
            function.id
        );
        let kind = if !function.queue_triggers.is_empty() {
            "queue consumer"
        } else if !function.stream_triggers.is_empty() {
            "stream consumer"
        } else if !function.schedules.is_empty() {
            "cron job"
        } else if function.id == "TelnyxWebhookFunction" {
            "webhook"
        } else {
            "HTTP route"
        };
        init_ms.entry(kind).or_default().extend(
            seen["initMs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64),
        );
    }
    // The figures the README and the closing note quote.
    println!(
        "deployed shape: stack created in {} s ({} resources), routes in {} s; send to last delivered receipt for {MEMBERS} recipients: {:.1} s",
        deployed["seconds"]["create"],
        resources.as_object().map_or(0, |r| r.len()),
        deployed["seconds"]["routes"],
        delivered_in.as_secs_f64()
    );
    for (kind, times) in &init_ms {
        let mut times = times.clone();
        times.sort_unstable();
        println!(
            "init ({kind}): {} cold starts, median {} ms, max {} ms",
            times.len(),
            times.get(times.len() / 2).copied().unwrap_or(0),
            times.last().copied().unwrap_or(0)
        );
    }
    drop(mappings);
    simulator.stop();
}
