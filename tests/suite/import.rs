//! CSV import over HTTP: counts, per-row errors, re-import, bad files.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use shared::ports::table::{Item, Update};

use crate::support::{Admin, Stack};

async fn upload(s: &Stack, admin: &Admin, csv: String) -> reqwest::Response {
    let part = Part::text(csv)
        .file_name("members.csv")
        .mime_str("text/csv")
        .unwrap();
    s.http
        .post(s.url("/api/members/import"))
        .bearer_auth(&admin.token)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

/// 10,000 rows; every 100th is bad in one of four ways.
fn big_csv() -> (String, usize) {
    let mut csv = String::from("First Name,last_name,Phone Number,Email\n");
    let mut bad = 0;
    for i in 0..10_000u32 {
        let phone = format!("(2{:02}) 555-{:04}", 2 + i / 10_000, 1000 + i % 9000);
        let phone = if i >= 9000 {
            format!("(203) 555-{:04}", i - 9000 + 1000)
        } else {
            phone
        };
        let row = match (i % 100 == 99, (i / 100) % 4) {
            (true, 0) => {
                bad += 1;
                format!("Member{i},Test,not a phone,\n")
            }
            (true, 1) => {
                bad += 1;
                format!(",Test,{phone},\n")
            }
            (true, 2) => {
                bad += 1;
                format!("Member{i},Test,{phone},not-an-email\n")
            }
            (true, _) => {
                bad += 1;
                format!("Member{i},Test,123,\n")
            }
            _ => format!("Member{i},Test,{phone},member{i}@example.org\n"),
        };
        csv.push_str(&row);
    }
    (csv, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_with_one_percent_bad_then_a_repeat_that_creates_nothing() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(church, Update::default().set("plan", "pro"))
        .await;
    let (csv, bad) = big_csv();
    assert_eq!(bad, 100);

    let first = upload(&s, &admin, csv.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let report: Value = first.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(report["imported"], 9_900);
    assert_eq!(report["failed"], 100);
    assert_eq!(report["skipped"], 0);
    let details = report["failedDetails"].as_array().unwrap();
    assert_eq!(details.len(), 100);
    assert_eq!(
        details[0]["line"], 101,
        "row 99 is line 101 (header is line 1)"
    );
    assert!(details[0]["error"].as_str().unwrap().contains("phone"));
    assert_eq!(details[0]["member"]["firstName"], "Member99");
    assert!(
        details
            .iter()
            .any(|d| d["error"].as_str().unwrap().contains("firstName"))
    );
    assert!(
        details
            .iter()
            .any(|d| d["error"].as_str().unwrap().contains("email"))
    );

    let listed: Value = s
        .call(&admin, "GET", "/api/members?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["pagination"]["total"], 9_900,
        "the counter matches what landed"
    );

    let again: Value = upload(&s, &admin, csv).await.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(
        (
            again["imported"].clone(),
            again["skipped"].clone(),
            again["failed"].clone()
        ),
        (0.into(), 9_900.into(), 100.into())
    );
    let listed: Value = s
        .call(&admin, "GET", "/api/members?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["pagination"]["total"], 9_900);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_limit_stops_an_import_part_way_with_reasons() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let mut csv = String::from("firstName,lastName,phone\n");
    for i in 0..520 {
        csv.push_str(&format!("M{i},Test,(202) 555-{:04}\n", 1000 + i));
    }
    let report: Value =
        upload(&s, &admin, csv).await.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(report["imported"], 500, "starter allows 500 members");
    assert_eq!(report["failed"], 20);
    assert!(
        report["failedDetails"][0]["error"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    s.stop().await;
}

/// A stack with a registered church admin, and everything in its table
/// before any import.
async fn before_an_import() -> (Stack, Admin, Vec<Item>) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = s.dump().await;
    (s, admin, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_without_a_phone_column_is_refused_and_writes_nothing() {
    let (s, admin, before) = before_an_import().await;
    let no_phone = upload(&s, &admin, "firstName,lastName\nA,B\n".into()).await;
    assert_eq!(no_phone.status(), StatusCode::BAD_REQUEST);
    let body: Value = no_phone.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "file");
    assert!(body["error"].as_str().unwrap().contains("phone"));
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_is_refused_as_unsupported_and_writes_nothing() {
    let (s, admin, before) = before_an_import().await;
    let json = s
        .call(
            &admin,
            "POST",
            "/api/members/import",
            Some(serde_json::json!({"file": "a,b"})),
        )
        .await;
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_a_file_field_is_refused_and_writes_nothing() {
    let (s, admin, before) = before_an_import().await;
    let wrong_field = s
        .http
        .post(s.url("/api/members/import"))
        .bearer_auth(&admin.token)
        .multipart(Form::new().text("notfile", "a"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_field.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.dump().await, before);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_over_10_000_rows_is_refused_and_writes_nothing() {
    let (s, admin, before) = before_an_import().await;
    let mut huge = String::from("firstName,lastName,phone\n");
    for i in 0..10_001 {
        huge.push_str(&format!("M{i},T,2025550100\n"));
    }
    assert_eq!(
        upload(&s, &admin, huge).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(s.dump().await, before);
    s.stop().await;
}
