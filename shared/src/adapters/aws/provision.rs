//! Creates resources shaped as template.yaml declares them, on an AWS-API
//! emulator: for the conformance tests, the bench and local experiments.
//! (On AWS, CloudFormation creates them from template.yaml.)

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::AwsClients;
use crate::ports::BackendError;

/// The single table: `pk`/`sk`, GSIs `gsi1` and `gsi2`, TTL on `ttl`, and a
/// stream of every write with the item before and after (`NEW_AND_OLD_IMAGES`).
pub async fn create_table(clients: &AwsClients, name: &str) -> Result<(), BackendError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    let gsi = |i: &str| -> Result<GlobalSecondaryIndex, BackendError> {
        Ok(GlobalSecondaryIndex::builder()
            .index_name(i)
            .key_schema(key(&format!("{i}pk"), KeyType::Hash)?)
            .key_schema(key(&format!("{i}sk"), KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()?)
    };
    let attributes = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]
        .into_iter()
        .map(attr)
        .collect::<Result<Vec<_>, _>>()?;
    clients
        .dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attributes))
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi("gsi1")?)
        .global_secondary_indexes(gsi("gsi2")?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()?,
        )
        .send()
        .await?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}

pub async fn queue_arn(clients: &AwsClients, url: &str) -> Result<String, BackendError> {
    clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| "the queue has no ARN".into())
}

/// A queue (visibility 30 s), optionally redriving to `dead_letters` (its URL)
/// after that many receives. Returns the queue's URL.
pub async fn create_queue(
    clients: &AwsClients,
    name: &str,
    dead_letters: Option<(&str, u32)>,
) -> Result<String, BackendError> {
    let mut request = clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "30");
    if let Some((dlq_url, receives)) = dead_letters {
        let policy = serde_json::json!({
            "deadLetterTargetArn": queue_arn(clients, dlq_url).await?,
            "maxReceiveCount": receives.to_string(),
        });
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    Ok(request
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned())
}

pub async fn create_bucket(clients: &AwsClients, name: &str) -> Result<(), BackendError> {
    clients.s3.create_bucket().bucket(name).send().await?;
    Ok(())
}

/// An event bus whose events are all forwarded to a new queue, so they can
/// be read back. Returns that queue's URL.
pub async fn create_observed_bus(clients: &AwsClients, name: &str) -> Result<String, BackendError> {
    clients
        .eventbridge
        .create_event_bus()
        .name(name)
        .send()
        .await?;
    let sink = create_queue(clients, &format!("{name}-sink"), None).await?;
    let rule = format!("{name}-all");
    clients
        .eventbridge
        .put_rule()
        .name(&rule)
        .event_bus_name(name)
        .event_pattern(serde_json::json!({ "source": [crate::ports::events::SOURCE] }).to_string())
        .send()
        .await?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("sink")
        .arn(queue_arn(clients, &sink).await?)
        .build()?;
    clients
        .eventbridge
        .put_targets()
        .rule(&rule)
        .event_bus_name(name)
        .targets(target)
        .send()
        .await?;
    Ok(sink)
}

/// Clients for an emulator at `endpoint`, with its dummy credentials.
pub async fn emulator_clients(endpoint: &str) -> AwsClients {
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "emulator");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await;
    AwsClients::from_sdk_config(&config, true)
}
