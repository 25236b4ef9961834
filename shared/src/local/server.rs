//! The local stack's HTTP side: every route of template.yaml on one port,
//! each request passed through API Gateway's event shape to the same
//! handler the Lambda runs, plus presigned blob URLs at `/_blobs/`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as HyperBody;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::gateway::{Incoming, body_bytes, to_event, to_request};
use crate::adapters::embedded::blobs_route::BLOB_ROUTE_PREFIX;
use crate::adapters::embedded::{EmbeddedBlobs, PresignedRequest};
use crate::app::App;
use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::http::{HttpHandler, handle, pipeline};
use crate::registry::{Entry, Registry};
use crate::telnyx::simulator::SimulatorHandle;

/// API Gateway's payload limit.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

struct Target {
    route_key: String,
    handler: HttpHandler,
}

/// Routes of the template, matched as API Gateway matches them: exact
/// method before `ANY`, literal segments before `{params}` before `{proxy+}`.
pub struct Router {
    by_method: HashMap<String, matchit::Router<usize>>,
    targets: Vec<Target>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("function {0} serves HTTP routes but has no HTTP handler in the registry")]
    MissingHandler(String),
    #[error("route {route} cannot be served: {source}")]
    BadRoute {
        route: String,
        #[source]
        source: matchit::InsertError,
    },
}

/// API Gateway's `{proxy+}` is matchit's `{*proxy}`.
fn matchit_path(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

impl Router {
    pub fn new(catalog: &Catalog, registry: &Registry) -> Result<Self, RouterError> {
        let mut router = Self {
            by_method: HashMap::new(),
            targets: Vec::new(),
        };
        for (function, route) in catalog.routes() {
            let Some(Entry::Http(handler)) = registry.get(&function.id) else {
                return Err(RouterError::MissingHandler(function.id.clone()));
            };
            let route_key = format!("{} {}", route.method, route.path);
            router.targets.push(Target {
                route_key: route_key.clone(),
                handler,
            });
            router
                .by_method
                .entry(route.method.clone())
                .or_default()
                .insert(matchit_path(&route.path), router.targets.len() - 1)
                .map_err(|source| RouterError::BadRoute {
                    route: route_key,
                    source,
                })?;
        }
        Ok(router)
    }

    fn find(&self, method: &Method, path: &str) -> Found<'_> {
        // An `ANY` route takes the methods a browser or client sends to an
        // API; TRACE, CONNECT and invented methods reach no handler.
        let methods: &[&str] = if ANY_METHODS.contains(method) {
            &[method.as_str(), "ANY"]
        } else {
            &[]
        };
        let found = methods.iter().find_map(|m| {
            let matched = self.by_method.get(*m)?.at(path).ok()?;
            let params = matched
                .params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some((&self.targets[*matched.value], params))
        });
        match found {
            Some((target, params)) => Found::Route(target, params),
            None if self.by_method.values().any(|r| r.at(path).is_ok()) => Found::OtherMethod,
            None => Found::Nothing,
        }
    }
}

/// What `ANY` in template.yaml stands for on the local stack.
const ANY_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// The router's answer for a method and a path.
enum Found<'a> {
    Route(&'a Target, HashMap<String, String>),
    /// The path is routed, not for this method: 405.
    OtherMethod,
    /// No route has this path: 404.
    Nothing,
}

pub struct Server {
    pub app: Arc<App>,
    pub router: Router,
    pub blobs: EmbeddedBlobs,
    /// The built-in simulator, which `POST /sim/inbound` texts the church through.
    pub simulator: Option<SimulatorHandle>,
}

/// Local stack only: a person texts the church by hand (DESIGN.md, Configuration).
pub const SIM_INBOUND_ROUTE: &str = "/sim/inbound";

/// Local stack only: the platform buys a sending number for a church, as
/// its operator does in Telnyx's portal (README, "A sending number").
pub const SIM_NUMBERS_ROUTE: &str = "/sim/numbers";

