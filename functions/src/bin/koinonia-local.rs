//! The whole system as one local process, with embedded defaults:
//! `cargo run`, then `curl 127.0.0.1:3000/health`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use shared::telemetry::{exit_on_startup_error, init};

#[tokio::main]
async fn main() {
    init();
    let config = shared::config::Config::from_env().unwrap_or_else(|e| exit_on_startup_error(&e));
    if let Err(e) = shared::local::run(config).await {
        exit_on_startup_error(&e);
    }
}
