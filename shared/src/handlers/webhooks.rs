//! `POST /api/webhooks/telnyx/status` and `/mms`: Telnyx messaging events,
//! Ed25519-verified, each applied once, answered at once: delivery
//! receipts, and inbound texts (conversations and keywords).

use http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::json;

use crate::app::App;
use crate::conversations::inbound::{self, Deps, Inbound};
use crate::error::{ApiError, During};
use crate::http::HttpResult;
use crate::http::response;
use crate::messaging::model::Status;
use crate::messaging::receipts::{self, Applied};
use crate::metrics::{Count, Tally};
use crate::telnyx::events::{Event, Kind};
use crate::telnyx::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub async fn telnyx(app: &App, req: Request) -> HttpResult {
    let verifier = app.webhooks.as_ref().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("TELNYX_PUBLIC_KEY is not configured"))
    })?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body: &[u8] = match req.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if let Err(e) = verifier.verify(
        &header(TIMESTAMP_HEADER),
        &header(SIGNATURE_HEADER),
        body,
        app.clock.now(),
    ) {
        tracing::warn!(reason = %e, "webhook refused");
        return Err(ApiError::Unauthorized {
            code: "invalid_signature",
        });
    }
    let event = Event::parse(body)
        .map_err(|_| ApiError::field("body", "malformed_json", "the event is not JSON"))?;
    let metrics = Tally::default();
    metrics.count(Count::WebhookEvents);
    // A failed receipt's carrier code, for the failure metric.
    let mut failure_code = None;
    let applied = match event.kind() {
        Kind::Receipt(receipt) => {
            failure_code = receipt.error_code.clone();
            receipts::apply(app.table.as_ref(), &receipt, app.clock.now())
                .await
                .during("apply a delivery receipt")?
        }
        Kind::Received(payload) => {
            let Some(inbound) = Inbound::of(&event, payload) else {
                tracing::warn!("message.received without usable numbers; acknowledged");
                metrics.flush(app.emits_metrics);
                return response::json(StatusCode::OK, &json!({ "received": true }));
            };
            let deps = Deps {
                table: app.table.as_ref(),
                send_queue: app.send_queue.as_ref(),
                media_queue: app.media_queue.as_ref(),
                vault: app.vault()?,
            };
            inbound::receive(&deps, &inbound, app.clock.now())
                .await
                .map_err(|e| ApiError::internal_at("apply an inbound text", e))?;
            Applied::Ignored
        }
        // Other event types are acknowledged so Telnyx does not retry them.
        Kind::Other => Applied::Ignored,
    };
    match applied {
        Applied::Moved(Status::Delivered) => metrics.count(Count::SmsDelivered),
        Applied::Moved(Status::Failed) => {
            metrics.failed(Count::SmsFailed, failure_code.as_deref().unwrap_or("none"))
        }
        _ => {}
    }
    metrics.flush(app.emits_metrics);
    if applied == Applied::Unknown {
        // The sender has not recorded the carrier id yet: ask Telnyx to retry.
        return Err(ApiError::NotFound {
            what: "message for this receipt",
        });
    }
    response::json(StatusCode::OK, &json!({ "received": true }))
}
