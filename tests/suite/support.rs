//! Test worlds: every port on the embedded adapters (in a fresh data folder,
//! with a local stack serving presigned URLs) or on the AWS adapters (fresh
//! resources on the emulator), behind the same fields.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::adapters::aws::{AwsClients, DynamoTable, EventBridgeEvents, S3Blobs, SqsQueue};
use shared::adapters::embedded::{EmbeddedQueue, QueueSpec};
use shared::catalog::Catalog;
use shared::config::Config;
use shared::local::LocalStack;
use shared::ports::{Blobs, DomainEvent, Events, Queue, Table};
use shared::registry::Registry;

/// Receives before a message of the test queue moves to its dead-letter queue.
pub const MAX_RECEIVES: u32 = 2;

pub struct World {
    pub table: Arc<dyn Table>,
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
    Config::from_vars([
        ("KOINONIA_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("KOINONIA_DATA_DIR".to_owned(), dir.display().to_string()),
    ])
    .unwrap()
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
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(emulator_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    AwsClients::from_sdk_config(&config, true)
}

/// Resource names unique to one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub async fn create_table(clients: &AwsClients, name: &str) {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    let gsi = |i: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(i)
            .key_schema(key(&format!("{i}pk"), KeyType::Hash))
            .key_schema(key(&format!("{i}sk"), KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .unwrap()
    };
    clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]
                .map(attr)
                .to_vec(),
        ))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi("gsi1"))
        .global_secondary_indexes(gsi("gsi2"))
        .send()
        .await
        .unwrap();
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

pub async fn create_queue(
    clients: &AwsClients,
    name: &str,
    dead_letters: Option<(&str, u32)>,
) -> String {
    let mut request = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "30");
    if let Some((dlq_url, receives)) = dead_letters {
        let arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap();
        request = request.attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": receives.to_string() }).to_string(),
        );
    }
    request
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

pub async fn queue_arn(clients: &AwsClients, url: &str) -> String {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap()
}

pub async fn create_bucket(clients: &AwsClients, name: &str) {
    clients
        .s3
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap();
}

/// A bus whose events are all forwarded to a queue the test can read.
pub async fn create_bus(clients: &AwsClients, name: &str) -> String {
    clients
        .eventbridge
        .create_event_bus()
        .name(name)
        .send()
        .await
        .unwrap();
    let sink = create_queue(clients, &format!("{name}-sink"), None).await;
    let rule = format!("{name}-all");
    clients
        .eventbridge
        .put_rule()
        .name(&rule)
        .event_bus_name(name)
        .event_pattern(serde_json::json!({ "source": [shared::ports::events::SOURCE] }).to_string())
        .send()
        .await
        .unwrap();
    clients
        .eventbridge
        .put_targets()
        .rule(&rule)
        .event_bus_name(name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("sink")
                .arn(queue_arn(clients, &sink).await)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    sink
}

pub async fn aws() -> World {
    let clients = aws_clients().await;
    let (table, queue, bucket, bus) = (unique("kt"), unique("kq"), unique("kb"), unique("ke"));
    create_table(&clients, &table).await;
    let dlq_url = create_queue(&clients, &format!("{queue}-dlq"), None).await;
    let queue_url = create_queue(&clients, &queue, Some((&dlq_url, MAX_RECEIVES))).await;
    create_bucket(&clients, &bucket).await;
    let sink = create_bus(&clients, &bus).await;
    World {
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
