//! The directory's bench (issue: Churches, admins and the member directory):
//! p50/p95/p99 of `POST /api/members`, `GET /api/members` (page 1 and page
//! 40 of 25), the same deep page by cursor, and `GET /api/members?search=`,
//! in-process through the real request pipeline over a church of 10,000
//! members on the embedded store. Run with `./infra/bench.sh`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lambda_http::Request;
use serde_json::{Value, json};
use shared::app::App;
use shared::catalog::Catalog;
use shared::config::Config;
use shared::directory::members::Ctx;
use shared::http::HttpHandler;
use shared::local::{Incoming, LocalStack, to_event, to_request};
use shared::ports::table::Update;
use shared::ports::{Clock, FixedClock};
use shared::registry::{Entry, Registry};

const MEMBERS: usize = 10_000;

/// Builds the i-th request of a measured case.
type MakeRequest<'a> = Box<dyn Fn(usize) -> Request + 'a>;
const SAMPLES: usize = 400;

fn request(method: &str, path: &str, token: &str, body: Option<Value>) -> Request {
    let uri: http::Uri = path.parse().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let event = to_event(&Incoming {
        method: &method.parse().unwrap(),
        uri: &uri,
        headers: &headers,
        body: bytes::Bytes::from(body),
        peer: "127.0.0.1:1".parse().unwrap(),
        route_key: "bench",
        path_parameters: Default::default(),
        request_id: "bench",
    });
    to_request(&event).unwrap()
}

fn body_json(body: lambda_http::Body) -> Value {
    match body {
        lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap(),
        lambda_http::Body::Binary(b) => serde_json::from_slice(&b).unwrap(),
        _ => panic!("an empty answer"),
    }
}

fn handler(id: &str) -> HttpHandler {
    match Registry::builtin().get(id) {
        Some(Entry::Http(h)) => h,
        _ => panic!("{id} is not an HTTP function"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::local_in(dir.path(), &[]).unwrap();
    let stack = LocalStack::start(
        config.clone(),
        Catalog::builtin().unwrap(),
        &Registry::builtin(),
    )
    .await
    .unwrap();
    // The same app as the stack's, with a clock the bench moves a minute at a
    // time, so the per-church request limit (1,000 a minute on pro) holds.
    let clock = Arc::new(FixedClock::at(Utc::now()));
    let mut app = App::embedded(stack.app.config.as_ref().clone(), &stack.parts).unwrap();
    app.clock = clock.clone();

    let registered = shared::http::handle(
        &app,
        request("POST", "/api/auth/register", "", Some(json!({"email": "bench@grace.example", "password": "Shepherd123", "firstName": "B", "lastName": "N", "churchName": "Bench"}))),
        handler("AuthRegisterFunction"),
    )
    .await;
    let body = body_json(registered.into_body());
    let token = body["data"]["accessToken"].as_str().unwrap().to_owned();
    let church =
        shared::domain::ChurchId::parse(body["data"]["church"]["id"].as_str().unwrap()).unwrap();
    app.table
        .update(
            &shared::keys::church_profile(church),
            Update::default().set("plan", "pro"),
            None,
        )
        .await
        .unwrap();

    let mut csv = String::from("firstName,lastName,phone\n");
    let names = [
        "Ruth",
        "Naomi",
        "Boaz",
        "Leah",
        "Rachel",
        "Miriam",
        "Hannah",
        "Esther",
        "Lydia",
        "Priscilla",
    ];
    for i in 0..MEMBERS {
        csv.push_str(&format!(
            "{}{i},Member{},(2{:02}) 555-{:04}\n",
            names[i % names.len()],
            i % 97,
            2 + i / 9000,
            1000 + i % 9000
        ));
    }
    let seeded = Instant::now();
    let ctx = Ctx {
        church,
        table: app.table.as_ref(),
        vault: app.vault().unwrap(),
        now: clock.now(),
    };
    let report = shared::directory::import::import(&ctx, csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.imported, MEMBERS);
    let seed_time = seeded.elapsed();

    let list = handler("MembersListFunction");
    let request_page = request("GET", "/api/members?page=39&limit=25", &token, None);
    let first = body_json(
        shared::http::handle(&app, request_page, list)
            .await
            .into_body(),
    );
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();

    let mut rows = Vec::new();
    let cases: Vec<(&str, &str, MakeRequest)> = vec![
        (
            "POST /api/members",
            "MembersCreateFunction",
            Box::new(|i| {
                request(
                    "POST",
                    "/api/members",
                    &token,
                    Some(
                        json!({"firstName": format!("New{i}"), "lastName": "Member", "phone": format!("(204) 555-{:04}", 1000 + i)}),
                    ),
                )
            }),
        ),
        (
            "GET /api/members page 1 of 25",
            "MembersListFunction",
            Box::new(|_| request("GET", "/api/members?page=1&limit=25", &token, None)),
        ),
        (
            "GET /api/members page 40 of 25",
            "MembersListFunction",
            Box::new(|_| request("GET", "/api/members?page=40&limit=25", &token, None)),
        ),
        (
            "GET /api/members page 40 by cursor",
            "MembersListFunction",
            Box::new(|_| {
                request(
                    "GET",
                    &format!("/api/members?limit=25&cursor={cursor}"),
                    &token,
                    None,
                )
            }),
        ),
        (
            "GET /api/members?search=ru",
            "MembersListFunction",
            Box::new(|_| request("GET", "/api/members?search=ru&limit=25", &token, None)),
        ),
        (
            "GET /api/members?search=member4",
            "MembersListFunction",
            Box::new(|_| request("GET", "/api/members?search=member4&limit=25", &token, None)),
        ),
    ];
    for (name, function, make) in &cases {
        let h = handler(function);
        let mut times = Vec::with_capacity(SAMPLES);
        for i in 0..SAMPLES {
            if i % 500 == 0 {
                clock.advance(chrono::Duration::minutes(1));
            }
            let req = make(i);
            let started = Instant::now();
            let response = shared::http::handle(&app, req, h).await;
            times.push(started.elapsed());
            assert!(
                response.status().is_success(),
                "{name}: {}",
                response.status()
            );
        }
        clock.advance(chrono::Duration::minutes(1));
        times.sort();
        rows.push((name.to_string(), times));
    }
    stack.stop().await;

    println!(
        "machine: {} cores; church of {MEMBERS} members (seeded by CSV import in {:.1} s); {SAMPLES} samples each",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0),
        seed_time.as_secs_f64()
    );
    println!();
    println!("| request | p50 ms | p95 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for (name, times) in rows {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 0.99)
        );
    }
}
