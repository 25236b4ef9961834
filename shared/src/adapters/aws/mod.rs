//! The AWS adapters: DynamoDB (and its stream), SQS, S3 and EventBridge, and
//! the secrets read at init.
//!
//! Clients are built once per Lambda cold start (`AwsClients::load`) and
//! cloned into each adapter; cloning an SDK client shares its connection pool.

mod attribute;
mod changes;
mod dynamodb;
mod eventbridge;
mod expression;
pub mod provision;
mod s3;
pub mod secrets;
mod sqs;

pub use changes::AwsChanges;
pub use dynamodb::DynamoTable;
pub use eventbridge::EventBridgeEvents;
pub use s3::S3Blobs;
pub use sqs::SqsQueue;

use aws_config::BehaviorVersion;

/// The SDK clients, built from one shared configuration.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Loads region and credentials the usual way (environment, profile,
    /// Lambda's role). `AWS_ENDPOINT_URL` is honoured by the SDK itself; S3
    /// then switches to path-style addressing, which emulators need.
    pub async fn load(endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self::from_sdk_config(&loader.load().await, endpoint_url.is_some())
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, path_style: bool) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            secrets: aws_sdk_secretsmanager::Client::new(config),
        }
    }
}

/// Exponential backoff with full jitter, for retrying unprocessed writes.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    use rand::Rng;
    let cap_ms = 50u64.saturating_mul(1 << attempt.min(6)).min(2_000);
    std::time::Duration::from_millis(rand::rng().random_range(0..=cap_ms))
}
