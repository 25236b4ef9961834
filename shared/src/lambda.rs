//! The start of every Lambda binary: logs, configuration, clients (once per
//! cold start), then the runtime loop around the function's handler.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::app::App;
use crate::config::Config;
use crate::registry::{Entry, Registry};
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
pub async fn run(function_id: &str) -> Result<(), Error> {
    init();
    let config = Config::from_env().unwrap_or_else(|e| exit_on_startup_error(&e));
    let entry = Registry::builtin().get(function_id).unwrap_or_else(|| {
        exit_on_startup_error(&UnknownFunction(format!(
            "names {function_id:?}, which is not in the registry"
        )))
    });
    let app = Arc::new(
        App::aws(config)
            .await
            .unwrap_or_else(|e| exit_on_startup_error(&e)),
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
