//! Structured JSON logs. Spans carry the request id and church id; fields
//! never carry phone numbers, tokens or message bodies (domain types print
//! masked, secrets not at all).

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; `RUST_LOG` overrides the level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}

/// Prints a start-up failure as one line and exits: operators see which
/// variable is wrong, not a backtrace.
pub fn exit_on_startup_error(error: &dyn std::error::Error) -> ! {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    eprintln!("koinonia: {message}");
    std::process::exit(2)
}
