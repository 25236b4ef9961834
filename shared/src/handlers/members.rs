//! `/api/members` and `/api/members/:memberId`.

use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::{Caller, authenticate};
use crate::directory::members::{self, Ctx, MemberPatch, NewMember};
use crate::domain::{BranchId, GroupId, MemberId, PhoneNumber};
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::list::{self, PageRequest, query_param};
use crate::http::request::{Fields, json};
use crate::http::response;

pub fn ctx<'a>(app: &'a App, caller: &Caller) -> Result<Ctx<'a>, ApiError> {
    Ok(Ctx {
        church: caller.church_id,
        table: app.table.as_ref(),
        vault: app.vault()?,
        now: app.clock.now(),
    })
}

/// A path id; a malformed one names nothing, so it is a 404 like any unknown id.
pub fn path_id<T>(
    req: &Request,
    name: &str,
    what: &'static str,
    parse: impl Fn(&str) -> Result<T, crate::domain::ids::IdError>,
) -> Result<T, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .and_then(|raw| parse(raw).ok())
        .ok_or(ApiError::NotFound { what })
}

fn phone(fields: &mut Fields, raw: Option<&str>) -> Option<PhoneNumber> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => {
            fields.error("phone", "required", "phone is required");
            None
        }
        Some(raw) => match PhoneNumber::parse(raw) {
            Ok(phone) => Some(phone),
            Err(e) => {
                fields.error("phone", "invalid_phone", e.to_string());
                None
            }
        },
    }
}

fn branch_id(fields: &mut Fields, raw: Option<&str>) -> Option<Option<BranchId>> {
    match raw.map(str::trim).filter(|b| !b.is_empty()) {
        None => Some(None),
        Some(raw) => match BranchId::parse(raw) {
            Ok(id) => Some(Some(id)),
            Err(e) => {
                fields.error("branchId", "invalid_id", e.to_string());
                None
            }
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberBody {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    opt_in_sms: Option<Value>,
    branch_id: Option<String>,
}

/// `POST /api/members`
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let body: MemberBody = json(&req)?;
    let mut fields = Fields::default();
    let first_name = fields.text("firstName", body.first_name.as_deref(), 1, 100);
    let last_name = fields.text("lastName", body.last_name.as_deref(), 1, 100);
    let phone = phone(&mut fields, body.phone.as_deref());
    let email = match body
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => Some(None),
        Some(e) => fields.email("email", Some(e)).map(Some),
    };
    let opt_in = fields.flag("optInSms", body.opt_in_sms.as_ref());
    let branch = branch_id(&mut fields, body.branch_id.as_deref());
    fields.finish()?;
    let (
        Some(first_name),
        Some(last_name),
        Some(phone),
        Some(email),
        Some(opt_in),
        Some(branch_id),
    ) = (first_name, last_name, phone, email, opt_in, branch)
    else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated fields missing"
        )));
    };
    let new = NewMember {
        first_name,
        last_name,
        phone,
        email,
        opt_in_sms: opt_in.unwrap_or(true),
        branch_id,
    };
    let member = members::create(&ctx(app, &caller)?, new).await?;
    response::wrapped(StatusCode::CREATED, &member)
}

/// `GET /api/members?page&limit&search&branchId&groupId&cursor`
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let page = PageRequest::from_query(&req)?;
    let ctx = ctx(app, &caller)?;
    let cursor = page.table_cursor(ctx.vault)?;
    let take = page.limit as usize;
    let result = if let Some(search) = query_param(&req, "search") {
        if search.chars().count() > 100 {
            return Err(ApiError::field(
                "search",
                "too_long",
                "search must be at most 100 characters",
            ));
        }
        members::search(&ctx, &search, take).await?
    } else if let Some(raw) = query_param(&req, "branchId") {
        let branch = BranchId::parse(&raw)
            .map_err(|e| ApiError::field("branchId", "invalid_id", e.to_string()))?;
        members::list_in(
            &ctx,
            members::Container::Branch(branch),
            page.skip(),
            take,
            cursor,
        )
        .await?
    } else if let Some(raw) = query_param(&req, "groupId") {
        let group = GroupId::parse(&raw)
            .map_err(|e| ApiError::field("groupId", "invalid_id", e.to_string()))?;
        members::list_in(
            &ctx,
            members::Container::Group(group),
            page.skip(),
            take,
            cursor,
        )
        .await?
    } else {
        members::list(&ctx, page.skip(), take, cursor).await?
    };
    let next = result.cursor.map(|c| ctx.vault.sign_cursor(&c));
    list::respond(&result.members, &page, result.total, next)
}

/// `PUT /api/members/:memberId`
pub async fn update(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "memberId", "member", MemberId::parse)?;
    let body: MemberBody = json(&req)?;
    let mut fields = Fields::default();
    let first_name = body
        .first_name
        .as_deref()
        .map(|v| fields.text("firstName", Some(v), 1, 100));
    let last_name = body
        .last_name
        .as_deref()
        .map(|v| fields.text("lastName", Some(v), 1, 100));
    let phone = body.phone.as_deref().map(|v| phone(&mut fields, Some(v)));
    let email = body.email.as_deref().map(|e| match e.trim() {
        "" => Some(None),
        e => fields.email("email", Some(e)).map(Some),
    });
    let opt_in = fields.flag("optInSms", body.opt_in_sms.as_ref());
    let branch = body
        .branch_id
        .as_deref()
        .map(|b| branch_id(&mut fields, Some(b)));
    fields.finish()?;
    let patch = MemberPatch {
        first_name: first_name.flatten(),
        last_name: last_name.flatten(),
        phone: phone.flatten(),
        email: email.flatten(),
        opt_in_sms: opt_in.flatten(),
        branch_id: branch.flatten(),
    };
    let member = members::update(&ctx(app, &caller)?, id, patch).await?;
    response::wrapped(StatusCode::OK, &member)
}

/// `DELETE /api/members/:memberId`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "memberId", "member", MemberId::parse)?;
    members::delete(&ctx(app, &caller)?, id).await?;
    response::wrapped(StatusCode::OK, &json!({ "id": id }))
}

/// `POST /api/members/import` — multipart field `file`, a CSV.
pub async fn import(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let upload = crate::http::request::multipart_file(&req, "file").await?;
    let report = crate::directory::import::import(&ctx(app, &caller)?, &upload.bytes)
        .await
        .map_err(|e| match e {
            crate::directory::import::ImportError::Directory(e) => ApiError::from(e),
            other => ApiError::field("file", "invalid_csv", other.to_string()),
        })?;
    response::wrapped(StatusCode::OK, &report)
}
