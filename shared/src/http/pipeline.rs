//! The path every API request takes, on Lambda and in the local stack alike:
//! request id → span → CORS preflight → handler → error envelope → CORS headers.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::Instrument;

use super::cors;
use crate::app::App;
use crate::error::ApiError;

pub type HttpResult = Result<Response<Body>, ApiError>;
pub type HttpFuture<'a> = Pin<Box<dyn Future<Output = HttpResult> + Send + 'a>>;
/// An API function: a plain async fn over `lambda_http::Request`, boxed.
pub type HttpHandler = for<'a> fn(&'a App, Request) -> HttpFuture<'a>;

/// Turns `async fn(&App, Request) -> HttpResult` into an [`HttpHandler`].
#[macro_export]
macro_rules! http_handler {
    ($f:path) => {{
        fn boxed<'a>(
            app: &'a $crate::app::App,
            req: $crate::http::Request,
        ) -> $crate::http::HttpFuture<'a> {
            Box::pin($f(app, req))
        }
        boxed as $crate::http::HttpHandler
    }};
}

/// API Gateway's request id (the local stack makes one the same way).
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
    .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

pub async fn handle(app: &App, req: Request, handler: HttpHandler) -> Response<Body> {
    let request_id = request_id(&req);
    let method = req.method().clone();
    let route = req.raw_http_path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, method = %method, route = %route, church_id = tracing::field::Empty);
    let origin = cors::allowed_origin(&app.config, req.headers()).cloned();
    async move {
        if cors::is_preflight(&method, req.headers()) {
            return cors::preflight(origin.as_ref());
        }
        let started = Instant::now();
        app.refresh_secrets().await;
        let mut response = match handler(app, req).await {
            Ok(response) => response,
            Err(error) => render(&error, &request_id),
        };
        cors::decorate(origin.as_ref(), &mut response);
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        response
    }
    .instrument(span)
    .await
}

/// Renders an error as API.md's envelope; logs causes of server-side errors.
pub fn render(error: &ApiError, request_id: &str) -> Response<Body> {
    if error.status().is_server_error() {
        let cause = match error {
            ApiError::Internal(e) => format!("{e:#}"),
            other => other.to_string(),
        };
        tracing::error!(code = error.code(), cause = %cause, "request failed");
    } else {
        tracing::info!(code = error.code(), "request refused");
    }
    let body = serde_json::to_vec(&error.body(request_id)).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = error.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let ApiError::TooManyRequests { retry_after_secs } = error
        && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if error.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
