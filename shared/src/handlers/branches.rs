//! `/api/branches` and `/api/branches/:branchId`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use super::members::{ctx, path_id};
use crate::app::App;
use crate::auth::authenticate;
use crate::directory::branches::{self, BranchFields};
use crate::domain::BranchId;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::request::{Fields, json};
use crate::http::response;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BranchBody {
    name: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    description: Option<String>,
    is_active: Option<Value>,
}

fn parse(body: BranchBody, creating: bool) -> Result<BranchFields, ApiError> {
    let mut fields = Fields::default();
    let name = match (&body.name, creating) {
        (None, false) => None,
        (name, _) => fields.text("name", name.as_deref(), 1, 100),
    };
    let mut optional = |field: &str, value: Option<&str>, max: usize| {
        value.map(|v| fields.optional_text(field, Some(v), max))
    };
    let address = optional("address", body.address.as_deref(), 300);
    let phone = optional("phone", body.phone.as_deref(), 40);
    let description = optional("description", body.description.as_deref(), 1000);
    let is_active = fields.flag("isActive", body.is_active.as_ref()).flatten();
    fields.finish()?;
    Ok(BranchFields {
        name,
        address: address.flatten(),
        phone: phone.flatten(),
        description: description.flatten(),
        is_active,
    })
}

/// `GET /api/branches`
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let branches = branches::list(&ctx(app, &caller)?).await?;
    response::wrapped(StatusCode::OK, &branches)
}

/// `POST /api/branches`
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let fields = parse(json(&req)?, true)?;
    let branch = branches::create(&ctx(app, &caller)?, fields).await?;
    response::wrapped(StatusCode::CREATED, &branch)
}

/// `PUT /api/branches/:branchId`
pub async fn update(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "branchId", "branch", BranchId::parse)?;
    let fields = parse(json(&req)?, false)?;
    let branch = branches::update(&ctx(app, &caller)?, id, fields).await?;
    response::wrapped(StatusCode::OK, &branch)
}

/// `DELETE /api/branches/:branchId`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "branchId", "branch", BranchId::parse)?;
    let deleted = branches::delete(&ctx(app, &caller)?, app.fanout_queue.as_ref(), id).await?;
    let mut data = json!(deleted);
    data["success"] = json!(true);
    response::wrapped(StatusCode::OK, &data)
}
