//! `/api/admin/co-admins` — PRIMARY only.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use super::members::path_id;
use crate::app::App;
use crate::auth::{authenticate, passwords};
use crate::directory::admins::NewAdmin;
use crate::directory::admins::co_admins::{self, temporary_password};
use crate::domain::AdminId;
use crate::error::{ApiError, During};
use crate::http::HttpResult;
use crate::http::request::{Fields, json};
use crate::http::response;

/// `GET /api/admin/co-admins` — a bare array.
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    caller.require_primary()?;
    response::bare(
        StatusCode::OK,
        &co_admins::list(app.table.as_ref(), caller.church_id).await?,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoAdminBody {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

/// `POST /api/admin/co-admins` — answers the temporary password once.
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    caller.require_primary()?;
    let body: CoAdminBody = json(&req)?;
    let mut fields = Fields::default();
    let email = fields.email("email", body.email.as_deref());
    let first_name = fields.text("firstName", body.first_name.as_deref(), 1, 100);
    let last_name = fields.text("lastName", body.last_name.as_deref(), 1, 100);
    fields.finish()?;
    let (Some(email), Some(first_name), Some(last_name)) = (email, first_name, last_name) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    let temp = temporary_password();
    let for_hash = temp.clone();
    let password_hash = tokio::task::spawn_blocking(move || passwords::hash(&for_hash))
        .await
        .during("hash the temporary password")?
        .during("hash the temporary password")?;
    let admin = NewAdmin {
        email,
        password_hash,
        first_name,
        last_name,
    };
    let record =
        co_admins::create(app.table.as_ref(), caller.church_id, admin, app.clock.now()).await?;
    response::wrapped(
        StatusCode::CREATED,
        &json!({ "admin": record.view, "tempPassword": temp }),
    )
}

/// `DELETE /api/admin/co-admins/:adminId`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    caller.require_primary()?;
    let id = path_id(&req, "adminId", "co-admin", AdminId::parse)?;
    co_admins::delete(app.table.as_ref(), caller.church_id, id).await?;
    response::json(
        StatusCode::OK,
        &json!({ "success": true, "message": "Co-admin removed" }),
    )
}
