//! `GET /health`, `/health/live`, `/health/ready`, `/health/detailed`.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("HealthFunction").await
}
