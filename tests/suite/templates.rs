//! Message templates over HTTP, as the frontend's Templates page and Send
//! page use them: the built-in ones (read-only), the church's own (created,
//! edited, deleted), refusals that name the field and write nothing, one
//! church never reaching another's, and "Used N times" after a send of
//! exactly a template's text.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::ports::table::Update;

use crate::support::{Admin, Stack, expect_status as ok, keys_of};

/// The fields the frontend's `MessageTemplate` reads, sorted.
const SHAPE: [&str; 9] = [
    "category",
    "churchId",
    "content",
    "createdAt",
    "id",
    "isDefault",
    "name",
    "updatedAt",
    "usageCount",
];

const CATEGORIES: [&str; 6] = [
    "service_reminder",
    "event",
    "prayer",
    "thank_you",
    "welcome",
    "offering",
];

/// `GET /api/templates` as `admin`: the bare array.
async fn list(s: &Stack, admin: &Admin) -> Vec<Value> {
    let listed = ok(
        s.call(admin, "GET", "/api/templates", None).await,
        StatusCode::OK,
    )
    .await;
    listed
        .as_array()
        .unwrap_or_else(|| panic!("a bare array: {listed}"))
        .clone()
}

/// The listed template with `id`, if any.
async fn find(s: &Stack, admin: &Admin, id: &str) -> Option<Value> {
    list(s, admin).await.into_iter().find(|t| t["id"] == id)
}

