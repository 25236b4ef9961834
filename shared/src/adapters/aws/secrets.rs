//! Reads the function's secrets from Secrets Manager, once per cold start.
//!
//! Each secret is a JSON object (`crate::secrets::SecretUse::fields`). The
//! token secret's AWSPENDING and AWSPREVIOUS versions are read too, and warm
//! functions re-read it every few minutes ([`TokenRefresh`]): a rotation
//! (staged, then promoted) never makes a valid token fail anywhere.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use futures_util::future::try_join_all;
use serde_json::{Map, Value};

use crate::config::{Config, ConfigError};
use crate::secrets::{Keys, SecretUse};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";
const PREVIOUS: &str = "AWSPREVIOUS";

/// How stale a warm function's token keys may get (RUNBOOK.md, rotating the
/// JWT secret, waits this long between staging and promoting).
pub const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(300);

/// Fills `config.keys` from every secret whose ARN the environment names.
pub async fn resolve(
    client: &aws_sdk_secretsmanager::Client,
    config: &mut Config,
) -> Result<(), ConfigError> {
    let wanted: Vec<(SecretUse, String)> = SecretUse::ALL
        .into_iter()
        .filter_map(|s| config.secret_arns.get(s).map(|arn| (s, arn.to_owned())))
        .collect();
    let read = wanted
        .iter()
        .map(|(secret, arn)| keys_of(client, *secret, arn));
    for keys in try_join_all(read).await? {
        config.keys.merge(keys);
    }
    Ok(())
}

async fn keys_of(
    client: &aws_sdk_secretsmanager::Client,
    secret: SecretUse,
    arn: &str,
) -> Result<Keys, ConfigError> {
    let current = fields(client, secret, arn, CURRENT).await?.ok_or_else(|| {
        ConfigError::new(secret.arn_var(), "names a secret with no current version")
    })?;
    let mut keys = Keys::from_secret(secret, None, &current)?;
    if secret == SecretUse::Tokens {
        for stage in [PENDING, PREVIOUS] {
            if let Some(other) = fields(client, secret, arn, stage).await? {
                keys.jwt_accepted
                    .extend(Keys::from_secret(secret, Some(stage), &other)?.jwt_secret);
            }
        }
    }
    Ok(keys)
}

/// The JSON fields of one version; `None` when no version has that stage.
async fn fields(
    client: &aws_sdk_secretsmanager::Client,
    secret: SecretUse,
    arn: &str,
    stage: &str,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    let var = secret.arn_var();
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .version_stage(stage)
        .send()
        .await;
    let output = match answer {
        Ok(output) => output,
        Err(e) if stage != CURRENT && e.code() == Some("ResourceNotFoundException") => {
            return Ok(None);
        }
        Err(e) => {
            let e = e.into_service_error();
            return Err(ConfigError::new(
                var,
                format!(
                    "names a secret this function could not read ({stage}): {}: {}",
                    e.code().unwrap_or("error"),
                    e.message().unwrap_or("no message")
                ),
            ));
        }
    };
    let text = output.secret_string().ok_or_else(|| {
        ConfigError::new(
            var,
            "names a secret with no SecretString (a JSON object is expected)",
        )
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => Ok(Some(fields)),
        _ => Err(ConfigError::new(
            var,
            format!(
                "names a secret whose {stage} value is not a JSON object with {}",
                secret.fields().join(", ")
            ),
        )),
    }
}

/// Re-reads the token secret of a warm function at most every
/// [`TOKEN_REFRESH`], on the first request after that.
pub struct TokenRefresh {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    every: std::time::Duration,
    read_at: std::sync::Mutex<std::time::Instant>,
}

impl TokenRefresh {
    pub fn new(client: aws_sdk_secretsmanager::Client, arn: &str) -> Self {
        Self {
            client,
            arn: arn.to_owned(),
            every: TOKEN_REFRESH,
            read_at: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// Re-reads this often instead (tests).
    pub fn every(mut self, every: std::time::Duration) -> Self {
        self.every = every;
        self
    }

    /// The token keys as they are now, when the last read is older than
    /// `every` (one caller reads; the others go on meanwhile).
    pub async fn due(&self) -> Option<Result<Keys, ConfigError>> {
        {
            let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
            if read_at.elapsed() < self.every {
                return None;
            }
            *read_at = std::time::Instant::now();
        }
        Some(keys_of(&self.client, SecretUse::Tokens, &self.arn).await)
    }
}
