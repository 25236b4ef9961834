//! `/api/templates` and `/api/templates/:templateId` (bare JSON): the
//! built-in templates and the church's own. Each route parses, calls one
//! use case of `messaging::templates`, and answers.

use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde_json::json;

use crate::app::App;
use crate::auth::{Caller, authenticate};
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::request::json;
use crate::http::response;
use crate::messaging::templates::{TemplateBody, TemplateRef, Templates};

fn templates<'a>(app: &'a App, caller: &Caller) -> Templates<'a> {
    Templates {
        table: app.table.as_ref(),
        church: caller.church_id,
        now: app.clock.now(),
    }
}

/// The template a path names; a malformed id names none, so it is a 404.
fn template_ref(req: &Request) -> Result<TemplateRef, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("templateId"))
        .and_then(TemplateRef::parse)
        .ok_or(ApiError::NotFound { what: "template" })
}

/// `GET /api/templates`
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    response::bare(StatusCode::OK, &templates(app, &caller).list().await?)
}

/// `POST /api/templates`
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let fields = json::<TemplateBody>(&req)?.parse(true)?;
    let created = templates(app, &caller).create(fields).await?;
    response::bare(StatusCode::CREATED, &created)
}

/// `PUT /api/templates/:templateId`
pub async fn update(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let which = template_ref(&req)?;
    let fields = json::<TemplateBody>(&req)?.parse(false)?;
    let updated = templates(app, &caller).update(which, fields).await?;
    response::bare(StatusCode::OK, &updated)
}

/// `DELETE /api/templates/:templateId`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let which = template_ref(&req)?;
    templates(app, &caller).delete(which).await?;
    response::bare(StatusCode::OK, &json!({ "success": true }))
}
