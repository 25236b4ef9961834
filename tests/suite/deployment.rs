//! template.yaml, the Lambda binaries, `events/`, `infra/openapi.yaml` and
//! the registry describe one system; every sample event runs through its
//! function's handler.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use shared::adapters::aws::AwsClients;
use shared::app::App;
use shared::catalog::Catalog;
use shared::config::{AwsResources, Config};
use shared::http::handle;
use shared::registry::{Entry, Registry};

use shared::adapters::aws::provision::{create_bucket, create_queue, create_table};

use crate::support::{aws_clients, unique};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn catalog() -> &'static Catalog {
    Catalog::builtin().expect("template.yaml parses")
}

#[test]
fn every_function_has_a_handler_of_its_kind() {
    let registry = Registry::builtin();
    assert!(!catalog().functions.is_empty());
    for f in &catalog().functions {
        let entry = registry
            .get(&f.id)
            .unwrap_or_else(|| panic!("{} has no registry entry", f.id));
        if !f.routes.is_empty() {
            assert!(
                matches!(entry, Entry::Http(_)),
                "{} serves routes but is not an HTTP handler",
                f.id
            );
        }
        if !f.queue_triggers.is_empty() {
            assert!(
                matches!(entry, Entry::Sqs(_)),
                "{} is an SQS consumer",
                f.id
            );
        }
        if !f.stream_triggers.is_empty() {
            assert!(
                matches!(entry, Entry::Stream(_)),
                "{} is fed by the table's stream",
                f.id
            );
        }
    }
}

#[test]
fn every_function_runs_the_one_lambda_binary_as_itself() {
    assert!(!catalog().functions.is_empty());
    for f in &catalog().functions {
        assert_eq!(
            f.binary, "koinonia-lambda",
            "{} runs the one Lambda binary",
            f.id
        );
        assert_eq!(
            f.entry.as_deref(),
            Some(f.id.as_str()),
            "{} sets KOINONIA_FUNCTION to its own id",
            f.id
        );
    }
}

#[test]
fn every_function_has_a_sample_event() {
    assert!(!catalog().functions.is_empty());
    for f in &catalog().functions {
        let event = repo().join("events").join(format!("{}.json", f.id));
        assert!(event.exists(), "{} has no sample event {event:?}", f.id);
    }
}

#[test]
fn the_queues_have_dead_letter_queues() {
    for id in ["FanoutQueue", "SendQueue"] {
        let queue = catalog()
            .queue(id)
            .unwrap_or_else(|| panic!("template.yaml declares no {id}"));
        let (dlq, receives) = queue
            .redrive
            .clone()
            .unwrap_or_else(|| panic!("{id} has no redrive policy"));
        assert!(
            catalog().queue(&dlq).is_some(),
            "{id}'s dead-letter queue {dlq} is declared"
        );
        assert!(receives >= 3, "{id} gives up after {receives} receives");
    }
}

/// The operations of `infra/openapi.yaml`: `METHOD /path` → its statuses.
fn documented_operations() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let openapi: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("infra/openapi.yaml")).unwrap())
            .unwrap();
    let mut documented = std::collections::BTreeMap::new();
    for (path, methods) in openapi["paths"].as_mapping().unwrap() {
        for (method, operation) in methods.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            // Path-level `parameters` (and the like) are not operations.
            if !["get", "put", "post", "delete", "patch", "options"].contains(&method) {
                continue;
            }
            let statuses = operation["responses"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_owned())
                .collect();
            documented.insert(
                format!("{} {}", method.to_uppercase(), path.as_str().unwrap()),
                statuses,
            );
        }
    }
    documented
}

