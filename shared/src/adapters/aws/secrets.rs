//! Reads the function's secrets from Secrets Manager, once per cold start.
//!
//! Each secret is a JSON object (`crate::secrets::SecretUse::fields`). The
//! token secret's AWSPREVIOUS version is read too, so tokens signed before a
//! rotation keep verifying until they expire.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use futures_util::future::try_join_all;
use serde_json::{Map, Value};

use crate::config::{Config, ConfigError};
use crate::secrets::{Keys, SecretUse};

const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";

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
    let mut keys = Keys::from_secret(secret, false, &current)?;
    if secret == SecretUse::Tokens
        && let Some(previous) = fields(client, secret, arn, PREVIOUS).await?
    {
        keys.jwt_previous = Keys::from_secret(secret, true, &previous)?.jwt_secret;
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
