//! `GET /api/analytics/messages|branches|summary` — bare JSON, read from the
//! per-day, per-branch and per-church counters the pipeline keeps, never
//! from recipients.

use chrono::{Duration, NaiveDate};
use http::StatusCode;
use lambda_http::Request;
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::list::query_param;
use crate::http::response;
use crate::keys;
use crate::messaging::model::branch_stats_key;
use crate::ports::table::{Item, Query, SortCond, query_all};

fn n(item: Option<&Item>, attr: &str) -> i64 {
    item.and_then(|i| i.get(attr))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Delivered over what reached an end (delivered + failed), in percent, one decimal.
fn rate(delivered: i64, failed: i64) -> f64 {
    if delivered + failed == 0 {
        0.0
    } else {
        (delivered as f64 * 1000.0 / (delivered + failed) as f64).round() / 10.0
    }
}

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
    let first = today - Duration::days(days - 1);
    let query = Query::partition(keys::church(caller.church_id)).sort(SortCond::Between(
        format!("DAY#{first}"),
        format!("DAY#{today}"),
    ));
    let items = query_all(app.table.as_ref(), query)
        .await
        .map_err(ApiError::internal)?;
    let mut by_day = Vec::with_capacity(days as usize);
    let (mut messages, mut delivered, mut failed, mut sent) = (0, 0, 0, 0);
    for offset in 0..days {
        let date: NaiveDate = first + Duration::days(offset);
        let item = items
            .iter()
            .find(|i| i.get("sk").and_then(Value::as_str) == Some(&format!("DAY#{date}")));
        let (d, f, s) = (n(item, "delivered"), n(item, "failed"), n(item, "sent"));
        messages += n(item, "messages");
        delivered += d;
        failed += f;
        sent += s;
        by_day.push(json!({ "date": date.to_string(), "count": s, "delivered": d, "failed": f }));
    }
    response::bare(
        StatusCode::OK,
        &json!({
            "totalMessages": messages,
            "deliveredCount": delivered,
            "failedCount": failed,
            "pendingCount": (sent - delivered).max(0),
            "deliveryRate": rate(delivered, failed),
            "byDay": by_day,
        }),
    )
}

/// `GET /api/analytics/branches`
pub async fn branches(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let query = Query::partition(keys::church(caller.church_id))
        .sort(SortCond::BeginsWith(keys::BRANCH_PREFIX.into()));
    let branches = query_all(app.table.as_ref(), query)
        .await
        .map_err(ApiError::internal)?;
    let ids: Vec<crate::domain::BranchId> = branches
        .iter()
        .filter_map(|b| b.get("id").and_then(Value::as_str))
        .filter_map(|i| crate::domain::BranchId::parse(i).ok())
        .collect();
    let stat_keys: Vec<_> = ids
        .iter()
        .map(|b| branch_stats_key(caller.church_id, *b))
        .collect();
    let stats = app
        .table
        .get_many(&stat_keys)
        .await
        .map_err(ApiError::internal)?;
    let rows: Vec<Value> = branches
        .iter()
        .zip(stats)
        .map(|(b, s)| {
            let (d, f) = (n(s.as_ref(), "delivered"), n(s.as_ref(), "failed"));
            json!({
                "id": b.get("id"), "name": b.get("name"), "memberCount": n(Some(b), "memberCount"), "groupCount": n(Some(b), "groupCount"),
                "messageCount": n(s.as_ref(), "sent"), "deliveryRate": rate(d, f),
            })
        })
        .collect();
    response::bare(StatusCode::OK, &rows)
}

/// `GET /api/analytics/summary`
pub async fn summary(app: &App, req: Request) -> HttpResult {
    let caller = authenticate(app, &req).await?;
    let counters = app
        .table
        .get(&keys::church_counters(caller.church_id))
        .await
        .map_err(ApiError::internal)?;
    let query =
        Query::partition(keys::church(caller.church_id)).sort(SortCond::BeginsWith("DAY#".into()));
    let days = query_all(app.table.as_ref(), query)
        .await
        .map_err(ApiError::internal)?;
    let delivered: i64 = days.iter().map(|d| n(Some(d), "delivered")).sum();
    let failed: i64 = days.iter().map(|d| n(Some(d), "failed")).sum();
    response::bare(
        StatusCode::OK,
        &json!({
            "totalMessages": n(counters.as_ref(), "messagesCreated"),
            "averageDeliveryRate": rate(delivered, failed),
            "totalMembers": n(counters.as_ref(), "members"),
            "totalBranches": n(counters.as_ref(), "branches"),
            "totalGroups": n(counters.as_ref(), "groups"),
        }),
    )
}
