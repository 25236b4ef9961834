//! `/api/groups`, `/api/groups/:groupId` and `/api/groups/:groupId/members[/:memberId]`.

use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use super::members::{ctx, path_id};
use crate::app::App;
use crate::auth::authenticate;
use crate::directory::groups::{self, GroupFields, parse_keyword};
use crate::directory::members as directory_members;
use crate::domain::{BranchId, GroupId, MemberId};
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::list::{self, PageRequest};
use crate::http::request::{Fields, json};
use crate::http::response;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    name: Option<String>,
    description: Option<String>,
    branch_id: Option<String>,
    keyword: Option<String>,
    welcome_message_enabled: Option<Value>,
    welcome_message_text: Option<String>,
}

fn parse(body: GroupBody, creating: bool) -> Result<GroupFields, ApiError> {
    let mut fields = Fields::default();
    let name = match (&body.name, creating) {
        (None, false) => None,
        (name, _) => fields.text("name", name.as_deref(), 1, 100),
    };
    let description = body
        .description
        .as_deref()
        .and_then(|d| fields.optional_text("description", Some(d), 1000));
    let branch_id = match body.branch_id.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(raw) => match BranchId::parse(raw) {
            Ok(id) => Some(Some(id)),
            Err(e) => {
                fields.error("branchId", "invalid_id", e.to_string());
                None
            }
        },
    };
    let keyword = match body.keyword.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(raw) => match parse_keyword(raw) {
            Ok(k) => Some(Some(k)),
            Err(why) => {
                fields.error("keyword", "invalid_keyword", why);
                None
            }
        },
    };
    let welcome_message_enabled = fields
        .flag(
            "welcomeMessageEnabled",
            body.welcome_message_enabled.as_ref(),
        )
        .flatten();
    let welcome_message_text = body
        .welcome_message_text
        .as_deref()
        .and_then(|t| fields.optional_text("welcomeMessageText", Some(t), 480));
    fields.finish()?;
    Ok(GroupFields {
        name,
        description,
        branch_id,
        keyword,
        welcome_message_enabled,
        welcome_message_text,
    })
}

/// `GET /api/groups`
pub async fn list(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    response::wrapped(StatusCode::OK, &groups::list(&ctx(app, &caller)?).await?)
}

/// `POST /api/groups`
pub async fn create(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let fields = parse(json(&req)?, true)?;
    response::wrapped(
        StatusCode::CREATED,
        &groups::create(&ctx(app, &caller)?, fields).await?,
    )
}

/// `PUT /api/groups/:groupId`
pub async fn update(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "groupId", "group", GroupId::parse)?;
    let fields = parse(json(&req)?, false)?;
    response::wrapped(
        StatusCode::OK,
        &groups::update(&ctx(app, &caller)?, id, fields).await?,
    )
}

/// `DELETE /api/groups/:groupId`
pub async fn delete(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "groupId", "group", GroupId::parse)?;
    let deleted = groups::delete(&ctx(app, &caller)?, app.fanout_queue.as_ref(), id).await?;
    response::wrapped(
        StatusCode::OK,
        &json!({
            "success": true,
            "id": id,
            "membershipsRemoved": deleted.memberships_removed,
            "membershipsPending": deleted.memberships_pending,
        }),
    )
}

/// `GET /api/groups/:groupId/members`
pub async fn members(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let id = path_id(&req, "groupId", "group", GroupId::parse)?;
    let page = PageRequest::from_query(&req)?;
    let ctx = ctx(app, &caller)?;
    groups::get(&ctx, id).await?;
    let cursor = page.table_cursor(ctx.vault)?;
    let result = directory_members::list_in(
        &ctx,
        directory_members::Container::Group(id),
        page.skip(),
        page.limit as usize,
        cursor,
    )
    .await?;
    let next = result.cursor.map(|c| ctx.vault.sign_cursor(&c));
    list::respond(&result.members, &page, result.total, next)
}

async fn membership(app: &App, req: Request, join: bool) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let group = path_id(&req, "groupId", "group", GroupId::parse)?;
    let member = path_id(&req, "memberId", "member", MemberId::parse)?;
    let ctx = ctx(app, &caller)?;
    let changed = groups::set_membership(&ctx, group, member, join).await?;
    if changed && join {
        // A group with a welcome greets each new member once.
        let record = crate::directory::members::get_record(&ctx, member).await?;
        let deps = crate::conversations::inbound::Deps {
            table: app.table.as_ref(),
            send_queue: app.send_queue.as_ref(),
            media_queue: app.media_queue.as_ref(),
            vault: ctx.vault,
        };
        if let Err(e) =
            crate::conversations::welcome::welcome_once(&deps, ctx.church, group, &record, ctx.now)
                .await
        {
            tracing::error!(church_id = %ctx.church, error = %e, "welcome message not queued");
        }
    }
    response::wrapped(
        StatusCode::OK,
        &json!({ "groupId": group, "memberId": member, "member": join, "changed": changed }),
    )
}

/// `PUT /api/groups/:groupId/members/:memberId` — idempotent.
pub async fn add_member(app: &App, req: Request) -> HttpResult {
    membership(app, req, true).await
}

/// `DELETE /api/groups/:groupId/members/:memberId` — idempotent.
pub async fn remove_member(app: &App, req: Request) -> HttpResult {
    membership(app, req, false).await
}
