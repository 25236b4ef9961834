//! `GET /api/analytics/messages|branches|summary` — bare JSON, from the
//! per-day, per-branch and per-church counters (`messaging::analytics`).

use http::StatusCode;
use lambda_http::Request;

use crate::app::App;
use crate::auth::authenticate;
use crate::error::{ApiError, During};
use crate::http::HttpResult;
use crate::http::list::query_param;
use crate::http::response;
use crate::messaging::analytics;

/// `GET /api/analytics/messages?days=30`
pub async fn messages(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let days: i64 = match query_param(&req, "days") {
        None => 30,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::field("days", "invalid_number", "days must be 1 to 366"))?,
    };
    let today = app.clock.now().date_naive();
    let figures = analytics::messages(app.table.as_ref(), caller.church_id, today, days)
        .await
        .during("read the daily figures")?;
    response::bare(StatusCode::OK, &figures)
}

/// `GET /api/analytics/branches`
pub async fn branches(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let rows = analytics::branches(app.table.as_ref(), caller.church_id)
        .await
        .during("read the branches' figures")?;
    response::bare(StatusCode::OK, &rows)
}

/// `GET /api/analytics/summary`
pub async fn summary(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let summary = analytics::summary(app.table.as_ref(), caller.church_id)
        .await
        .during("read the church's figures")?;
    response::bare(StatusCode::OK, &summary)
}
