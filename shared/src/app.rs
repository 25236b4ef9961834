//! The composition root: every port, built once per process (a Lambda cold
//! start or the local stack) and borrowed by every handler.

use std::sync::Arc;

use crate::adapters::aws::secrets::TokenRefresh;
use crate::adapters::aws::{AwsClients, DynamoTable, EventBridgeEvents, S3Blobs, SqsQueue};
#[cfg(feature = "local")]
use crate::adapters::embedded::{
    EmbeddedBlobs, EmbeddedEvents, EmbeddedQueue, EmbeddedTable, QueueSpec, Store,
};
use crate::auth::TokenSigner;
use crate::config::{Config, ConfigError};
use crate::crypto::Vault;
use crate::error::ApiError;
use crate::ports::{Blobs, Carrier, Clock, Events, Queue, SystemClock, Table};
use crate::secrets::SecretUse;
use crate::telnyx::media::MediaClient;
use crate::telnyx::{TelnyxCarrier, WebhookVerifier};

/// Telnyx's API, when `TELNYX_BASE_URL` does not say otherwise.
pub const TELNYX_API: &str = "https://api.telnyx.com";

pub struct App {
    pub config: Arc<Config>,
    pub table: Arc<dyn Table>,
    pub fanout_queue: Arc<dyn Queue>,
    pub send_queue: Arc<dyn Queue>,
    /// Inbound MMS to copy into the bucket before Telnyx's links expire.
    pub media_queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn Blobs>,
    pub events: Arc<dyn Events>,
    pub clock: Arc<dyn Clock>,
    /// Signs and checks tokens; `None` in functions deployed without the token secret.
    pub tokens: Option<Arc<Tokens>>,
    /// Seals phones and EINs; `None` in functions deployed without `DATA_KEY`.
    pub vault: Option<Arc<Vault>>,
    /// The carrier; `None` in functions that do not send.
    pub carrier: Option<Arc<dyn Carrier>>,
    /// Checks Telnyx webhook signatures; `None` without `TELNYX_PUBLIC_KEY`.
    pub webhooks: Option<WebhookVerifier>,
    /// Fetches inbound MMS files from Telnyx's links.
    pub http: MediaClient,
    /// Writes EMF metrics to stdout (on Lambda, where CloudWatch reads them).
    pub emits_metrics: bool,
}

#[cfg(feature = "local")]
/// The embedded adapters' concrete types, which the local stack also needs
/// (to serve presigned URLs, run consumers, sweep TTLs).
#[derive(Clone)]
pub struct EmbeddedParts {
    pub store: Store,
    pub table: EmbeddedTable,
    pub fanout_queue: EmbeddedQueue,
    pub send_queue: EmbeddedQueue,
    pub media_queue: EmbeddedQueue,
    pub blobs: EmbeddedBlobs,
    pub events: EmbeddedEvents,
}

/// The pipeline's queues as template.yaml declares them.
#[cfg(feature = "local")]
pub struct QueueSpecs {
    pub fanout: QueueSpec,
    pub send: QueueSpec,
    pub media: QueueSpec,
}

#[cfg(feature = "local")]
impl EmbeddedParts {
    /// The queue specs come from the queue declarations in template.yaml, so
    /// the local stack has the same visibility timeouts and redrive policies.
    pub fn new(store: Store, queues: QueueSpecs, blobs: EmbeddedBlobs) -> Self {
        Self {
            table: EmbeddedTable::new(store.clone()),
            fanout_queue: EmbeddedQueue::new(store.clone(), queues.fanout),
            send_queue: EmbeddedQueue::new(store.clone(), queues.send),
            media_queue: EmbeddedQueue::new(store.clone(), queues.media),
            events: EmbeddedEvents::new(store.clone()),
            blobs,
            store,
        }
    }
}

