//! `GET /health`, `/health/live`, `/health/ready`, `/health/detailed`.
//!
//! `live` says the process answers; `ready` and `detailed` also reach every
//! dependency (table, queue, blobs), each within a deadline, and answer 503
//! when one fails — so a load balancer or an operator sees the broken part.

use std::time::{Duration, Instant};

use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::http::HttpResult;
use crate::http::response::json;

/// How long one dependency check may take before it counts as failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub status: &'static str,
    pub latency_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Checks {
    pub table: Check,
    pub queue: Check,
    pub blobs: Check,
}

impl Checks {
    fn all_ok(&self) -> bool {
        [&self.table, &self.queue, &self.blobs]
            .iter()
            .all(|c| c.status == "ok")
    }
}

async fn timed<E: std::fmt::Display>(
    name: &str,
    check: impl Future<Output = Result<(), E>>,
) -> Check {
    let started = Instant::now();
    let status = match tokio::time::timeout(CHECK_DEADLINE, check).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(dependency = name, error = %e, "health check failed");
            "error"
        }
        Err(_) => {
            tracing::warn!(dependency = name, "health check timed out");
            "timeout"
        }
    };
    Check {
        status,
        latency_ms: started.elapsed().as_millis() as u64,
    }
}

/// Reaches every dependency concurrently.
pub async fn check_dependencies(app: &App) -> Checks {
    let probe = crate::keys::health_probe();
    let (table, queue, blobs) = tokio::join!(
        timed("table", async { app.table.get(&probe).await.map(drop) }),
        timed("queue", async {
            app.fanout_queue.approximate_depth().await.map(drop)
        }),
        timed("blobs", app.blobs.ping()),
    );
    Checks {
        table,
        queue,
        blobs,
    }
}

fn ok_body(app: &App) -> serde_json::Value {
    json!({ "status": "ok", "timestamp": app.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) })
}

/// `/health` and `/health/live`.
pub async fn live(app: &App, _req: Request) -> HttpResult {
    json(StatusCode::OK, &ok_body(app))
}

/// `/health/ready`: 200 only when every dependency answers.
pub async fn ready(app: &App, _req: Request) -> HttpResult {
    let checks = check_dependencies(app).await;
    if checks.all_ok() {
        json(StatusCode::OK, &ok_body(app))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unavailable", "timestamp": ok_body(app)["timestamp"] }),
        )
    }
}

/// `/health/detailed`: each dependency's status and latency.
pub async fn detailed(app: &App, _req: Request) -> HttpResult {
    let checks = check_dependencies(app).await;
    let (status, code) = if checks.all_ok() {
        ("ok", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    json(
        code,
        &json!({ "status": status, "timestamp": ok_body(app)["timestamp"], "checks": checks }),
    )
}

/// One Lambda serves the four health routes; it dispatches on the path.
pub async fn route(app: &App, req: Request) -> HttpResult {
    match req.uri().path().trim_end_matches('/') {
        "/health/ready" => ready(app, req).await,
        "/health/detailed" => detailed(app, req).await,
        _ => live(app, req).await,
    }
}
