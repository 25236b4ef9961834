//! What the dashboard loads on every visit: the sending number, the trial,
//! the plan with usage, and onboarding progress — all from counters and the
//! profile, never a scan. Routes of later waves answer 501.

use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::{Caller, authenticate};
use crate::directory::plans;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::response;
use crate::keys;
use crate::ports::table::{Item, Key, Update};

pub const ONBOARDING_TASKS: [&str; 3] = ["create_branch", "add_members", "send_message"];

async fn church(app: &App, caller: &Caller) -> Result<(Item, Item), ApiError> {
    let keys = [
        keys::church_profile(caller.church_id),
        keys::church_counters(caller.church_id),
    ];
    let mut found = app
        .table
        .get_many(&keys)
        .await
        .map_err(ApiError::internal)?
        .into_iter();
    let (profile, counters) = (found.next().flatten(), found.next().flatten());
    Ok((
        profile.ok_or(ApiError::NotFound { what: "church" })?,
        counters.unwrap_or_default(),
    ))
}

fn count(counters: &Item, name: &str) -> i64 {
    counters.get(name).and_then(Value::as_i64).unwrap_or(0)
}

/// `W` and, for readers of the bare object, the same fields at the top level.
fn wrapped_and_bare(data: Value) -> HttpResult {
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
    let (profile, _) = church(app, &caller).await?;
    let number = profile
        .get("telnyxPhoneNumber")
        .and_then(Value::as_str)
        .ok_or(ApiError::NotFound {
            what: "sending number",
        })?;
    response::wrapped(
        StatusCode::OK,
        &json!({
            "id": format!("{}-number", caller.church_id),
            "telnyxPhoneNumber": number,
            "telnyxVerified": profile.get("telnyxVerified").and_then(Value::as_bool).unwrap_or(false),
            "telnyxPurchasedAt": profile.get("telnyxLinkedAt"),
        }),
    )
}

/// `GET /api/billing/trial`
pub async fn trial(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let (profile, _) = church(app, &caller).await?;
    let ends = profile
        .get("trialEndsAt")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let on_trial = profile.get("subscriptionStatus").and_then(Value::as_str) == Some("trialing");
    let days = ends
        .map(|e| (e - app.clock.now()).num_seconds())
        .unwrap_or(0)
        .max(0);
    wrapped_and_bare(
        json!({ "onTrial": on_trial && days > 0, "daysRemaining": (days + 86_399) / 86_400 }),
    )
}

/// `GET /api/billing/plan`
pub async fn plan(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let (profile, counters) = church(app, &caller).await?;
    let plan = plans::of_profile(Some(&profile));
    let month = app.clock.now().format("%Y-%m").to_string();
    let usage = json!({
        "branches": count(&counters, "branches"),
        "members": count(&counters, "members"),
        "messagesThisMonth": count(&counters, &format!("messages#{month}")),
        "coAdmins": count(&counters, "coAdmins"),
    });
    let left = |limit: Option<u32>, used: &str| match limit {
        Some(l) => json!((i64::from(l) - usage[used].as_i64().unwrap_or(0)).max(0)),
        None => Value::Null,
    };
    let remaining = json!({
        "branches": left(Some(plan.branches), "branches"),
        "members": left(plan.members, "members"),
        "messagesThisMonth": left(plan.messages_per_month, "messagesThisMonth"),
        "coAdmins": left(Some(plan.co_admins), "coAdmins"),
    });
    wrapped_and_bare(
        json!({ "plan": plan.name, "limits": plan, "usage": usage, "remaining": remaining }),
    )
}

fn onboarding_key(caller: &Caller, task: &str) -> Key {
    Key::new(keys::church(caller.church_id), format!("ONBOARDING#{task}"))
}

async fn progress(app: &App, caller: &Caller) -> Result<Vec<Value>, ApiError> {
    let (_, counters) = church(app, caller).await?;
    let derived = |task: &str| match task {
        "create_branch" => count(&counters, "branches") > 1,
        "add_members" => count(&counters, "members") > 0,
        _ => count(&counters, "messagesSent") > 0,
    };
    let keys: Vec<Key> = ONBOARDING_TASKS
        .iter()
        .map(|t| onboarding_key(caller, t))
        .collect();
    let marked = app
        .table
        .get_many(&keys)
        .await
        .map_err(ApiError::internal)?;
    Ok(ONBOARDING_TASKS
        .iter()
        .zip(marked)
        .map(|(task, mark)| {
            let at = mark.as_ref().and_then(|m| m.get("completedAt").cloned());
            json!({ "taskId": task, "completed": at.is_some() || derived(task), "completedAt": at })
        })
        .collect())
}

/// `GET /api/onboarding/progress`
pub async fn onboarding_progress(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    response::wrapped(StatusCode::OK, &progress(app, &caller).await?)
}

/// `POST /api/onboarding/complete/:taskId`
pub async fn onboarding_complete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let task = req
        .path_parameters_ref()
        .and_then(|p| p.first("taskId"))
        .map(str::to_owned)
        .unwrap_or_default();
    if !ONBOARDING_TASKS.contains(&task.as_str()) {
        return Err(ApiError::NotFound {
            what: "onboarding task",
        });
    }
    let update = Update::default().set_if_absent("completedAt", app.clock.now().to_rfc3339());
    app.table
        .update(&onboarding_key(&caller, &task), update, None)
        .await
        .map_err(ApiError::internal)?;
    let tasks = progress(app, &caller).await?;
    let done = tasks.iter().filter(|t| t["completed"] == true).count();
    response::wrapped(
        StatusCode::OK,
        &json!({
            "completedTasks": done,
            "remainingTasks": tasks.len() - done,
            "percentageComplete": done * 100 / tasks.len(),
            "isComplete": done == tasks.len(),
        }),
    )
}

/// Routes the frontend calls that a later wave builds.
pub async fn later_wave(_app: &App, req: Request) -> HttpResult {
    Err(ApiError::NotImplemented {
        route: format!("{} {}", req.method(), req.uri().path()),
    })
}
