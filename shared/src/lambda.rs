//! The start of every Lambda binary: logs, configuration, clients (once per
//! cold start), then the runtime loop around the function's handler.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::app::App;
use crate::config::{Config, ConfigError};
use crate::registry::{Entry, Registry, secrets_of};
use crate::secrets::SECRET_VALUE_VARS;
use crate::telemetry::{exit_on_startup_error, init};

pub use lambda_runtime::Error;

/// The variable template.yaml sets to each function's logical id.
pub const FUNCTION_VAR: &str = "KOINONIA_FUNCTION";

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {FUNCTION_VAR} {0}")]
struct UnknownFunction(String);

/// Runs the function named by `KOINONIA_FUNCTION`.
pub async fn run_from_env() -> Result<(), Error> {
    match std::env::var(FUNCTION_VAR) {
        Ok(id) if !id.trim().is_empty() => run(id.trim()).await,
        _ => {
            init();
            exit_on_startup_error(&UnknownFunction(
                "is missing: set it to the function's logical id in template.yaml".into(),
            ))
        }
    }
}

/// Runs the function `function_id` of template.yaml until Lambda stops it.
/// Everything it needs is built and checked here, in the init phase: a bad
/// or missing value fails the init with one line naming it, never a
/// per-request 500 or a batch that fails until the dead-letter queue.
pub async fn run(function_id: &str) -> Result<(), Error> {
    init();
    let started = std::time::Instant::now();
    let entry = Registry::builtin().get(function_id).unwrap_or_else(|| {
        exit_on_startup_error(&UnknownFunction(format!(
            "names {function_id:?}, which is not in the registry"
        )))
    });
    let app = Arc::new(
        start(function_id, entry)
            .await
            .unwrap_or_else(|e| exit_on_startup_error(&e)),
    );
    tracing::info!(
        function = function_id,
        init_ms = started.elapsed().as_millis() as u64,
        "initialised"
    );
    match entry {
        Entry::Http(handler) => {
            lambda_http::run(service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(crate::http::handle(&app, req, handler).await) }
            }))
            .await
        }
        Entry::Sqs(handler) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                let app = Arc::clone(&app);
                async move { handler(&app, event.payload).await }
            }))
            .await
        }
        Entry::Stream(handler) => {
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
                    let app = Arc::clone(&app);
                    async move { handler(&app, event.payload).await }
                },
            ))
            .await
        }
        Entry::Schedule(handler) => {
            lambda_runtime::run(service_fn(
                move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
                    let app = Arc::clone(&app);
                    async move { handler(&app, event.payload).await }
                },
            ))
            .await
        }
    }
}

/// Configuration, clients and secrets for `function_id`, checked.
async fn start(function_id: &str, entry: Entry) -> Result<App, ConfigError> {
    if let Some(var) = SECRET_VALUE_VARS
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
    {
        return Err(ConfigError::new(
            var,
            "is set in the environment: on Lambda secret values live only in Secrets Manager (name the secret with TOKEN_SECRET_ARN, DATA_SECRET_ARN or CARRIER_SECRET_ARN)",
        ));
    }
    let app = App::aws(Config::from_env()?).await?;
    app.require(function_id, &secrets_of(function_id, entry))?;
    Ok(app)
}
