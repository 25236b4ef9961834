//! Every Lambda function of template.yaml. Each function sets
//! `KOINONIA_FUNCTION` to its logical id, and the registry picks its handler;
//! one binary keeps builds and deploys fast however many routes there are.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_from_env().await
}
