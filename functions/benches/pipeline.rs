//! The broadcast pipeline's bench: `POST /api/messages/send` handler time
//! by audience size (the work must not grow with the audience), and the
//! whole path — fan-out, sender, the built-in simulator at 0 ms, signed
//! receipts — for a 10,000-member broadcast on the local stack.
//! Run with `./infra/bench.sh`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::catalog::Catalog;
use shared::config::Config;
use shared::directory::members::Ctx;
use shared::local::LocalStack;
use shared::ports::table::Update;
use shared::registry::Registry;

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_vars([
        ("KOINONIA_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "KOINONIA_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
    ])
    .unwrap();
    let stack = LocalStack::start(config, Catalog::builtin().unwrap(), &Registry::builtin())
        .await
        .unwrap();
    let base = stack.base_url();
    let http = reqwest::Client::new();
    let mut rows = Vec::new();

    for audience in [10usize, 1_000, 10_000] {
        let registered = http
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"email": format!("bench{audience}@grace.example"), "password": "Shepherd123", "firstName": "B", "lastName": "N", "churchName": "Bench"}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let token = registered["data"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let church =
            shared::domain::ChurchId::parse(registered["data"]["church"]["id"].as_str().unwrap())
                .unwrap();
        let app = &stack.app;
        app.table
            .update(
                &shared::keys::church_profile(church),
                Update::default().set("plan", "pro"),
                None,
            )
            .await
            .unwrap();
        call(
            &http,
            &base,
            &token,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": format!("+1202555{:04}", audience % 10_000)})),
        )
        .await;
        let mut csv = String::from("firstName,lastName,phone\n");
        for i in 0..audience {
            csv.push_str(&format!(
                "M{i},T,(2{:02}) 555-{:04}\n",
                3 + i / 9000,
                1000 + i % 9000
            ));
        }
        let ctx = Ctx {
            church,
            table: app.table.as_ref(),
            vault: app.vault().unwrap(),
            now: app.clock.now(),
        };
        assert_eq!(
            shared::directory::import::import(&ctx, csv.as_bytes())
                .await
                .unwrap()
                .imported,
            audience
        );

        let started = Instant::now();
        let sent = call(
            &http,
            &base,
            &token,
            "POST",
            "/api/messages/send",
            Some(json!({"content": "Hi {firstName}", "targetType": "all"})),
        )
        .await;
        let handler = started.elapsed();
        let id = sent["data"]["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(900);
        let counts = loop {
            let message = call(
                &http,
                &base,
                &token,
                "GET",
                &format!("/api/messages/{id}"),
                None,
            )
            .await;
            if message["data"]["status"] == "completed" {
                break message["data"]["counts"].clone();
            }
            assert!(Instant::now() < deadline, "did not complete: {message}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let total = started.elapsed();
        let delivered = counts["delivered"].as_u64().unwrap();
        assert_eq!(delivered as usize, audience);
        rows.push((audience, handler, total, delivered));
    }
    let ledger = stack.simulator.as_ref().unwrap().ledger().len();
    stack.stop().await;

    println!(
        "machine: {} cores; local stack, embedded store, built-in simulator at 0 ms; one consumer poller per queue",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );
    println!();
    println!(
        "| audience | POST /api/messages/send over HTTP | send → every recipient delivered | SMS/min end to end |"
    );
    println!("|---:|---:|---:|---:|");
    for (audience, handler, total, delivered) in rows {
        println!(
            "| {audience} | {:.2} ms | {:.1} s | {:.0} |",
            handler.as_secs_f64() * 1000.0,
            total.as_secs_f64(),
            delivered as f64 / total.as_secs_f64() * 60.0
        );
    }
    println!();
    println!(
        "simulator ledger: {ledger} SMS accepted for {} recipients",
        10 + 1_000 + 10_000
    );
}
