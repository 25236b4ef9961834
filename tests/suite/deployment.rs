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
fn every_function_has_a_handler_a_binary_and_a_sample_event() {
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
        let binary = repo()
            .join("functions/src/bin")
            .join(format!("{}.rs", f.binary));
        let source = std::fs::read_to_string(&binary)
            .unwrap_or_else(|_| panic!("{} has no binary {binary:?}", f.id));
        assert!(
            source.contains(&format!("run(\"{}\")", f.id)),
            "{binary:?} must run {}",
            f.id
        );
        assert!(
            repo()
                .join("events")
                .join(format!("{}.json", f.binary))
                .exists(),
            "{} has no sample event",
            f.id
        );
    }
    // And no binary is left out of the template (the local stack is not a Lambda).
    for entry in std::fs::read_dir(repo().join("functions/src/bin")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let name = name.trim_end_matches(".rs");
        if name != "koinonia-local" {
            assert!(
                catalog().functions.iter().any(|f| f.binary == name),
                "binary {name} is not in template.yaml"
            );
        }
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

#[test]
fn openapi_lists_exactly_the_routes_of_the_template() {
    let openapi: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("infra/openapi.yaml")).unwrap())
            .unwrap();
    let mut documented = BTreeSet::new();
    for (path, methods) in openapi["paths"].as_mapping().unwrap() {
        for (method, _) in methods.as_mapping().unwrap() {
            documented.insert(format!(
                "{} {}",
                method.as_str().unwrap().to_uppercase(),
                path.as_str().unwrap()
            ));
        }
    }
    let declared: BTreeSet<String> = catalog()
        .routes()
        .map(|(_, r)| format!("{} {}", r.method, r.path))
        .filter(|r| r != "OPTIONS /{proxy+}")
        .collect();
    assert_eq!(documented, declared);
}

fn sample_request(binary: &str) -> lambda_http::Request {
    let text =
        std::fs::read_to_string(repo().join("events").join(format!("{binary}.json"))).unwrap();
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("events/{binary}.json: {e}"))
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
        send_queue_url: fanout,
        ..resources
    };
    let config = Config::from_vars([(
        "KOINONIA_ALLOWED_ORIGINS".to_owned(),
        "https://app.koinonia.example".to_owned(),
    )])
    .unwrap();
    App::with_aws_clients(config, &clients, &resources)
}

#[tokio::test]
async fn every_sample_event_runs_through_its_handler_on_aws_adapters() {
    let app = aws_app(true).await;
    let registry = Registry::builtin();
    for f in &catalog().functions {
        let Some(Entry::Http(handler)) = registry.get(&f.id) else {
            continue;
        };
        let response = handle(&app, sample_request(&f.binary), handler).await;
        assert!(
            response.status().is_success(),
            "{}: {}",
            f.binary,
            response.status()
        );
        if f.binary == "health" {
            let body = body_json(response.into_body());
            assert_eq!(body["checks"]["table"]["status"], "ok");
            assert_eq!(body["checks"]["queue"]["status"], "ok");
            assert_eq!(body["checks"]["blobs"]["status"], "ok");
        } else if f.binary == "cors-preflight" {
            assert_eq!(
                response.headers()["access-control-allow-origin"],
                "https://app.koinonia.example"
            );
        }
    }
}

#[tokio::test]
async fn health_detailed_is_503_naming_the_failed_dependency() {
    let app = aws_app(false).await;
    let handler = match Registry::builtin().get("HealthFunction") {
        Some(Entry::Http(h)) => h,
        _ => panic!("HealthFunction is an HTTP function"),
    };
    let response = handle(&app, sample_request("health"), handler).await;
    assert_eq!(response.status(), 503);
    let body = body_json(response.into_body());
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["blobs"]["status"], "error");
    assert_eq!(body["checks"]["table"]["status"], "ok");
    assert_eq!(body["checks"]["queue"]["status"], "ok");
}
