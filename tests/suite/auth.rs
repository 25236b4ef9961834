//! Registration, login, tokens, sessions and CSRF, over HTTP on the local stack.

use chrono::{Duration, Utc};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use shared::auth::TokenSigner;
use shared::auth::tokens::TokenKind;

use crate::support::{Stack, keys_of};

const PASSWORD: &str = "Shepherd123";

fn registration(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "firstName": "Ruth", "lastName": "Boaz", "churchName": "Grace Chapel"})
}

fn cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .split_once('=')
                .unwrap()
                .1
                .to_owned()
        })
}

async fn register(s: &Stack, email: &str) -> Value {
    let response = s.post("/api/auth/register", &registration(email)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// The access token a fresh registration answers with.
fn access_of(registered: &Value) -> String {
    registered["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The refresh token a fresh registration answers with.
fn refresh_of(registered: &Value) -> String {
    registered["data"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sets_http_only_session_cookies() {
    let s = Stack::start().await;
    let response = s
        .post("/api/auth/register", &registration("Pastor@Grace.example"))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let set_cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    for name in ["accessToken", "refreshToken"] {
        let c = set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} cookie"));
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "local stack over HTTP: {c}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_answers_the_frontends_shape_with_a_14_day_trial() {
    let s = Stack::start().await;
    let body = register(&s, "Pastor@Grace.example").await;
    assert_eq!(body["success"], true);
    assert_eq!(
        keys_of(&body["data"]),
        ["accessToken", "admin", "church", "refreshToken"]
    );
    assert_eq!(
        keys_of(&body["data"]["admin"]),
        [
            "email",
            "firstName",
            "id",
            "lastName",
            "role",
            "userRole",
            "welcomeCompleted"
        ]
    );
    assert_eq!(
        keys_of(&body["data"]["church"]),
        ["email", "id", "name", "subscriptionStatus", "trialEndsAt"]
    );
    assert_eq!(body["data"]["admin"]["role"], "PRIMARY");
    assert_eq!(body["data"]["admin"]["email"], "pastor@grace.example");
    assert_eq!(body["data"]["church"]["name"], "Grace Chapel");
    let trial_ends = chrono::DateTime::parse_from_rfc3339(
        body["data"]["church"]["trialEndsAt"].as_str().unwrap(),
    )
    .unwrap();
    assert!(
        (trial_ends.with_timezone(&Utc) - Utc::now() - Duration::days(14))
            .num_minutes()
            .abs()
            < 5
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_taken_email_in_any_case_is_409_and_writes_nothing() {
    let s = Stack::start().await;
    register(&s, "Pastor@Grace.example").await;
    let items = s.item_count().await;
    let again = s
        .post("/api/auth/register", &registration("pastor@GRACE.example"))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.json::<Value>().await.unwrap()["code"], "email_taken");
    assert_eq!(
        s.item_count().await,
        items,
        "a refused registration writes nothing"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_registration_field_is_named_and_nothing_is_written() {
    let s = Stack::start().await;
    let valid = registration("a@b.example");
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (without("email"), "email", "required"),
        (without("password"), "password", "required"),
        (without("churchName"), "churchName", "required"),
        (
            with("email", json!("not-an-email")),
            "email",
            "invalid_email",
        ),
        (
            with("password", json!("alllowercase1")),
            "password",
            "weak_password",
        ),
        (
            with("password", json!("Short1")),
            "password",
            "weak_password",
        ),
        (with("firstName", json!("   ")), "firstName", "required"),
        (with("firstName", json!(42)), "firstName", "invalid_type"),
        (
            with("lastName", json!("x".repeat(101))),
            "lastName",
            "too_long",
        ),
        (
            with("churchName", json!(["Grace"])),
            "churchName",
            "invalid_type",
        ),
    ];
    let before = s.item_count().await;
    for (body, field, code) in cases {
        let response = s.post("/api/auth/register", &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field} {code}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["success"], false);
        assert_eq!(error["code"], "validation_error");
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field);
        assert_eq!(
            detail.map(|d| d["code"].clone()),
            Some(json!(code)),
            "{field}: {error}"
        );
    }
    assert_eq!(s.item_count().await, before, "rejections write nothing");
    s.stop().await;
}

/// Posts `body` as `content_type` to the registration route of a fresh
/// stack; the response, after checking that it wrote nothing.
async fn raw_registration(content_type: &str, body: &str) -> Response {
    let s = Stack::start().await;
    let before = s.item_count().await;
    let response = s.raw_post("/api/auth/register", content_type, body).await;
    assert_eq!(s.item_count().await, before, "rejections write nothing");
    s.stop().await;
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_json_registration_is_400_malformed_json() {
    let malformed = raw_registration("application/json", "{\"email\": ").await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["details"][0]["code"],
        "malformed_json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_encoded_registration_is_415() {
    let form = raw_registration("application/x-www-form-urlencoded", "email=a%40b.example").await;
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_registration_is_413() {
    let huge = raw_registration(
        "application/json",
        &format!("{{\"email\":\"{}\"}}", "x".repeat(300_000)),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn login(s: &Stack, email: &str, password: &str) -> Response {
    s.post(
        "/api/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_tokens_whatever_the_emails_case() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let ok = login(&s, "PASTOR@grace.example", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(cookie(&ok, "accessToken").is_some());
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        (body["success"].clone(), body["mfaRequired"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        keys_of(&body["data"]),
        ["accessToken", "admin", "church", "refreshToken"]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_email_look_alike() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let wrong = login(&s, "pastor@grace.example", "Wrong1234").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["code"],
        "invalid_credentials"
    );
    let unknown = login(&s, "nobody@grace.example", PASSWORD).await;
    assert_eq!(
        unknown.status(),
        StatusCode::UNAUTHORIZED,
        "unknown emails look like wrong passwords"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failed_logins_throttle_even_the_right_password() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    for _ in 0..5 {
        let r = login(&s, "pastor@grace.example", "Wrong1234").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = login(&s, "pastor@grace.example", PASSWORD).await;
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_the_caller_in_the_frontends_shape() {
    let s = Stack::start().await;
    let access = access_of(&register(&s, "pastor@grace.example").await);
    let me = s
        .get_with(
            "/api/auth/me",
            &[("authorization", format!("Bearer {access}"))],
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let body: Value = me.json().await.unwrap();
    assert_eq!(
        keys_of(&body["data"]),
        [
            "church",
            "email",
            "firstName",
            "id",
            "lastName",
            "role",
            "userRole",
            "welcomeCompleted"
        ]
    );
    assert_eq!(
        keys_of(&body["data"]["church"]),
        ["email", "id", "name", "subscriptionStatus", "trialEndsAt"]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_expired_foreign_or_tampered_tokens_are_401_with_their_reason() {
    let s = Stack::start().await;
    let registered = register(&s, "pastor@grace.example").await;
    let access = access_of(&registered);
    let secret = s.stack.app.config.keys.jwt_secret.clone().unwrap();
    let claims = TokenSigner::new(secret.expose())
        .verify(&access, TokenKind::Access, Utc::now())
        .unwrap();
    let expired = TokenSigner::new(secret.expose())
        .issue(
            TokenKind::Access,
            claims.sub,
            claims.church,
            claims.role,
            &claims.sid,
            Utc::now() - Duration::minutes(20),
        )
        .unwrap()
        .0;
    let foreign = TokenSigner::new(b"someone else's secret, 32+ bytes long")
        .issue(
            TokenKind::Access,
            claims.sub,
            claims.church,
            claims.role,
            &claims.sid,
            Utc::now(),
        )
        .unwrap()
        .0;
    let refresh_as_access = refresh_of(&registered);
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    for (token, code) in [
        (None, "unauthenticated"),
        (Some(expired), "token_expired"),
        (Some(foreign), "token_invalid"),
        (Some(tampered), "token_invalid"),
        (Some(refresh_as_access), "token_invalid"),
        (Some("garbage".to_owned()), "token_invalid"),
    ] {
        let headers: Vec<(&str, String)> = token
            .iter()
            .map(|t| ("authorization", format!("Bearer {t}")))
            .collect();
        let response = s.get_with("/api/auth/me", &headers).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{code}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], code);
    }
    s.stop().await;
}

/// Posts to the refresh route with `refresh` as the cookie, from the
/// frontend's origin (the cookie needs an allowed one).
async fn refresh_with(s: &Stack, refresh: &str) -> Response {
    s.post_with(
        "/api/auth/refresh",
        &json!({}),
        &[
            ("cookie", format!("refreshToken={refresh}")),
            ("origin", "http://localhost:5173".into()),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_the_refresh_token() {
    let s = Stack::start().await;
    let first_refresh = refresh_of(&register(&s, "pastor@grace.example").await);
    let rotated = refresh_with(&s, &first_refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let new_cookie = cookie(&rotated, "refreshToken").unwrap();
    let body: Value = rotated.json().await.unwrap();
    assert_eq!(keys_of(&body["data"]), ["accessToken", "refreshToken"]);
    let second_refresh = body["data"]["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(new_cookie, second_refresh);
    assert_ne!(second_refresh, first_refresh);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_refresh_token_revokes_every_session() {
    let clock = std::sync::Arc::new(shared::ports::ShiftedClock::default());
    let s = Stack::start_clocked(clock.clone()).await;
    let registered = register(&s, "pastor@grace.example").await;
    let (first_refresh, first_access) = (refresh_of(&registered), access_of(&registered));
    let rotated = refresh_with(&s, &first_refresh).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let second_refresh = rotated.json::<Value>().await.unwrap()["data"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // The first refresh token again, past the grace window that lets tabs
    // refresh at once: stolen or replayed. Every session ends.
    clock.shift(Duration::seconds(31));
    let reused = refresh_with(&s, &first_refresh).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        cookie(&reused, "refreshToken").as_deref(),
        Some(""),
        "cookies are cleared"
    );
    assert_eq!(
        reused.json::<Value>().await.unwrap()["code"],
        "refresh_reused"
    );
    let legit = refresh_with(&s, &second_refresh).await;
    assert_eq!(legit.status(), StatusCode::UNAUTHORIZED);
    let me = s
        .get_with(
            "/api/auth/me",
            &[("authorization", format!("Bearer {first_access}"))],
        )
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me.json::<Value>().await.unwrap()["code"], "session_revoked");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_without_a_cookie_is_401() {
    let s = Stack::start().await;
    let logged_out = s.post("/api/auth/refresh", &json!({})).await;
    assert_eq!(
        logged_out.status(),
        StatusCode::UNAUTHORIZED,
        "no cookie: 401 at once"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let s = Stack::start().await;
    let access = access_of(&register(&s, "pastor@grace.example").await);
    let bearer = [("authorization", format!("Bearer {access}"))];
    let out = s.post_with("/api/auth/logout", &json!({}), &bearer).await;
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(cookie(&out, "accessToken").as_deref(), Some(""));
    assert_eq!(out.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_eq!(
        s.get_with("/api/auth/me", &bearer).await.status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_authenticated_changes_need_csrf_or_an_allowed_origin() {
    let s = Stack::start().await;
    let access = access_of(&register(&s, "pastor@grace.example").await);
    let csrf = s.get_with("/api/csrf-token", &[]).await;
    let csrf_cookie = cookie(&csrf, "csrfToken").unwrap();
    let csrf_token = csrf.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(csrf_cookie, csrf_token);

    let welcome = json!({"userRole": "pastor"});
    let cookies = format!("accessToken={access}; csrfToken={csrf_token}");
    let cases: Vec<(Vec<(&str, String)>, StatusCode)> = vec![
        (vec![("cookie", cookies.clone())], StatusCode::FORBIDDEN),
        (
            vec![
                ("cookie", cookies.clone()),
                ("origin", "https://evil.example".into()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                ("cookie", cookies.clone()),
                ("x-csrf-token", "0".repeat(64)),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                ("cookie", cookies.clone()),
                ("x-csrf-token", csrf_token.clone()),
            ],
            StatusCode::OK,
        ),
        (
            vec![
                ("cookie", cookies.clone()),
                ("origin", "http://localhost:5173".into()),
            ],
            StatusCode::OK,
        ),
        (
            vec![
                ("cookie", cookies.clone()),
                ("referer", "http://127.0.0.1:5173/inbox".into()),
            ],
            StatusCode::OK,
        ),
        (
            vec![("authorization", format!("Bearer {access}"))],
            StatusCode::OK,
        ),
        // The frontend's placeholder while the cookie holds the token: the
        // cookie is read, and so CSRF is asked for.
        (
            vec![
                ("authorization", "Bearer cookie-based".into()),
                ("cookie", cookies.clone()),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![
                ("authorization", "Bearer cookie-based".into()),
                ("cookie", cookies.clone()),
                ("x-csrf-token", csrf_token.clone()),
            ],
            StatusCode::OK,
        ),
    ];
    for (headers, expected) in cases {
        let response = s
            .post_with("/api/auth/complete-welcome", &welcome, &headers)
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, expected, "{headers:?}: {body}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(body["code"], "csrf_invalid");
        } else {
            assert_eq!(body["data"]["welcomeCompleted"], true);
            assert_eq!(body["data"]["userRole"], "pastor");
        }
    }
    // Reading, the placeholder with the cookie is the admin; without it, no one.
    let me = s
        .get_with(
            "/api/auth/me",
            &[
                ("authorization", "Bearer cookie-based".into()),
                ("cookie", format!("accessToken={access}")),
            ],
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let nobody = s
        .get_with(
            "/api/auth/me",
            &[("authorization", "Bearer cookie-based".into())],
        )
        .await;
    assert_eq!(nobody.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

/// Asks for a reset of the registered account; the token it mails.
async fn requested_reset(s: &Stack) -> String {
    let response = s
        .post(
            "/api/auth/password-reset",
            &json!({"email": "pastor@grace.example"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    reset_tokens(s).await.pop().expect("a reset mail")
}

/// The tokens of every reset mail sent so far.
async fn reset_tokens(s: &Stack) -> Vec<String> {
    s.stack
        .parts
        .events
        .all()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.detail_type == "admin.password_reset_requested")
        .map(|e| e.event.detail["token"].as_str().unwrap().to_owned())
        .collect()
}

async fn confirm_reset(s: &Stack, token: &str, new_password: &str) -> Response {
    s.post(
        "/api/auth/password-reset/confirm",
        &json!({"token": token, "newPassword": new_password}),
    )
    .await
}

/// A stack whose one account has reset its password to `Shepherd456`; the
/// access token it held before.
async fn after_a_reset() -> (Stack, String) {
    let s = Stack::start().await;
    let old_access = access_of(&register(&s, "pastor@grace.example").await);
    let token = requested_reset(&s).await;
    let done = confirm_reset(&s, &token, "Shepherd456").await;
    assert_eq!(done.status(), StatusCode::OK);
    (s, old_access)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_answers_alike_but_mails_only_a_real_account() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    for email in ["pastor@grace.example", "nobody@grace.example"] {
        let response = s
            .post("/api/auth/password-reset", &json!({"email": email}))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{email}");
    }
    assert_eq!(
        reset_tokens(&s).await.len(),
        1,
        "only a real account gets a mail"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reset_token_rests_hashed() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let token = requested_reset(&s).await;
    let stored = serde_json::to_string(&s.dump().await).unwrap();
    assert!(!stored.contains(&token), "the token rests hashed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_new_password_is_refused_without_spending_the_reset_token() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let token = requested_reset(&s).await;
    let weak = confirm_reset(&s, &token, "weak").await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let done = confirm_reset(&s, &token, "Shepherd456").await;
    assert_eq!(done.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_token_works_once() {
    let s = Stack::start().await;
    register(&s, "pastor@grace.example").await;
    let token = requested_reset(&s).await;
    let done = confirm_reset(&s, &token, "Shepherd456").await;
    assert_eq!(done.status(), StatusCode::OK);
    let again = confirm_reset(&s, &token, "Shepherd789").await;
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a token works once"
    );
    assert_eq!(
        again.json::<Value>().await.unwrap()["details"][0]["code"],
        "invalid_token"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_ends_every_session() {
    let (s, old_access) = after_a_reset().await;
    let me = s
        .get_with(
            "/api/auth/me",
            &[("authorization", format!("Bearer {old_access}"))],
        )
        .await;
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "a reset ends every session"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_password_reset_only_the_new_password_logs_in() {
    let (s, _) = after_a_reset().await;
    let old = login(&s, "pastor@grace.example", PASSWORD).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = login(&s, "pastor@grace.example", "Shepherd456").await;
    assert_eq!(new.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_over_its_plans_request_rate_gets_429() {
    let s = Stack::start().await;
    let registered = register(&s, "pastor@grace.example").await;
    let bearer = [(
        "authorization",
        format!(
            "Bearer {}",
            registered["data"]["accessToken"].as_str().unwrap()
        ),
    )];
    // Starter: 100 a minute. A minute boundary may reset the count once.
    let mut refused = None;
    for i in 1..=201 {
        let response = s.get_with("/api/auth/me", &bearer).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, response));
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (at, response) = refused.expect("the 101st request in a minute is refused");
    assert!(at > 100, "refused after {at} requests");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        response.json::<Value>().await.unwrap()["code"],
        "rate_limited"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_requests_per_minute_replaces_the_plans_and_no_admin_can_set_it() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();

    // An admin cannot give their church more: the field is not theirs.
    let refused = s
        .call(
            &admin,
            "PUT",
            "/api/admin/profile",
            Some(json!({"requestsPerMinute": 100_000})),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["details"][0]["field"], "requestsPerMinute");
    let stored = s
        .stack
        .app
        .table
        .get(&shared::keys::church_profile(church))
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.contains_key("requestsPerMinute"));

    // The operator gives this starter church 150 a minute instead of 100.
    s.change_profile(
        church,
        shared::ports::table::Update::default().set("requestsPerMinute", 150),
    )
    .await;
    let bearer = [("authorization", format!("Bearer {}", admin.token))];
    let mut refused = None;
    // A minute boundary may reset the count once.
    for i in 1..=301 {
        let response = s.get_with("/api/auth/me", &bearer).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(i);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
    }
    let at =
        refused.expect("the override is a limit too: the 151st request in a minute is refused");
    // The refused PUT above counted too: the 150th GET is the 151st request.
    assert!(at >= 150, "refused after {at} requests");
    s.stop().await;
}
