//! Lists: `?page=&limit=` (strings, as the frontend sends them) with totals
//! from counters, plus the signed `nextCursor` / `?cursor=` extension.

use lambda_http::{Request, RequestExt};
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;
use crate::http::HttpResult;
use crate::http::response;

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
    /// A signed cursor from an earlier `nextCursor`.
    pub cursor: Option<String>,
}

/// A query-string value, if present and not blank.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn number(req: &Request, name: &str, default: u32, max: u32) -> Result<u32, ApiError> {
    match query_param(req, name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::field(
                name,
                "invalid_number",
                format!("{name} must be a whole number from 1 to {max}"),
            )),
        },
    }
}

/// A `?cursor=` this API did not issue (or issued for another listing, or
/// before a change of its shape).
pub fn invalid_cursor() -> ApiError {
    ApiError::field(
        "cursor",
        "invalid_cursor",
        "cursor is not one this API issued",
    )
}

impl PageRequest {
    pub fn from_query(req: &Request) -> Result<Self, ApiError> {
        Ok(Self {
            page: number(req, "page", 1, 100_000)?,
            limit: number(req, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
            cursor: query_param(req, "cursor"),
        })
    }

    /// The table cursor inside the signed `?cursor=`; a forged one is a 400.
    pub fn table_cursor(&self, vault: &crate::crypto::Vault) -> Result<Option<String>, ApiError> {
        self.cursor
            .as_deref()
            .map(|signed| vault.verify_cursor(signed).ok_or_else(invalid_cursor))
            .transpose()
    }

    /// Items before this page.
    pub fn skip(&self) -> usize {
        (self.page as usize - 1) * self.limit as usize
    }
}

/// `{"success": true, "data": [...], "pagination": {...}, "nextCursor"}`.
pub fn respond<T: Serialize>(
    items: &[T],
    request: &PageRequest,
    total: u64,
    next_cursor: Option<String>,
) -> HttpResult {
    let limit = u64::from(request.limit);
    response::json(
        http::StatusCode::OK,
        &json!({
            "success": true,
            "data": items,
            "pagination": { "page": request.page, "limit": request.limit, "total": total, "pages": total.div_ceil(limit) },
            "nextCursor": next_cursor,
        }),
    )
}