impl App {
    /// Every port on AWS, for a Lambda function: the clients, then the
    /// secrets its environment names (read once, at init).
    pub async fn aws(mut config: Config) -> Result<Self, ConfigError> {
        let resources = config.require_aws()?.clone();
        let clients = AwsClients::load(config.aws_endpoint_url.as_deref()).await;
        crate::adapters::aws::secrets::resolve(&clients.secrets, &mut config).await?;
        let refresh = config
            .secret_arns
            .get(SecretUse::Tokens)
            .map(|arn| TokenRefresh::new(clients.secrets.clone(), arn));
        Self::on_aws(config, &clients, &resources, refresh)
    }

    /// Every port on AWS with these clients (tests point them at the emulator).
    pub fn with_aws_clients(
        config: Config,
        clients: &AwsClients,
        r: &crate::config::AwsResources,
    ) -> Result<Self, ConfigError> {
        Self::on_aws(config, clients, r, None)
    }

    fn on_aws(
        config: Config,
        clients: &AwsClients,
        r: &crate::config::AwsResources,
        refresh: Option<TokenRefresh>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Arc::new(DynamoTable::new(clients.dynamodb.clone(), &r.table_name)),
            fanout_queue: Arc::new(SqsQueue::new(clients.sqs.clone(), &r.fanout_queue_url)),
            send_queue: Arc::new(SqsQueue::new(clients.sqs.clone(), &r.send_queue_url)),
            media_queue: Arc::new(SqsQueue::new(clients.sqs.clone(), &r.media_queue_url)),
            blobs: Arc::new(S3Blobs::new(clients.s3.clone(), &r.media_bucket)),
            events: Arc::new(EventBridgeEvents::new(
                clients.eventbridge.clone(),
                &r.event_bus_name,
            )),
            clock: Arc::new(SystemClock),
            tokens: signer(&config.keys).map(|s| Arc::new(Tokens::new(s, refresh))),
            vault: vault(&config)?,
            carrier: telnyx(&config)?,
            webhooks: webhook_verifier(&config)?,
            http: media_client(config.telnyx_base_url.as_deref())?,
            emits_metrics: true,
            config: Arc::new(config),
        })
    }

    /// Every port on the embedded store, for the local stack and use-case tests.
    #[cfg(feature = "local")]
    pub fn embedded(config: Config, parts: &EmbeddedParts) -> Result<Self, ConfigError> {
        Ok(Self {
            table: Arc::new(parts.table.clone()),
            fanout_queue: Arc::new(parts.fanout_queue.clone()),
            send_queue: Arc::new(parts.send_queue.clone()),
            media_queue: Arc::new(parts.media_queue.clone()),
            blobs: Arc::new(parts.blobs.clone()),
            events: Arc::new(parts.events.clone()),
            clock: Arc::new(SystemClock),
            tokens: signer(&config.keys).map(|s| Arc::new(Tokens::new(s, None))),
            vault: vault(&config)?,
            carrier: telnyx(&config)?,
            webhooks: webhook_verifier(&config)?,
            http: media_client(config.telnyx_base_url.as_deref())?,
            emits_metrics: false,
            config: Arc::new(config),
        })
    }

    /// Fails (at init) when `function_id` needs a secret this process was
    /// not given, naming the variable that should name it.
    pub fn require(&self, function_id: &str, secrets: &[SecretUse]) -> Result<(), ConfigError> {
        for secret in secrets {
            let present = match secret {
                SecretUse::Tokens => self.tokens.is_some(),
                SecretUse::Data => self.vault.is_some(),
                SecretUse::Carrier => self.carrier.is_some() && self.webhooks.is_some(),
            };
            if !present {
                return Err(ConfigError::new(
                    secret.arn_var(),
                    format!(
                        "is missing: {function_id} needs the secret holding {}",
                        secret.fields().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The vault, or a 500 naming the missing secret in the logs.
    pub fn vault(&self) -> Result<&Vault, ApiError> {
        self.vault.as_deref().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "DATA_KEY or PHONE_HASH_KEY is not configured for this function"
            ))
        })
    }

    /// The carrier, or a 500 naming the missing secret in the logs.
    pub fn carrier(&self) -> Result<&dyn Carrier, ApiError> {
        self.carrier.as_deref().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "the carrier secret (CARRIER_SECRET_ARN) is not configured for this function"
            ))
        })
    }

    /// The token signer, or a 500 naming the missing secret in the logs.
    pub fn tokens(&self) -> Result<Arc<TokenSigner>, ApiError> {
        self.tokens.as_ref().map(|t| t.signer()).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "the token secret (TOKEN_SECRET_ARN) is not configured for this function"
            ))
        })
    }

    /// Re-reads secrets that are due (the token secret, every few minutes
    /// on Lambda); a failed read keeps the keys it had and is logged.
    pub async fn refresh_secrets(&self) {
        if let Some(tokens) = &self.tokens {
            tokens.refresh_if_due().await;
        }
    }
}

