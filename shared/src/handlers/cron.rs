//! The cron job EventBridge fires every minute (`DueSendsFunction`):
//! recurring messages and scheduled sends whose time came.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;

use crate::app::App;
use crate::scheduling::cron::{Cron, CronError, RunReport};

/// One run at the app clock's now (the event's own time is when
/// EventBridge meant to fire, which a retried invocation repeats).
pub async fn due(
    app: &App,
    _event: EventBridgeEvent<serde_json::Value>,
) -> Result<RunReport, CronError> {
    Cron {
        table: app.table.as_ref(),
        fanout: app.fanout_queue.as_ref(),
        blobs: app.blobs.as_ref(),
        now: app.clock.now(),
    }
    .run()
    .await
}
