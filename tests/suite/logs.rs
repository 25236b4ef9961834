//! What the local stack writes to its log while an admin works: JSON lines
//! with request and church ids, and never a phone number, token or password.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_ids_but_no_phones_tokens_or_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_koinonia-local"))
        .env("KOINONIA_ADDR", "127.0.0.1:0")
        .env("KOINONIA_DATA_DIR", dir.path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let base = loop {
        let text = log.lock().unwrap().clone();
        if let Some(at) = text.find("local stack on http://") {
            let rest = &text[at + "local stack on ".len()..];
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the local stack did not start: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let http = reqwest::Client::new();
    let password = "Shepherd123";
    let registered: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "pastor@grace.example", "password": password, "firstName": "Ruth", "lastName": "Boaz", "churchName": "Grace"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = registered["data"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let church = registered["data"]["church"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let phones = ["(202) 555-0143", "202-555-0177"];
    for (i, phone) in phones.iter().enumerate() {
        http.post(format!("{base}/api/members"))
            .bearer_auth(&token)
            .json(&json!({"firstName": format!("M{i}"), "lastName": "T", "phone": phone}))
            .send()
            .await
            .unwrap();
    }
    // A duplicate and a bad phone: refusals are logged too.
    http.post(format!("{base}/api/members"))
        .bearer_auth(&token)
        .json(&json!({"firstName": "D", "lastName": "T", "phone": phones[0]}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/api/members"))
        .bearer_auth(&token)
        .json(&json!({"firstName": "B", "lastName": "T", "phone": "555-01"}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "pastor@grace.example", "password": "Wrong1234"}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/api/auth/refresh"))
        .header("cookie", format!("refreshToken={refresh}"))
        .header("origin", "http://localhost:5173")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let text = log.lock().unwrap().clone();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(lines.len() >= 8, "JSON log lines: {text}");
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "answered")
        .collect();
    assert!(answered.iter().all(|l| l["span"]["request_id"].is_string()));
    assert!(
        answered
            .iter()
            .any(|l| l["span"]["church_id"] == church.as_str()),
        "authenticated requests name the church"
    );
    for secret in [
        &token,
        &refresh,
        &password.to_owned(),
        &"Wrong1234".to_owned(),
    ] {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
    }
    for digits in [
        "2025550143",
        "5550143",
        "2025550177",
        "5550177",
        "555-0143",
        "555-0177",
    ] {
        assert!(
            !text.contains(digits),
            "phone digits {digits} reached the log"
        );
    }
}