/// `METHOD /path` with every path parameter written `{}`: the frontend,
/// the template and the document name the same parameter differently
/// (`:messageId`, `{id}`).
fn shape(route: &str) -> String {
    route
        .split('/')
        .map(|part| {
            if part.starts_with(':') || (part.starts_with('{') && part.ends_with('}')) {
                "{}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The frontend's routes (`tests/fixtures/frontend/frontend-routes.txt`), shaped.
fn frontend_routes() -> BTreeSet<String> {
    crate::support::fixture_text("frontend/frontend-routes.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(shape)
        .collect()
}

#[test]
fn openapi_documents_every_route_of_the_registry_and_the_frontends_later_waves() {
    let documented: std::collections::BTreeMap<String, BTreeSet<String>> = documented_operations()
        .into_iter()
        .map(|(route, statuses)| (shape(&route), statuses))
        .collect();
    let registry = Registry::builtin();
    let mut built = BTreeSet::new();
    for f in &catalog().functions {
        if !matches!(registry.get(&f.id), Some(Entry::Http(_))) {
            continue;
        }
        for r in f.routes.iter().filter(|r| r.method != "ANY") {
            let route = shape(&format!("{} {}", r.method, r.path));
            assert!(
                documented.contains_key(&route),
                "{route} ({}) is not in infra/openapi.yaml",
                f.id
            );
            built.insert(route);
        }
    }
    // The frontend's routes no function builds yet: each documented as the
    // later wave's 501, and nothing else.
    let later: BTreeSet<String> = frontend_routes().difference(&built).cloned().collect();
    for route in &later {
        let statuses = documented.get(route).unwrap_or_else(|| {
            panic!("{route} (the frontend calls it) is not in infra/openapi.yaml")
        });
        assert_eq!(
            statuses,
            &BTreeSet::from(["501".to_owned()]),
            "{route} answers the later wave's 501"
        );
    }
    // Nothing documented that no route serves.
    let served: BTreeSet<String> = built.union(&later).cloned().collect();
    let listed: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(listed, served);
}

#[test]
fn openapi_lists_the_later_wave_routes_of_the_template() {
    let openapi: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("infra/openapi.yaml")).unwrap())
            .unwrap();
    // Later-wave routes (ANY method) are listed apart, as the spec has no ANY.
    let later: BTreeSet<String> = openapi["x-later-wave"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let any: BTreeSet<String> = catalog()
        .routes()
        .filter(|(_, r)| r.method == "ANY")
        .map(|(_, r)| r.path.clone())
        .collect();
    assert_eq!(later, any);
}

fn sample_request(function: &str) -> lambda_http::Request {
    let path = repo().join("events").join(format!("{function}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn body_json(body: lambda_http::Body) -> Value {
    match body {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap(),
        lambda_http::Body::Binary(b) => serde_json::from_slice(&b).unwrap(),
        _ => Value::Null,
    }
}

/// The deployed configuration, but pointing at the emulator's resources.
async fn aws_app(bucket_exists: bool) -> App {
    let clients: AwsClients = aws_clients().await;
    let resources = AwsResources {
        table_name: unique("kt"),
        fanout_queue_url: String::new(),
        send_queue_url: String::new(),
        media_queue_url: String::new(),
        media_bucket: unique("kb"),
        event_bus_name: unique("ke"),
    };
    create_table(&clients, &resources.table_name).await.unwrap();
    let fanout = create_queue(&clients, &unique("kq"), None).await.unwrap();
    if bucket_exists {
        create_bucket(&clients, &resources.media_bucket)
            .await
            .unwrap();
    }
    let resources = AwsResources {
        fanout_queue_url: fanout.clone(),
        send_queue_url: fanout.clone(),
        media_queue_url: fanout,
        ..resources
    };
    let config = Config::from_vars([
        (
            "KOINONIA_ALLOWED_ORIGINS".to_owned(),
            "https://app.koinonia.example".to_owned(),
        ),
        (
            "JWT_SECRET".to_owned(),
            "a-test-secret-of-at-least-32-bytes!".to_owned(),
        ),
        (
            "TELNYX_PUBLIC_KEY".to_owned(),
            "jrMBoswHlhhVx2W2Www72WU/xn4UMpjreslD0m2u0qs=".to_owned(),
        ),
        (
            "DATA_KEY".to_owned(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        (
            "PHONE_HASH_KEY".to_owned(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        // Never used by these samples; loopback all the same.
        ("TELNYX_API_KEY".to_owned(), "KEY-test".to_owned()),
        (
            "TELNYX_BASE_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
    ])
    .unwrap();
    App::with_aws_clients(config, &clients, &resources).unwrap()
}

/// What each sample event must get: the register and login samples go
/// first (in template order) and succeed; samples that need a token carry
/// none, so they must be refused with 401, not fail.
fn expected_status(function: &str) -> u16 {
    match function {
        "AuthRegisterFunction" => 201,
        "HealthFunction" | "CsrfTokenFunction" | "AuthLoginFunction" | "AuthLogoutFunction" => 200,
        "LaterWaveFunction" => 501,
        "AuthPasswordResetFunction" => 202,
        "AuthPasswordResetConfirmFunction" => 400,
        _ => 401,
    }
}

#[tokio::test]
async fn every_sample_event_runs_through_its_handler_on_aws_adapters() {
    let app = aws_app(true).await;
    let registry = Registry::builtin();
    for f in &catalog().functions {
        let Some(Entry::Http(handler)) = registry.get(&f.id) else {
            continue;
        };
        let response = handle(&app, sample_request(&f.id), handler).await;
        assert_eq!(
            response.status().as_u16(),
            expected_status(&f.id),
            "{}",
            f.id
        );
        if f.id == "HealthFunction" {
            let body = body_json(response.into_body());
            assert_eq!(body["checks"]["table"]["status"], "ok");
            assert_eq!(body["checks"]["queue"]["status"], "ok");
            assert_eq!(body["checks"]["blobs"]["status"], "ok");
        }
    }
}

/// The schedule samples are the envelope template.yaml's `Input` makes:
/// each runs through its job on the AWS adapters (the emulator's table,
/// its due index empty).
#[tokio::test]
async fn every_schedule_sample_event_runs_through_its_job_on_aws_adapters() {
    let app = aws_app(true).await;
    let registry = Registry::builtin();
    let mut ran = 0;
    for f in &catalog().functions {
        let Some(Entry::Schedule(handler)) = registry.get(&f.id) else {
            continue;
        };
        let text =
            std::fs::read_to_string(repo().join("events").join(format!("{}.json", f.id))).unwrap();
        let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.id));
        handler(&app, event)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.id));
        ran += 1;
    }
    assert!(ran > 0, "the template has a scheduled function");
}

#[tokio::test]
async fn health_detailed_is_503_naming_the_failed_dependency() {
    let app = aws_app(false).await;
    let handler = match Registry::builtin().get("HealthFunction") {
        Some(Entry::Http(h)) => h,
        _ => panic!("HealthFunction is an HTTP function"),
    };
    let response = handle(&app, sample_request("HealthFunction"), handler).await;
    assert_eq!(response.status(), 503);
    let body = body_json(response.into_body());
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["blobs"]["status"], "error");
    assert_eq!(body["checks"]["table"]["status"], "ok");
    assert_eq!(body["checks"]["queue"]["status"], "ok");
}

/// The first record's message id in an SQS sample event.
fn text_id(text: &str) -> Option<String> {
    let event: Value = serde_json::from_str(text).ok()?;
    event["Records"][0]["messageId"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn every_sqs_sample_event_runs_through_its_consumer_on_aws_adapters() {
    let app = aws_app(true).await;
    let registry = Registry::builtin();
    let mut ran = 0;
    for f in &catalog().functions {
        let Some(Entry::Sqs(handler)) = registry.get(&f.id) else {
            continue;
        };
        let text =
            std::fs::read_to_string(repo().join("events").join(format!("{}.json", f.id))).unwrap();
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.id));
        // The samples name a message that does not exist: a job for it is
        // dropped, not retried forever.
        let response = handler(&app, event)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.id));
        assert!(response.batch_item_failures.is_empty(), "{}", f.id);
        // An unreadable job is reported failed (so it ends in the DLQ), never dropped.
        let mut garbled: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(&text).unwrap();
        garbled.records[0].body = Some("not a job".into());
        let response = handler(&app, garbled)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.id));
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed.len(), 1, "{}", f.id);
        assert_eq!(Some(&failed[0]), text_id(&text).as_ref(), "{}", f.id);
        ran += 1;
    }
    assert_eq!(ran, 3, "the fan-out, send and media consumers");
}

/// The sample event of each function fed by the table's stream, parsed.
fn stream_samples() -> Vec<(&'static shared::catalog::FunctionDecl, Value)> {
    catalog()
        .functions
        .iter()
        .filter(|f| !f.stream_triggers.is_empty())
        .map(|f| {
            let path = repo().join("events").join(format!("{}.json", f.id));
            let text = std::fs::read_to_string(&path).unwrap();
            let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            (f, event)
        })
        .collect()
}

/// Lambda's DynamoDB event: each record a stream record of the table
/// (`NEW_AND_OLD_IMAGES`, images as the event names them), in stream
/// order, and one the mapping's FilterCriteria lets through.
#[test]
fn every_stream_sample_event_is_lambdas_dynamodb_event_passing_its_filter() {
    let samples = stream_samples();
    assert!(
        !samples.is_empty(),
        "the counts aggregator reads the stream"
    );
    for (f, event) in samples {
        let records = event["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no Records", f.id));
        assert!(!records.is_empty(), "{}", f.id);
        let mut last_sequence = 0u128;
        for record in records {
            assert_eq!(record["eventSource"], "aws:dynamodb", "{}", f.id);
            assert_eq!(record["eventVersion"], "1.1", "{}", f.id);
            assert!(
                record["eventSourceARN"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("arn:aws:dynamodb:") && a.contains("/stream/")),
                "{}: {record}",
                f.id
            );
            let stream = &record["dynamodb"];
            assert_eq!(stream["StreamViewType"], "NEW_AND_OLD_IMAGES", "{}", f.id);
            assert!(
                stream["ApproximateCreationDateTime"].is_number(),
                "{}",
                f.id
            );
            assert!(stream["SizeBytes"].is_u64(), "{}", f.id);
            let sequence: u128 = stream["SequenceNumber"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{}: SequenceNumber is digits", f.id));
            assert!(
                sequence > last_sequence,
                "{}: records in stream order",
                f.id
            );
            last_sequence = sequence;
            let (new, old) = (&stream["NewImage"], &stream["OldImage"]);
            match record["eventName"].as_str() {
                Some("INSERT") => assert!(new.is_object() && old.is_null(), "{}", f.id),
                Some("MODIFY") => assert!(new.is_object() && old.is_object(), "{}", f.id),
                Some("REMOVE") => assert!(new.is_null() && old.is_object(), "{}", f.id),
                other => panic!("{}: eventName {other:?}", f.id),
            }
            let image = if new.is_object() { new } else { old };
            for key in ["pk", "sk"] {
                assert_eq!(stream["Keys"][key], image[key], "{}: Keys.{key}", f.id);
            }
            for trigger in &f.stream_triggers {
                let passes = trigger.item_types.is_empty()
                    || [new, old].iter().any(|i| {
                        i["type"]["S"]
                            .as_str()
                            .is_some_and(|t| trigger.item_types.iter().any(|k| k == t))
                    });
                assert!(passes, "{}: the mapping's filter drops {record}", f.id);
            }
        }
    }
}

/// The aggregator's sample: a recipient inserted (queued), and one moving
/// from sending to sent, with what the aggregator counts them by.
#[test]
fn the_counts_aggregator_sample_inserts_a_recipient_and_moves_one_to_sent() {
    let (_, event) = stream_samples()
        .into_iter()
        .find(|(f, _)| f.id == "CountsAggregatorFunction")
        .expect("CountsAggregatorFunction's sample");
    let records = event["Records"].as_array().unwrap();
    let named = |name: &str| {
        records
            .iter()
            .find(|r| r["eventName"] == name)
            .unwrap_or_else(|| panic!("no {name} record"))
    };
    let inserted = &named("INSERT")["dynamodb"]["NewImage"];
    assert_eq!(inserted["status"]["S"], "queued");
    let modified = &named("MODIFY")["dynamodb"];
    assert_eq!(modified["OldImage"]["status"]["S"], "sending");
    assert_eq!(modified["NewImage"]["status"]["S"], "sent");
    for image in [inserted, &modified["OldImage"], &modified["NewImage"]] {
        assert_eq!(image["type"]["S"], "recipient");
        for attribute in ["churchId", "messageId", "memberId", "branchId", "updatedAt"] {
            assert!(image[attribute]["S"].is_string(), "{attribute}: {image}");
        }
        for attribute in ["version", "lane"] {
            assert!(image[attribute]["N"].is_string(), "{attribute}: {image}");
        }
        assert!(
            image["slot"]["N"]
                .as_str()
                .is_some_and(|n| n.parse::<u32>().is_ok()),
            "slot: {image}"
        );
        // Keyed as the code keys a recipient, with ids it parses.
        let id = |attribute: &str| image[attribute]["S"].as_str().unwrap();
        let lane = image["lane"]["N"].as_str().unwrap().parse().unwrap();
        let key = shared::keys::recipient(
            shared::domain::MessageId::parse(id("messageId")).unwrap(),
            lane,
            shared::domain::MemberId::parse(id("memberId")).unwrap(),
        );
        assert_eq!(image["pk"]["S"], key.pk.as_str());
        assert_eq!(image["sk"]["S"], key.sk.as_str());
        shared::domain::ChurchId::parse(id("churchId")).unwrap();
        shared::domain::BranchId::parse(id("branchId")).unwrap();
    }
}

#[tokio::test]
async fn every_stream_sample_event_runs_through_its_aggregator_on_aws_adapters() {
    let app = aws_app(true).await;
    let registry = Registry::builtin();
    let mut ran = 0;
    for (f, _) in stream_samples() {
        let Some(Entry::Stream(handler)) = registry.get(&f.id) else {
            panic!(
                "{} is fed by the table's stream but has no stream handler",
                f.id
            );
        };
        let text =
            std::fs::read_to_string(repo().join("events").join(format!("{}.json", f.id))).unwrap();
        // Lambda delivers a batch at least once: the same batch again is no error.
        for delivery in 1..=2 {
            let event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.id));
            handler(&app, event)
                .await
                .unwrap_or_else(|e| panic!("{} (delivery {delivery}): {e}", f.id));
        }
        ran += 1;
    }
    assert_eq!(ran, 1, "the counts aggregator");
}
