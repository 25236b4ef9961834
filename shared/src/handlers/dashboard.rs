//! The dashboard's routes (`directory::dashboard`): the sending number,
//! the trial, the plan with usage, and onboarding progress. Routes of later
//! waves answer 501.

use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::authenticate;
use crate::directory::dashboard;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::response;

/// `W` and, for readers of the bare object, the same fields at the top level.
fn wrapped_and_bare(data: &impl Serialize) -> HttpResult {
    let data =
        serde_json::to_value(data).map_err(|e| ApiError::internal_at("encode the answer", e))?;
    let mut body = json!({ "success": true, "data": data });
    if let (Some(outer), Some(inner)) = (body.as_object_mut().cloned(), data.as_object()) {
        let mut merged = outer;
        for (k, v) in inner {
            merged.entry(k.clone()).or_insert_with(|| v.clone());
        }
        body = Value::Object(merged);
    }
    response::json(StatusCode::OK, &body)
}

/// `GET /api/numbers/current` — 404 when no number is linked.
pub async fn current_number(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let number = dashboard::current_number(app.table.as_ref(), caller.church_id).await?;
    response::wrapped(StatusCode::OK, &number)
}

/// `GET /api/billing/trial`
pub async fn trial(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let trial = dashboard::trial(app.table.as_ref(), caller.church_id, app.clock.now()).await?;
    wrapped_and_bare(&trial)
}

/// `GET /api/billing/plan`
pub async fn plan(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let plan = dashboard::plan(app.table.as_ref(), caller.church_id, app.clock.now()).await?;
    wrapped_and_bare(&plan)
}

/// `GET /api/onboarding/progress`
pub async fn onboarding_progress(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let tasks = dashboard::progress(app.table.as_ref(), caller.church_id).await?;
    response::wrapped(StatusCode::OK, &tasks)
}

/// `POST /api/onboarding/complete/:taskId`
pub async fn onboarding_complete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let task = req
        .path_parameters_ref()
        .and_then(|p| p.first("taskId"))
        .unwrap_or_default()
        .to_owned();
    let checklist =
        dashboard::complete(app.table.as_ref(), caller.church_id, &task, app.clock.now()).await?;
    response::wrapped(StatusCode::OK, &checklist)
}

/// Routes the frontend calls that a later wave builds.
pub async fn later_wave(_app: &App, req: Request) -> HttpResult {
    Err(ApiError::NotImplemented {
        route: format!("{} {}", req.method(), req.uri().path()),
    })
}
