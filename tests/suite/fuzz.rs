//! A bounded schemathesis run of `infra/openapi.yaml` against the local
//! stack: no 5xx, and every answer's status, content type, headers and body
//! as the document says.
//!
//! The church it runs as has an operator's `requestsPerMinute` far above any
//! plan's, so the run reaches the handlers instead of the request limit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::domain::ChurchId;
use shared::ports::table::Update;

use crate::support::{Admin, Stack, expect_status};

/// The whole run's budget: schemathesis stops generating when it is spent.
const MAX_TIME_SECS: u64 = 90;
/// Past this the run is stuck, not slow: the test stops it and fails.
const HARD_LIMIT: Duration = Duration::from_secs(240);
/// The sending number the church links (a number the simulator knows).
const CHURCH_NUMBER: &str = "+13125550100";
const MEMBER_PHONE: &str = "+13035550101";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `.venv/bin/schemathesis`, as `infra/test.sh` installs it (through
/// `infra/venv.sh`, from `infra/requirements-dev.txt`).
fn schemathesis() -> PathBuf {
    let bin = repo().join(".venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with ./infra/test.sh, which installs it from infra/requirements-dev.txt",
        bin.display()
    );
    bin
}

async fn created(s: &Stack, admin: &Admin, path: &str, body: Value) -> Value {
    let answer = s.call(admin, "POST", path, Some(body)).await;
    expect_status(answer, StatusCode::CREATED).await
}

/// Ids the run may use in paths, beside the ones it makes up (which are 404s).
struct Seeded {
    branch: String,
    member: String,
    group: String,
    template: String,
    recurring: String,
    message: String,
    conversation: String,
    thread_message: String,
}

/// A branch, a member in a group, a template, a recurring message and, when
/// the number links, a broadcast and a conversation the member started.
async fn seed(s: &Stack, admin: &Admin) -> Seeded {
    let branches = s.call(admin, "GET", "/api/branches", None).await;
    let branches = expect_status(branches, StatusCode::OK).await;
    let branch = branches["data"][0]["id"].as_str().unwrap().to_owned();
    let member = created(
        s,
        admin,
        "/api/members",
        json!({"firstName": "Lydia", "lastName": "Thyatira", "phone": MEMBER_PHONE, "branchId": branch}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = created(
        s,
        admin,
        "/api/groups",
        json!({"name": "Choir", "keyword": "CHOIR", "branchId": branch}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = s
        .call(
            admin,
            "PUT",
            &format!("/api/groups/{group}/members/{member}"),
            None,
        )
        .await;
    expect_status(joined, StatusCode::OK).await;
    let template = created(
        s,
        admin,
        "/api/templates",
        json!({"name": "Sunday", "content": "Service at 10am", "category": "service_reminder"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let recurring = created(
        s,
        admin,
        "/api/recurring",
        json!({"name": "Weekly", "content": "See you Sunday", "targetType": "all", "frequency": "weekly", "dayOfWeek": 0, "timeOfDay": "12:00"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The platform's Telnyx account bought the number for the church.
    s.own_number(admin, CHURCH_NUMBER);
    let linked = s
        .call(
            admin,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": CHURCH_NUMBER})),
        )
        .await;
    crate::support::expect_status(linked, StatusCode::OK).await;
    let message = s.send_to_all(admin, "Welcome to Grace Chapel").await;
    let (conversation, thread_message) = inbound_conversation(s, admin).await;
    Seeded {
        branch,
        member,
        group,
        template,
        recurring,
        message,
        conversation,
        thread_message,
    }
}

/// The member texts the church: a conversation and its message.
async fn inbound_conversation(s: &Stack, admin: &Admin) -> (String, String) {
    let event = json!({
        "data": {
            "event_type": "message.received", "id": ulid::Ulid::new().to_string(),
            "occurred_at": chrono::Utc::now().to_rfc3339(), "record_type": "event",
            "payload": {
                "id": "b0c4a1f0-0000-4000-8000-00000000f022", "direction": "inbound", "type": "SMS",
                "from": {"phone_number": MEMBER_PHONE}, "to": [{"phone_number": CHURCH_NUMBER}],
                "text": "Can I join the choir?", "media": [],
            },
        },
        "meta": {"attempt": 1, "delivered_to": s.url("/api/webhooks/telnyx/status")},
    });
    let received = s.post_signed(&event, 0).await;
    expect_status(received, StatusCode::OK).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = s
            .call(admin, "GET", "/api/messages/conversations", None)
            .await;
        let listed = expect_status(listed, StatusCode::OK).await;
        if let Some(id) = listed["data"][0]["id"].as_str() {
            let thread = crate::inbound::thread(s, admin, id).await;
            let message = thread["messages"][0]["id"].as_str().unwrap().to_owned();
            return (id.to_owned(), message);
        }
        assert!(
            Instant::now() < deadline,
            "the inbound text made no conversation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// schemathesis.toml: the seeded ids, used for about half of the path
/// parameters of their name (the rest are generated, and answer 404).
fn config(seeded: &Seeded) -> String {
    let dictionaries = vec![
        ("branchId", vec![seeded.branch.clone()]),
        ("memberId", vec![seeded.member.clone()]),
        ("groupId", vec![seeded.group.clone()]),
        ("templateId", vec![seeded.template.clone()]),
        ("id", vec![seeded.recurring.clone()]),
        ("conversationId", vec![seeded.conversation.clone()]),
        // A broadcast for /api/messages/{messageId}, a thread message for reactions.
        (
            "messageId",
            vec![seeded.message.clone(), seeded.thread_message.clone()],
        ),
    ];
    // The later waves' routes answer 501 by design, as documented; any other
    // 5xx still fails the check.
    let mut toml = String::from(
        "[checks.not_a_server_error]\nexpected-statuses = [\"1XX\", \"2XX\", \"3XX\", \"4XX\", \"501\"]\n\n",
    );
    for (name, values) in &dictionaries {
        let values: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
        toml.push_str(&format!(
            "[dictionaries.{name}]\nvalues = [{}]\n\n",
            values.join(", ")
        ));
    }
    toml.push_str("[parameters]\n");
    for (name, _) in &dictionaries {
        toml.push_str(&format!(
            "\"path.{name}\" = {{ dictionary = \"{name}\", probability = 0.5 }}\n"
        ));
    }
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_fuzz_of_the_openapi_finds_no_5xx_and_no_answer_off_the_document() {
    let schemathesis = schemathesis();
    let s = Stack::start().await;
    let admin = s.register("fuzz@grace.example").await;
    let church = ChurchId::parse(&admin.church_id).unwrap();
    // The operator's override: no plan's limit stops the run.
    s.change_profile(
        church,
        Update::default().set("requestsPerMinute", 1_000_000),
    )
    .await;
    let seeded = seed(&s, &admin).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, self::config(&seeded)).unwrap();
    let mut command = tokio::process::Command::new(schemathesis);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(repo().join("infra/openapi.yaml"))
        .args(["--url", &s.url("")])
        .args(["--header", &format!("Authorization: Bearer {}", admin.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        // Stateful testing needs links between operations, which the
        // document does not declare.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-time", &MAX_TIME_SECS.to_string()])
        .args(["--max-examples", "40"])
        // One worker: with two, CPython 3.11's parser can race when
        // Hypothesis reads a strategy's lambda source in both threads at
        // once ("AST constructor recursion depth mismatch"), an error of
        // the fuzzer's own, not of the API.
        .args(["--workers", "1"])
        .args(["--seed", "13"])
        .args(["--generation-database", "none"])
        // Logging out ends the session every other request authenticates
        // with: after it, the run would test only the 401.
        .args(["--exclude-path", "/api/auth/logout"])
        .current_dir(dir.path())
        .kill_on_drop(true);
    let started = Instant::now();
    let output = tokio::time::timeout(HARD_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran past {HARD_LIMIT:?}"))
        .expect("schemathesis starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("schemathesis took {:?}", started.elapsed());
    assert!(
        output.status.success(),
        "schemathesis found answers off the document ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Its summary, for the log of a passing run too.
    let summary: Vec<&str> = stdout.lines().rev().take(25).collect();
    for line in summary.iter().rev() {
        eprintln!("{line}");
    }
    s.stop().await;
}