/// Creates a template as `admin`; the bare answer.
async fn create(s: &Stack, admin: &Admin, name: &str, content: &str, category: &str) -> Value {
    ok(
        s.call(
            admin,
            "POST",
            "/api/templates",
            Some(json!({"name": name, "content": content, "category": category})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

/// A church that may make many requests a minute (the pro plan).
async fn pro_church(s: &Stack, email: &str) -> Admin {
    let admin = s.register(email).await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(church, Update::default().set("plan", "pro"))
        .await;
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_church_starts_with_built_in_templates_in_the_frontends_shape() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let templates = list(&s, &admin).await;
    assert!(templates.len() >= CATEGORIES.len(), "{templates:?}");
    for t in &templates {
        assert_eq!(keys_of(t), SHAPE, "{t}");
        assert_eq!(t["isDefault"], true, "{t}");
        assert_eq!(t["usageCount"], 0, "{t}");
        assert_eq!(t["churchId"], admin.church_id.as_str());
        assert!(!t["name"].as_str().unwrap().is_empty());
        assert!(!t["content"].as_str().unwrap().is_empty());
        assert!(
            t["id"].as_str().unwrap().starts_with("default-"),
            "{}",
            t["id"]
        );
        assert!(CATEGORIES.contains(&t["category"].as_str().unwrap()));
    }
    for category in CATEGORIES {
        let n = templates
            .iter()
            .filter(|t| t["category"] == category)
            .count();
        assert!((1..=2).contains(&n), "{category}: {n}");
    }
    // Another church sees the same built-in templates, as its own church's.
    let other = s.register("pastor@hope.example").await;
    let theirs = list(&s, &other).await;
    assert_eq!(theirs.len(), templates.len());
    assert!(
        theirs
            .iter()
            .all(|t| t["churchId"] == other.church_id.as_str())
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_of_the_churchs_own_is_created_edited_and_deleted() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let built_in = list(&s, &admin).await.len();

    let created = create(
        &s,
        &admin,
        "Easter",
        "Join us for Easter Sunday at 9am and 11am!",
        "service_reminder",
    )
    .await;
    assert_eq!(keys_of(&created), SHAPE);
    assert_eq!(created["isDefault"], false);
    assert_eq!(created["usageCount"], 0);
    assert_eq!(created["name"], "Easter");
    assert_eq!(created["category"], "service_reminder");
    assert_eq!(created["churchId"], admin.church_id.as_str());
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let id = created["id"].as_str().unwrap().to_owned();

    // The page lists it, first, as created.
    let listed = list(&s, &admin).await;
    assert_eq!(listed.len(), built_in + 1);
    assert_eq!(listed[0], created);

    // A partial change keeps the rest.
    let renamed = ok(
        s.call(
            &admin,
            "PUT",
            &format!("/api/templates/{id}"),
            Some(json!({"name": "Easter services"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys_of(&renamed), SHAPE);
    assert_eq!(renamed["name"], "Easter services");
    assert_eq!(renamed["content"], created["content"]);
    assert_eq!(renamed["category"], created["category"]);
    assert_eq!(renamed["createdAt"], created["createdAt"]);
    assert_ne!(renamed["updatedAt"], created["updatedAt"]);

    // The edit form sends all three fields.
    let edited = ok(
        s.call(
            &admin,
            "PUT",
            &format!("/api/templates/{id}"),
            Some(json!({"name": "Good Friday", "content": "Good Friday service tonight at 7pm.", "category": "event"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            edited["name"].clone(),
            edited["content"].clone(),
            edited["category"].clone()
        ),
        (
            json!("Good Friday"),
            json!("Good Friday service tonight at 7pm."),
            json!("event")
        )
    );
    assert_eq!(find(&s, &admin, &id).await, Some(edited));

    let deleted = ok(
        s.call(&admin, "DELETE", &format!("/api/templates/{id}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(deleted, json!({"success": true}));
    assert_eq!(find(&s, &admin, &id).await, None);
    assert_eq!(list(&s, &admin).await.len(), built_in);

    // Gone is gone: a second delete or an edit finds nothing.
    for (method, body) in [("DELETE", None), ("PUT", Some(json!({"name": "Back"})))] {
        let again = s
            .call(&admin, method, &format!("/api/templates/{id}"), body)
            .await;
        assert_eq!(ok(again, StatusCode::NOT_FOUND).await["code"], "not_found");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_templates_cannot_be_edited_or_deleted() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = list(&s, &admin).await;
    let stored = s.dump().await;
    for t in &before {
        let path = format!("/api/templates/{}", t["id"].as_str().unwrap());
        // What the edit form sends for it.
        let edit = json!({"name": "Mine now", "content": "Changed", "category": "event"});
        for (method, body) in [("PUT", Some(edit)), ("DELETE", None)] {
            let refused = s.call(&admin, method, &path, body).await;
            let error = ok(refused, StatusCode::FORBIDDEN).await;
            assert_eq!(error["success"], false, "{method} {path}");
            assert_eq!(error["code"], "default_template", "{method} {path}");
            assert!(
                error["error"].as_str().unwrap().contains("built-in"),
                "{error}"
            );
        }
    }
    assert_eq!(list(&s, &admin).await, before, "every one as it was");
    assert_eq!(s.dump().await, stored, "nothing written");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_field_is_named_and_nothing_is_written() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let mine = create(&s, &admin, "Picnic", "Picnic on Saturday!", "event").await;
    let id = mine["id"].as_str().unwrap().to_owned();
    let own = format!("/api/templates/{id}");
    let ok_body = |field: &str, value: Value| {
        let mut body = json!({"name": "N", "content": "C", "category": "prayer"});
        body[field] = value;
        body
    };
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "POST",
            "/api/templates",
            json!({"content": "C", "category": "event"}),
            "name",
            "required",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("name", json!("  ")),
            "name",
            "required",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("name", json!("n".repeat(101))),
            "name",
            "too_long",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("name", json!(7)),
            "name",
            "invalid_type",
        ),
        (
            "POST",
            "/api/templates",
            json!({"name": "N", "category": "event"}),
            "content",
            "invalid_content",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("content", json!("   ")),
            "content",
            "invalid_content",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("content", json!("c".repeat(1601))),
            "content",
            "invalid_content",
        ),
        (
            "POST",
            "/api/templates",
            json!({"name": "N", "content": "C"}),
            "category",
            "required",
        ),
        (
            "POST",
            "/api/templates",
            ok_body("category", json!("birthday")),
            "category",
            "invalid_category",
        ),
        ("PUT", &own, json!({"name": ""}), "name", "required"),
        (
            "PUT",
            &own,
            json!({"name": "n".repeat(101)}),
            "name",
            "too_long",
        ),
        (
            "PUT",
            &own,
            json!({"content": ""}),
            "content",
            "invalid_content",
        ),
        (
            "PUT",
            &own,
            json!({"category": "Event!"}),
            "category",
            "invalid_category",
        ),
    ];
    let before = s.dump().await;
    for (method, path, body, field, code) in cases {
        let response = s.call(&admin, method, path, Some(body.clone())).await;
        let error = ok(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["success"], false);
        assert_eq!(error["code"], "validation_error");
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .cloned();
        assert_eq!(
            detail.map(|d| d["code"].clone()),
            Some(json!(code)),
            "{method} {path} {body}: {error}"
        );
    }
    // Ids that name no template of this church.
    let unknown = format!("/api/templates/{}", shared::domain::TemplateId::generate());
    for path in [
        unknown.as_str(),
        "/api/templates/nope",
        "/api/templates/default-welcome-9",
    ] {
        for method in ["PUT", "DELETE"] {
            let response = s
                .call(&admin, method, path, Some(json!({"name": "N"})))
                .await;
            let error = ok(response, StatusCode::NOT_FOUND).await;
            assert_eq!(error["code"], "not_found", "{method} {path}");
        }
    }
    assert_eq!(s.dump().await, before, "no refusal wrote anything");
    assert_eq!(find(&s, &admin, &id).await, Some(mine));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_church_can_neither_see_nor_change_nor_delete_a_template() {
    let s = Stack::start().await;
    let grace = s.register("pastor@grace.example").await;
    let hope = s.register("pastor@hope.example").await;
    let mine = create(&s, &grace, "Choir", "Choir practice at 6pm.", "event").await;
    let id = mine["id"].as_str().unwrap().to_owned();

    assert!(list(&s, &hope).await.iter().all(|t| t["id"] != id.as_str()));
    let path = format!("/api/templates/{id}");
    let edit = json!({"name": "Taken", "content": "Ours now", "category": "prayer"});
    for (method, body) in [("PUT", Some(edit)), ("DELETE", None)] {
        let refused = s.call(&hope, method, &path, body).await;
        assert_eq!(
            ok(refused, StatusCode::NOT_FOUND).await["code"],
            "not_found",
            "{method}"
        );
    }
    assert_eq!(find(&s, &grace, &id).await, Some(mine));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_keeps_at_most_200_templates_of_its_own() {
    let s = Stack::start().await;
    let admin = pro_church(&s, "pastor@grace.example").await;
    let mut last = Value::Null;
    for i in 0..200 {
        last = create(
            &s,
            &admin,
            &format!("T{i:03}"),
            &format!("Text {i}"),
            "event",
        )
        .await;
    }
    let before = s.dump().await;
    let over = s
        .call(
            &admin,
            "POST",
            "/api/templates",
            Some(json!({"name": "One more", "content": "One more", "category": "event"})),
        )
        .await;
    let error = ok(over, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["code"], "template_limit");
    assert!(error["error"].as_str().unwrap().contains("200"), "{error}");
    assert_eq!(s.dump().await, before, "nothing written");
    let own = list(&s, &admin).await;
    assert_eq!(own.iter().filter(|t| t["isDefault"] == false).count(), 200);

    // Deleting one makes room for one.
    let path = format!("/api/templates/{}", last["id"].as_str().unwrap());
    ok(s.call(&admin, "DELETE", &path, None).await, StatusCode::OK).await;
    create(&s, &admin, "One more", "One more", "event").await;
    s.stop().await;
}

/// The usage count the Templates page shows for `id`.
async fn used(s: &Stack, admin: &Admin, id: &str) -> Value {
    find(s, admin, id).await.expect("listed")["usageCount"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_of_exactly_a_templates_text_counts_as_one_use() {
    let s = Stack::start().await;
    let (admin, _) = s
        .church_with_members("pastor@grace.example", "+13035550100", 10, 1)
        .await;
    let (other, _) = s
        .church_with_members("pastor@hope.example", "+13035550101", 10, 1)
        .await;
    let picnic = create(
        &s,
        &admin,
        "Picnic",
        "Church picnic Saturday at noon!",
        "event",
    )
    .await;
    let picnic = picnic["id"].as_str().unwrap().to_owned();
    let welcome = list(&s, &admin)
        .await
        .into_iter()
        .find(|t| t["id"] == "default-welcome-1")
        .expect("a built-in welcome");

    // The Send page sends the template's text as it was copied in.
    s.send_to_all(&admin, "Church picnic Saturday at noon!")
        .await;
    assert_eq!(used(&s, &admin, &picnic).await, 1);
    s.send_to_all(&admin, "Church picnic Saturday at noon!")
        .await;
    assert_eq!(used(&s, &admin, &picnic).await, 2);

    // An edited text is another text: not this template's use.
    s.send_to_all(&admin, "Church picnic Saturday at noon! Bring a chair.")
        .await;
    assert_eq!(used(&s, &admin, &picnic).await, 2);

    // A built-in template's text counts too, for this church only.
    s.send_to_all(&admin, welcome["content"].as_str().unwrap())
        .await;
    assert_eq!(used(&s, &admin, "default-welcome-1").await, 1);
    assert_eq!(used(&s, &other, "default-welcome-1").await, 0);
    let unused: Vec<Value> = list(&s, &admin)
        .await
        .into_iter()
        .filter(|t| t["id"] != picnic.as_str() && t["id"] != "default-welcome-1")
        .map(|t| t["usageCount"].clone())
        .collect();
    assert!(unused.iter().all(|n| *n == 0), "{unused:?}");

    // Another church's send of the same text is not this church's use.
    s.send_to_all(&other, "Church picnic Saturday at noon!")
        .await;
    assert_eq!(used(&s, &admin, &picnic).await, 2);

    // An edit to a new text starts that text's count; the old text's stays
    // with the text (a template saved with it again goes on from there).
    let changed = ok(
        s.call(
            &admin,
            "PUT",
            &format!("/api/templates/{picnic}"),
            Some(json!({"content": "Picnic moved to Sunday after service."})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["usageCount"], 0);
    let again = create(
        &s,
        &admin,
        "Picnic (old)",
        "Church picnic Saturday at noon!",
        "event",
    )
    .await;
    assert_eq!(again["usageCount"], 2);
    s.stop().await;
}
