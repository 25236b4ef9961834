//! The frontend's routes, over HTTP: every (method, path) it calls
//! (`tests/fixtures/frontend/frontend-routes.txt`, read from its sources) is
//! routed — built, or a later wave's 501 with the error envelope — never the
//! local stack's 404 "route not found"; and a method no route takes is a 405.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::catalog::Catalog;

use crate::support::{Stack, fixture_text};

/// The fixture's routes: `(METHOD, /api/path/:param)`.
fn frontend_routes() -> Vec<(String, String)> {
    fixture_text("frontend/frontend-routes.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (method, path) = l.split_once(' ').expect("METHOD /path");
            (method.to_owned(), path.trim().to_owned())
        })
        .collect()
}

/// The path with each `:param` filled in as the frontend would.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            ":taskId" => "create_branch".to_owned(),
            ":emoji" => "%E2%9D%A4%EF%B8%8F".to_owned(),
            s if s.starts_with(':') => "01JDZ5F6Q8R2T4V6X8Z0B2D4F6".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether a template route (`{name}`, `{proxy+}`) takes `path`.
fn takes(template: &str, path: &str) -> bool {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(_)) if w.ends_with("+}") => return true,
            (Some(w), Some(g)) if w.starts_with('{') || w == g => {}
            _ => return false,
        }
    }
}

#[test]
fn the_catalog_routes_every_route_the_frontend_calls() {
    let catalog = Catalog::builtin().unwrap();
    let routes = frontend_routes();
    assert_eq!(
        routes.len(),
        71,
        "the fixture's routes, as its .NOTE counts"
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|(method, path)| {
            let path = concrete(path);
            !catalog
                .routes()
                .any(|(_, r)| (r.method == *method || r.method == "ANY") && takes(&r.path, &path))
        })
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(missing.is_empty(), "not in template.yaml: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_the_frontend_calls_is_routed_on_the_local_stack() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let mut later = Vec::new();
    for (method, path) in frontend_routes() {
        // Logging out would end the session the later calls use.
        if path == "/api/auth/logout" {
            continue;
        }
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let answer = s.call(&admin, &method, &concrete(&path), body).await;
        let status = answer.status();
        let got: Value = answer.json().await.unwrap_or(Value::Null);
        let route = format!("{method} {path}");
        assert!(
            !(status == StatusCode::NOT_FOUND && got["error"] == "route not found"),
            "{route} is not routed: {got}"
        );
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{route}: {got}");
        if status == StatusCode::NOT_IMPLEMENTED {
            assert_eq!(
                (got["success"].clone(), got["code"].clone()),
                (json!(false), json!("not_implemented")),
                "{route}: a later wave answers the error envelope"
            );
            later.push(path);
        } else {
            assert!(!status.is_server_error(), "{route}: {status} {got}");
        }
    }
    for rcs in [
        "/api/messages/rcs/status",
        "/api/admin/rcs/register",
        "/api/nps/submit",
    ] {
        assert!(later.iter().any(|p| p == rcs), "{rcs} answers 501");
    }
    // The logout last: routed too.
    let out = s.call(&admin, "POST", "/api/auth/logout", Some(json!({})));
    assert_eq!(out.await.status(), StatusCode::OK);
    s.stop().await;
}

/// Locally only: on AWS the HTTP API itself answers an unrouted method with
/// its own 404 `{"message":"Not Found"}`, before any function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_no_route_takes_is_405_with_the_error_envelope() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    for (method, path) in [
        ("TRACE", "/api/members"),
        // An ANY route (a later wave) takes no TRACE either: 405, not 501.
        ("TRACE", "/api/billing/usage"),
        ("BREW", "/api/branches"),
        // A method the path has no route for.
        ("PUT", "/api/messages/send"),
        ("DELETE", "/api/auth/me"),
    ] {
        let answer = s.call(&admin, method, path, None).await;
        assert_eq!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        let got: Value = answer.json().await.unwrap();
        assert_eq!(got["success"], false, "{method} {path}: {got}");
        assert_eq!(got["code"], "method_not_allowed", "{method} {path}: {got}");
        assert!(got["error"].as_str().unwrap().contains(method), "{got}");
    }
    // A path no route has stays a 404, whatever the method.
    for method in ["GET", "TRACE"] {
        let answer = s.call(&admin, method, "/api/nowhere", None).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method}");
        let got: Value = answer.json().await.unwrap();
        assert_eq!(got["error"], "route not found");
    }
    // The routes themselves still answer.
    let members = s.call(&admin, "GET", "/api/members", None).await;
    assert_eq!(members.status(), StatusCode::OK);
    let later = s.call(&admin, "GET", "/api/billing/usage", None).await;
    assert_eq!(later.status(), StatusCode::NOT_IMPLEMENTED);
    s.stop().await;
}
