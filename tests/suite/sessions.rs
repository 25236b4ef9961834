//! Sessions under pressure, over HTTP on the local stack: tabs refreshing at
//! once, the refresh cookie from a foreign Origin, parallel password
//! guesses, a removed co-admin's refresh, who may set `sendingMps`.

use std::sync::Arc;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared::ports::ShiftedClock;

use crate::support::{Admin, Stack};

const PASSWORD: &str = "Shepherd123";
const FRONTEND: &str = "http://localhost:5173";

async fn register(s: &Stack, email: &str) -> Value {
    let body = json!({"email": email, "password": PASSWORD, "firstName": "Ruth", "lastName": "Boaz", "churchName": "Grace Chapel"});
    let response = s.post("/api/auth/register", &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap().to_owned()
}

/// A refresh with `refresh` as the cookie, from the frontend's origin.
async fn refresh(s: &Stack, refresh: &str) -> Response {
    refresh_from(s, refresh, &[("origin", FRONTEND.into())]).await
}

async fn refresh_from(s: &Stack, refresh: &str, headers: &[(&str, String)]) -> Response {
    let mut all = vec![("cookie", format!("refreshToken={refresh}"))];
    all.extend(headers.iter().cloned());
    s.post_with("/api/auth/refresh", &json!({}), &all).await
}

async fn code_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (
        status,
        response.json::<Value>().await.unwrap()["code"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tabs_refreshing_at_once_with_one_token_all_get_the_same_successor() {
    let s = Stack::start().await;
    let first = text(&register(&s, "pastor@grace.example").await["data"]["refreshToken"]);
    let answers = futures_util::future::join_all((0..4).map(|_| refresh(&s, &first))).await;
    let mut successors = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::OK, "every tab refreshes");
        let body: Value = answer.json().await.unwrap();
        successors.push(text(&body["data"]["refreshToken"]));
    }
    assert!(
        successors
            .iter()
            .all(|t| *t == successors[0] && *t != first),
        "one successor for every tab"
    );
    // The family lives on: the successor rotates as any token does.
    assert_eq!(refresh(&s, &successors[0]).await.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_replayed_after_the_grace_window_ends_the_family() {
    let clock = Arc::new(ShiftedClock::default());
    let s = Stack::start_clocked(clock.clone()).await;
    let registered = register(&s, "pastor@grace.example").await;
    let first = text(&registered["data"]["refreshToken"]);
    let rotated = refresh(&s, &first).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second = text(&rotated.json::<Value>().await.unwrap()["data"]["refreshToken"]);

    // Within the window: the same successor again, nothing revoked.
    let again = refresh(&s, &first).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        text(&again.json::<Value>().await.unwrap()["data"]["refreshToken"]),
        second
    );

    clock.shift(chrono::Duration::seconds(31));
    assert_eq!(
        code_of(refresh(&s, &first).await).await,
        (StatusCode::UNAUTHORIZED, json!("refresh_reused"))
    );
    assert_eq!(
        code_of(refresh(&s, &second).await).await.0,
        StatusCode::UNAUTHORIZED,
        "the legitimate successor ended with its family"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_older_than_the_last_rotation_is_a_reuse_even_within_the_window() {
    let s = Stack::start().await;
    let first = text(&register(&s, "pastor@grace.example").await["data"]["refreshToken"]);
    let second = refresh(&s, &first).await.json::<Value>().await.unwrap();
    let second = text(&second["data"]["refreshToken"]);
    assert_eq!(refresh(&s, &second).await.status(), StatusCode::OK);
    assert_eq!(
        code_of(refresh(&s, &first).await).await,
        (StatusCode::UNAUTHORIZED, json!("refresh_reused"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_cookie_needs_an_allowed_origin_or_the_csrf_token() {
    let s = Stack::start().await;
    let registered = register(&s, "pastor@grace.example").await;
    let token = text(&registered["data"]["refreshToken"]);

    // A foreign page: refused, and the session (and the cookies) untouched.
    let foreign = refresh_from(&s, &token, &[("origin", "https://evil.example".into())]).await;
    assert!(
        foreign.headers().get("set-cookie").is_none(),
        "no cookie cleared"
    );
    let (status, body) = (foreign.status(), foreign.json::<Value>().await.unwrap());
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "origin_not_allowed");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("https://evil.example")
    );
    // A foreign origin is refused even with a (somehow) matching token.
    let with_token = [
        ("origin", "https://evil.example".to_owned()),
        ("x-csrf-token", "t".repeat(64)),
    ];
    let mut cookies = vec![(
        "cookie",
        format!("refreshToken={token}; csrfToken={}", "t".repeat(64)),
    )];
    cookies.extend(with_token.iter().cloned());
    let forged = s.post_with("/api/auth/refresh", &json!({}), &cookies).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // No Origin and no token: the CSRF check's refusal.
    assert_eq!(
        code_of(refresh_from(&s, &token, &[]).await).await,
        (StatusCode::FORBIDDEN, json!("csrf_invalid"))
    );

    // The frontend's own origin, then the double-submit token, still work.
    let ok = refresh(&s, &token).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let next = text(&ok.json::<Value>().await.unwrap()["data"]["refreshToken"]);
    let csrf = "a".repeat(64);
    let by_token = s
        .post_with(
            "/api/auth/refresh",
            &json!({}),
            &[
                ("cookie", format!("refreshToken={next}; csrfToken={csrf}")),
                ("x-csrf-token", csrf.clone()),
            ],
        )
        .await;
    assert_eq!(by_token.status(), StatusCode::OK);
    let last = text(&by_token.json::<Value>().await.unwrap()["data"]["refreshToken"]);
    // A token in the body (no cookie) was read by the page: no check needed.
    let from_body = s
        .post("/api/auth/refresh", &json!({"refreshToken": last}))
        .await;
    assert_eq!(from_body.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_cookie_from_a_foreign_origin_is_refused_and_ends_nothing() {
    let s = Stack::start().await;
    let registered = register(&s, "pastor@grace.example").await;
    let (access, token) = (
        text(&registered["data"]["accessToken"]),
        text(&registered["data"]["refreshToken"]),
    );
    let cookies = format!("accessToken={access}; refreshToken={token}");
    let foreign = s
        .post_with(
            "/api/auth/logout",
            &json!({}),
            &[
                ("cookie", cookies.clone()),
                ("origin", "https://evil.example".into()),
            ],
        )
        .await;
    assert_eq!(
        code_of(foreign).await,
        (StatusCode::FORBIDDEN, json!("origin_not_allowed"))
    );
    let bearer = [("authorization", format!("Bearer {access}"))];
    assert_eq!(
        s.get_with("/api/auth/me", &bearer).await.status(),
        StatusCode::OK,
        "the session is still open"
    );
    let own = s
        .post_with(
            "/api/auth/logout",
            &json!({}),
            &[("cookie", cookies), ("origin", FRONTEND.into())],
        )
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(
        s.get_with("/api/auth/me", &bearer).await.status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

async fn login_from(s: &Stack, http: &reqwest::Client, password: &str) -> StatusCode {
    http.post(s.url("/api/auth/login"))
        .json(&json!({"email": "pastor@grace.example", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_parallel_guesses_get_at_most_five_password_checks() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let statuses =
        futures_util::future::join_all((0..20).map(|_| login_from(&s, &s.http, "Wrong1234"))).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, throttled), (5, 15), "{statuses:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_guessing_from_elsewhere_does_not_lock_the_admin_out() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    // The stranger connects from another loopback address.
    let stranger = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            login_from(&s, &stranger, "Wrong1234").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&s, &stranger, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger's address is locked, even with the right password"
    );
    assert_eq!(
        login_from(&s, &s.http, PASSWORD).await,
        StatusCode::OK,
        "the admin, from their own address, logs in"
    );
    // Successful logins cost nothing: the admin can log in again and again.
    for _ in 0..6 {
        assert_eq!(login_from(&s, &s.http, PASSWORD).await, StatusCode::OK);
    }
    s.stop().await;
}

/// A church whose co-admin has logged in: the primary, the co-admin, the
/// co-admin's login answer.
async fn with_a_co_admin(s: &Stack) -> (Admin, Admin, Value) {
    let primary = s.register("pastor@grace.example").await;
    let created = s
        .call(&primary, "POST", "/api/admin/co-admins", Some(json!({"email": "helper@grace.example", "firstName": "Boaz", "lastName": "Ephrath"})))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let login = s
        .post(
            "/api/auth/login",
            &json!({"email": "helper@grace.example", "password": created["data"]["tempPassword"]}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    let co = Admin {
        token: text(&login["data"]["accessToken"]),
        church_id: primary.church_id.clone(),
    };
    (primary, co, login)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_co_admins_refresh_is_401() {
    let s = Stack::start().await;
    let (primary, _, login) = with_a_co_admin(&s).await;
    let id = text(&login["data"]["admin"]["id"]);
    let deleted = s
        .call(
            &primary,
            "DELETE",
            &format!("/api/admin/co-admins/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(
        refresh(&s, &text(&login["data"]["refreshToken"]))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_admin_removed_without_their_sessions_still_cannot_refresh() {
    let s = Stack::start().await;
    let (primary, _, login) = with_a_co_admin(&s).await;
    let church = shared::domain::ChurchId::parse(&primary.church_id).unwrap();
    let id = shared::domain::AdminId::parse(&text(&login["data"]["admin"]["id"])).unwrap();
    // The delete landed and revoking the sessions failed: only the record goes.
    s.stack
        .app
        .table
        .delete(&shared::keys::admin(church, id), None)
        .await
        .unwrap();
    assert_eq!(
        code_of(refresh(&s, &text(&login["data"]["refreshToken"])).await).await,
        (StatusCode::UNAUTHORIZED, json!("session_revoked"))
    );
    s.stop().await;
}

async fn put_mps(s: &Stack, admin: &Admin, mps: u64) -> (StatusCode, Value) {
    let response = s
        .call(
            admin,
            "PUT",
            "/api/admin/profile",
            Some(json!({"sendingMps": mps})),
        )
        .await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_primary_admin_sets_sending_mps_and_never_above_the_numbers_figure() {
    let s = Stack::start().await;
    let (primary, co, _) = with_a_co_admin(&s).await;

    let (status, body) = put_mps(&s, &co, 10).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "primary_admin_only");
    assert!(body["error"].as_str().unwrap().contains("sendingMps"));
    // Other fields stay a co-admin's to change.
    let other = s
        .call(
            &co,
            "PUT",
            "/api/admin/profile",
            Some(json!({"city": "Dallas"})),
        )
        .await;
    assert_eq!(other.status(), StatusCode::OK);

    // With no registration stored, the cap is what any number can do.
    assert_eq!(put_mps(&s, &primary, 100).await.0, StatusCode::OK);
    // The number registered for 20 a second (the operator sets it; an
    // admin's allowedMps is ignored as a read-only field).
    let church = shared::domain::ChurchId::parse(&primary.church_id).unwrap();
    s.change_profile(
        church,
        shared::ports::table::Update::default().set("allowedMps", 20),
    )
    .await;
    let (status, body) = put_mps(&s, &primary, 21).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "over_allowed_mps");
    assert!(body["error"].as_str().unwrap().contains("20"));
    let (status, body) = put_mps(&s, &primary, 20).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["profile"]["sendingMps"], 20);
    let ignored = s
        .call(
            &primary,
            "PUT",
            "/api/admin/profile",
            Some(json!({"allowedMps": 1000})),
        )
        .await;
    assert_eq!(ignored.status(), StatusCode::OK);
    assert_eq!(
        put_mps(&s, &primary, 21).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    s.stop().await;
}
