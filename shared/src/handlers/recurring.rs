//! `/api/recurring`, `/api/recurring/:id` and `/api/recurring/:id/toggle`
//! (bare JSON, as the frontend reads it).

use http::StatusCode;
use lambda_http::Request;
use serde_json::{Map, Value, json};

use super::members::path_id;
use crate::app::App;
use crate::auth::{Caller, authenticate};
use crate::domain::{MessageText, RecurringId};
use crate::error::{ApiError, FieldError};
use crate::http::HttpResult;
use crate::http::request::{Fields, json};
use crate::http::response;
use crate::messaging::send_request::{MAX_TARGET_IDS, audiences};
use crate::scheduling::recurrence::TimeOfDay;
use crate::scheduling::recurring::{self, Ctx, RecurringError, RecurringFields, Target};

fn ctx<'a>(app: &'a App, caller: &Caller) -> Ctx<'a> {
    Ctx {
        church: caller.church_id,
        table: app.table.as_ref(),
        now: app.clock.now(),
    }
}

/// A whole number in `range`, or a field error.
fn number(
    fields: &mut Fields,
    body: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Option<u32> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
        {
            Some(n) => Some(n),
            None => {
                fields.error(
                    name,
                    "invalid_number",
                    format!(
                        "{name} must be a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        },
    }
}

/// `targetIds` as a list, or as the JSON string of one (what answers show).
fn target_ids(value: Option<&Value>) -> Result<Vec<String>, ()> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).map_err(|_| ())?,
        Some(v) => v.clone(),
    };
    let Value::Array(items) = list else {
        return Err(());
    };
    items
        .into_iter()
        .map(|i| i.as_str().map(str::to_owned).ok_or(()))
        .collect()
}

fn parse(body: Map<String, Value>, creating: bool) -> Result<RecurringFields, ApiError> {
    let mut fields = Fields::default();
    let text = |name: &str| body.get(name).and_then(Value::as_str);
    let name = match (body.get("name"), creating) {
        (None, false) => None,
        _ => fields.text("name", text("name"), 1, 100),
    };
    let content = match (body.get("content"), creating) {
        (None, false) => None,
        _ => match MessageText::parse(text("content").unwrap_or("")) {
            Ok(c) => Some(c),
            Err(e) => {
                fields.error("content", "invalid_content", e.to_string());
                None
            }
        },
    };
    let target = match (body.get("targetType"), body.get("targetIds"), creating) {
        (None, None, false) => None,
        (kind, ids, _) => {
            let kind = kind.and_then(Value::as_str).unwrap_or("all").to_owned();
            match (kind.as_str(), target_ids(ids)) {
                ("all" | "branches" | "groups", Ok(ids)) if ids.len() <= MAX_TARGET_IDS => {
                    match audiences(&kind, &ids) {
                        Ok(audiences) => Some((
                            Target {
                                target_type: kind,
                                target_ids: ids,
                            },
                            audiences,
                        )),
                        Err(e) => {
                            fields.error(&e.field, &e.code, e.message);
                            None
                        }
                    }
                }
                ("all" | "branches" | "groups", _) => {
                    fields.error(
                        "targetIds",
                        "invalid_id",
                        "targetIds must be a list of branch or group ids",
                    );
                    None
                }
                _ => {
                    fields.error(
                        "targetType",
                        "invalid_target",
                        "targetType must be all, branches or groups",
                    );
                    None
                }
            }
        }
    };
    let frequency = match (body.get("frequency"), creating) {
        (None, false) => None,
        _ => match text("frequency") {
            Some(f @ ("daily" | "weekly" | "monthly")) => Some(f.to_owned()),
            _ => {
                fields.error(
                    "frequency",
                    "invalid_frequency",
                    "frequency must be daily, weekly or monthly",
                );
                None
            }
        },
    };
    let day_of_week = number(&mut fields, &body, "dayOfWeek", 0..=6);
    let day_of_month = number(&mut fields, &body, "dayOfMonth", 1..=31);
    let time_of_day = match (body.get("timeOfDay"), creating) {
        (None, false) => None,
        _ => match text("timeOfDay").and_then(TimeOfDay::parse) {
            Some(t) => Some(t),
            None => {
                fields.error(
                    "timeOfDay",
                    "invalid_time",
                    "timeOfDay must be a time of day, \"HH:MM\" from 00:00 to 23:59",
                );
                None
            }
        },
    };
    let is_active = fields.flag("isActive", body.get("isActive")).flatten();
    fields.finish()?;
    Ok(RecurringFields {
        name,
        content,
        target,
        frequency,
        day_of_week,
        day_of_month,
        time_of_day,
        is_active,
    })
}

impl From<RecurringError> for ApiError {
    fn from(e: RecurringError) -> Self {
        match e {
            RecurringError::NotFound => ApiError::NotFound {
                what: "recurring message",
            },
            RecurringError::UnknownTarget(_) => {
                ApiError::field("targetIds", "unknown_target", e.to_string())
            }
            RecurringError::MissingDay(field) => ApiError::field(field, "required", e.to_string()),
            RecurringError::InQuietHours { .. } => {
                ApiError::RefusedField(FieldError::new("timeOfDay", "quiet_hours", e.to_string()))
            }
            RecurringError::TooMany => ApiError::Unprocessable {
                code: "recurring_limit",
                message: e.to_string(),
            },
            RecurringError::Conflict => ApiError::Conflict {
                code: "edit_conflict",
                message: e.to_string(),
            },
            RecurringError::Table(e) => ApiError::internal_at("keep the recurring message", e),
        }
    }
}

fn id(req: &Request) -> Result<RecurringId, ApiError> {
    path_id(req, "id", "recurring message", RecurringId::parse)
}

/// `GET /api/recurring`
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    response::bare(StatusCode::OK, &recurring::list(&ctx(app, &caller)).await?)
}

/// `POST /api/recurring`
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let fields = parse(json(&req)?, true)?;
    response::bare(
        StatusCode::CREATED,
        &recurring::create(&ctx(app, &caller), fields).await?,
    )
}

/// `PUT /api/recurring/:id`
pub async fn update(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = id(&req)?;
    let fields = parse(json(&req)?, false)?;
    response::bare(
        StatusCode::OK,
        &recurring::update(&ctx(app, &caller), id, fields).await?,
    )
}

/// `PUT /api/recurring/:id/toggle` `{isActive}`
pub async fn toggle(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = id(&req)?;
    let body: Map<String, Value> = json(&req)?;
    let Some(active) = body.get("isActive").and_then(Value::as_bool) else {
        return Err(ApiError::field(
            "isActive",
            "required",
            "isActive must be true or false",
        ));
    };
    response::bare(
        StatusCode::OK,
        &recurring::toggle(&ctx(app, &caller), id, active).await?,
    )
}

/// `DELETE /api/recurring/:id`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    recurring::delete(&ctx(app, &caller), id(&req)?).await?;
    response::bare(StatusCode::OK, &json!({"success": true}))
}