/// The real Telnyx client, when `TELNYX_API_KEY` is set.
fn telnyx(config: &Config) -> Result<Option<Arc<dyn Carrier>>, ConfigError> {
    let Some(key) = config.keys.telnyx_api_key.clone() else {
        return Ok(None);
    };
    let base = config.telnyx_base_url.as_deref().unwrap_or(TELNYX_API);
    let carrier = TelnyxCarrier::new(base, key)
        .map_err(|e| ConfigError::new("TELNYX_API_KEY", format!("no Telnyx client: {e}")))?;
    Ok(Some(Arc::new(carrier)))
}

fn webhook_verifier(config: &Config) -> Result<Option<WebhookVerifier>, ConfigError> {
    config
        .keys
        .telnyx_public_key
        .map(|k| {
            WebhookVerifier::from_bytes(&k)
                .map_err(|_| ConfigError::new("TELNYX_PUBLIC_KEY", "is not an Ed25519 public key"))
        })
        .transpose()
}

fn vault(config: &Config) -> Result<Option<Arc<Vault>>, ConfigError> {
    let (Some(data), Some(hash)) = (&config.keys.data_key, &config.keys.phone_hash_key) else {
        return Ok(None);
    };
    Vault::new(data.expose(), hash.expose())
        .map(|v| Some(Arc::new(v)))
        .map_err(|e| ConfigError::new("DATA_KEY", e.to_string()))
}

/// Signs with the current JWT secret, verifies with it and the accepted ones.
fn signer(keys: &crate::secrets::Keys) -> Option<TokenSigner> {
    let current = keys.jwt_secret.as_ref()?;
    let accepted = keys.jwt_accepted.iter().map(|s| s.expose());
    Some(TokenSigner::new(current.expose()).accepting(accepted))
}

/// The token signer, swapped for a new one when the token secret is re-read.
pub struct Tokens {
    signer: std::sync::RwLock<Arc<TokenSigner>>,
    refresh: Option<TokenRefresh>,
}

impl Tokens {
    pub fn new(signer: TokenSigner, refresh: Option<TokenRefresh>) -> Self {
        Self {
            signer: std::sync::RwLock::new(Arc::new(signer)),
            refresh,
        }
    }

    pub fn signer(&self) -> Arc<TokenSigner> {
        Arc::clone(&self.signer.read().unwrap_or_else(|p| p.into_inner()))
    }

    async fn refresh_if_due(&self) {
        let Some(read) = self.refresh.as_ref() else {
            return;
        };
        match read.due().await {
            None => {}
            Some(Ok(keys)) => {
                let Some(signer) = signer(&keys) else {
                    return;
                };
                *self.signer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(signer);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "re-reading the token secret failed; keeping the keys read before");
            }
        }
    }
}

/// The inbound-media client, trusting the carrier's API address besides public ones.
pub fn media_client(carrier_api: Option<&str>) -> Result<MediaClient, ConfigError> {
    crate::telnyx::media::client(carrier_api)
        .map_err(|e| ConfigError::new("TELNYX_BASE_URL", format!("no media client: {e}")))
}
