//! The Telnyx simulator on its own: `cargo run --bin telnyx-sim`.
//!
//! Environment: `TELNYX_SIM_ADDR` (default 127.0.0.1:4010), `TELNYX_API_KEY`
//! (default `KEY-local`), `TELNYX_SIM_SIGNING_KEY` (base64 32-byte seed;
//! generated when unset), `TELNYX_SIM_MPS` (per `from` number, default 1),
//! `TELNYX_SIM_LATENCY_MS` (`0`, `120` or `500-2000`),
//! `TELNYX_SIM_FAILURE_RATE` and `TELNYX_SIM_DELIVERY_FAILURE_RATE` (0–1).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use shared::telemetry::{exit_on_startup_error, init};
use shared::telnyx::simulator::{SimConfig, Simulator};

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0} {1}")]
struct Bad(&'static str, &'static str);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config() -> Result<(SimConfig, std::net::SocketAddr), Box<dyn std::error::Error>> {
    let addr = var("TELNYX_SIM_ADDR")
        .unwrap_or_else(|| "127.0.0.1:4010".into())
        .parse()
        .map_err(|_| {
            Bad(
                "TELNYX_SIM_ADDR",
                "must be an address such as 127.0.0.1:4010",
            )
        })?;
    let seed: [u8; 32] = match var("TELNYX_SIM_SIGNING_KEY") {
        Some(raw) => STANDARD
            .decode(raw.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(Bad(
                "TELNYX_SIM_SIGNING_KEY",
                "must be a base64 32-byte seed",
            ))?,
        None => rand::random(),
    };
    let settings = shared::config::Config::from_env()?.simulator;
    let config = SimConfig::new(
        &var("TELNYX_API_KEY").unwrap_or_else(|| "KEY-local".into()),
        seed,
    )
    .with_settings(&settings);
    Ok((config, addr))
}

#[tokio::main]
async fn main() {
    init();
    let (config, addr) = config().unwrap_or_else(|e| exit_on_startup_error(e.as_ref()));
    let simulator = Simulator::start(config, addr)
        .await
        .unwrap_or_else(|e| exit_on_startup_error(&e));
    println!(
        "Telnyx simulator on {} — webhooks verify with TELNYX_PUBLIC_KEY={}",
        simulator.base_url(),
        simulator.public_key_base64()
    );
    let _ = tokio::signal::ctrl_c().await;
}