/// The simulator's routes take JSON only, and from no page but a local
/// one: a page a developer visits elsewhere could otherwise post a form
/// (no preflight) and text their church as any phone.
fn local_json_only(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let header = |name: http::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let json = header(http::header::CONTENT_TYPE)
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let origin = header(http::header::ORIGIN);
    let local = origin.is_empty()
        || url::Url::parse(origin)
            .is_ok_and(|u| matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")));
    if !local {
        return Err(ApiError::Forbidden {
            code: "origin_not_local",
            message: format!("/sim/ routes take requests from local pages only, not {origin}"),
        });
    }
    Ok(())
}

impl Server {
    async fn answer(
        &self,
        req: hyper::Request<HyperBody>,
        peer: SocketAddr,
    ) -> hyper::Response<Full<Bytes>> {
        let request_id = ulid::Ulid::new().to_string();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return self.error(
                    ApiError::PayloadTooLarge {
                        limit_bytes: MAX_BODY_BYTES,
                    },
                    &request_id,
                );
            }
        };
        if let Some(key) = parts.uri.path().strip_prefix(BLOB_ROUTE_PREFIX) {
            let response = self
                .blobs
                .serve(PresignedRequest {
                    method: parts.method.clone(),
                    key: key.to_owned(),
                    query: parts.uri.query().map(str::to_owned),
                    content_type: parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body,
                })
                .await;
            let (head, bytes) = response.into_parts();
            return hyper::Response::from_parts(head, Full::new(bytes));
        }
        let simulated = match parts.uri.path() {
            SIM_INBOUND_ROUTE => Some(self.sim_inbound(&parts.method, &parts.headers, &body).await),
            SIM_NUMBERS_ROUTE => Some(self.sim_numbers(&parts.method, &parts.headers, &body)),
            _ => None,
        };
        if let Some(answer) = simulated {
            return answer.unwrap_or_else(|error| self.error(error, &request_id));
        }
        // The HTTP API's CorsConfiguration answers every preflight before a
        // route is matched; so does the local stack.
        if crate::http::cors::is_preflight(&parts.method, &parts.headers) {
            let origin = crate::http::cors::allowed_origin(&self.app.config, &parts.headers);
            let (head, body) = crate::http::cors::preflight(origin).into_parts();
            return hyper::Response::from_parts(head, Full::new(body_bytes(body)));
        }
        let (target, path_parameters) = match self.router.find(&parts.method, parts.uri.path()) {
            Found::Route(target, params) => (target, params),
            Found::OtherMethod => {
                let method = parts.method.to_string();
                return self.error(ApiError::MethodNotAllowed { method }, &request_id);
            }
            Found::Nothing => return self.error(ApiError::NotFound { what: "route" }, &request_id),
        };
        let event = to_event(&Incoming {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
            peer,
            route_key: &target.route_key,
            path_parameters,
            request_id: &request_id,
        });
        let request = match to_request(&event) {
            Ok(request) => request,
            Err(e) => return self.error(ApiError::internal(e), &request_id),
        };
        let response = handle(&self.app, request, target.handler).await;
        let (head, body) = response.into_parts();
        hyper::Response::from_parts(head, Full::new(body_bytes(body)))
    }

    /// A `/sim/` request: a POST of JSON from a local page, to a stack that
    /// runs the built-in simulator (any other is a 404); its body.
    fn simulator_post<T: serde::de::DeserializeOwned>(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<(&SimulatorHandle, T), ApiError> {
        let (Some(simulator), true) = (&self.simulator, method == Method::POST) else {
            return Err(ApiError::NotFound { what: "route" });
        };
        local_json_only(headers)?;
        let parsed = serde_json::from_slice(body).map_err(|_| {
            ApiError::field(
                "body",
                "malformed_json",
                "the body is not the JSON expected",
            )
        })?;
        Ok((simulator, parsed))
    }

    /// `POST /sim/inbound {from, to, text, mediaUrls?}`: the simulator
    /// delivers a signed message.received to this stack's webhook.
    async fn sim_inbound(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<hyper::Response<Full<Bytes>>, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Text {
            from: Option<String>,
            to: Option<String>,
            text: Option<String>,
            media_urls: Option<Vec<String>>,
        }
        let (simulator, text): (_, Text) = self.simulator_post(method, headers, body)?;
        let number = |field: &'static str, raw: Option<String>| {
            crate::domain::PhoneNumber::parse(raw.as_deref().unwrap_or(""))
                .map_err(|e| ApiError::field(field, "invalid_phone", e.to_string()))
        };
        let from = number("from", text.from)?;
        let to = number("to", text.to)?;
        let webhook = format!(
            "{}/api/webhooks/telnyx/status",
            self.app.config.public_url.as_deref().unwrap_or_default()
        );
        // `data:` links become files the simulator serves, as Telnyx
        // serves a member's MMS; other links pass through as given.
        let media_urls = text
            .media_urls
            .unwrap_or_default()
            .into_iter()
            .map(|url| match url.strip_prefix("data:") {
                Some(data) => hosted(simulator, data),
                None => Ok(url),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let delivered = simulator
            .deliver_inbound(
                &webhook,
                from.as_e164(),
                to.as_e164(),
                text.text.as_deref().unwrap_or(""),
                &media_urls,
            )
            .await;
        let body = serde_json::json!({ "success": true, "data": { "delivered": delivered } });
        Ok(json_response(http::StatusCode::ACCEPTED, &body))
    }

    /// `POST /sim/numbers {churchId, phoneNumber?}`: the simulated Telnyx
    /// account buys a number (this one, or a fresh one) for the church.
    fn sim_numbers(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<hyper::Response<Full<Bytes>>, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Purchase {
            church_id: Option<String>,
            phone_number: Option<String>,
        }
        let (simulator, purchase): (_, Purchase) = self.simulator_post(method, headers, body)?;
        let church = crate::domain::ChurchId::parse(purchase.church_id.as_deref().unwrap_or(""))
            .map_err(|e| ApiError::field("churchId", "invalid_id", e.to_string()))?
            .to_string();
        let number = match purchase.phone_number {
            Some(raw) => {
                let number = crate::domain::PhoneNumber::parse(&raw)
                    .map_err(|e| ApiError::field("phoneNumber", "invalid_phone", e.to_string()))?;
                simulator.assign_number(number.as_e164(), &church);
                number.as_e164().to_owned()
            }
            None => simulator.buy_number(&church),
        };
        let body = serde_json::json!({
            "success": true,
            "data": { "phoneNumber": number, "customerReference": church },
        });
        Ok(json_response(http::StatusCode::CREATED, &body))
    }

    fn error(&self, error: ApiError, request_id: &str) -> hyper::Response<Full<Bytes>> {
        let (head, body) = pipeline::render(&error, request_id).into_parts();
        hyper::Response::from_parts(head, Full::new(body_bytes(body)))
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = shutdown.changed() => return,
            };
            let server = Arc::clone(&self);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, std::convert::Infallible>(server.answer(req, peer).await) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
    }
}

fn json_response(
    status: http::StatusCode,
    body: &serde_json::Value,
) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A `data:<type>;base64,<bytes>` link, hosted by the simulator.
fn hosted(simulator: &SimulatorHandle, data: &str) -> Result<String, ApiError> {
    use base64::Engine;
    let invalid = || {
        ApiError::field(
            "mediaUrls",
            "invalid_media",
            "mediaUrls must be http(s) links or data:<type>;base64,<bytes>",
        )
    };
    let (head, payload) = data.split_once(',').ok_or_else(invalid)?;
    let content_type = head.strip_suffix(";base64").ok_or_else(invalid)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|_| invalid())?;
    Ok(simulator.host_media(content_type, Bytes::from(bytes)))
}
