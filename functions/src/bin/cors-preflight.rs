//! `OPTIONS /{proxy+}`: CORS preflight for every API route.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run("CorsPreflightFunction").await
}
