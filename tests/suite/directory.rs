//! Members and branches over HTTP: shapes, rules, limits, isolation, bad
//! input and data at rest.

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::keys;
use shared::ports::table::Update;

use crate::support::{Admin, Stack, keys_of};

const MEMBER_KEYS: [&str; 9] = [
    "branchId",
    "createdAt",
    "email",
    "firstName",
    "groupIds",
    "id",
    "lastName",
    "optInSms",
    "phone",
];
const BRANCH_KEYS: [&str; 11] = [
    "address",
    "churchId",
    "createdAt",
    "description",
    "groupCount",
    "id",
    "isActive",
    "memberCount",
    "name",
    "phone",
    "updatedAt",
];

fn member(first: &str, last: &str, phone: &str) -> Value {
    json!({"firstName": first, "lastName": last, "phone": phone})
}

async fn add(s: &Stack, admin: &Admin, body: Value) -> Value {
    let response = s.call(admin, "POST", "/api/members", Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["data"].clone()
}

fn church_id(admin: &Admin) -> shared::domain::ChurchId {
    shared::domain::ChurchId::parse(&admin.church_id).unwrap()
}

/// A GET of `path` as `admin`, as JSON.
async fn get(s: &Stack, admin: &Admin, path: &str) -> Value {
    s.call(admin, "GET", path, None).await.json().await.unwrap()
}

/// A fresh church with one member, Naomi, added with untidy input the way
/// people type it; the member as created.
async fn with_naomi() -> (Stack, Admin, Value) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let created = add(&s, &admin, json!({"firstName": " Naomi ", "lastName": "Mara", "phone": "(202) 555-0143", "email": "Naomi@Example.org"})).await;
    (s, admin, created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_member_is_tidied_and_answers_the_frontends_shape() {
    let (s, _, created) = with_naomi().await;
    assert_eq!(keys_of(&created), MEMBER_KEYS);
    assert_eq!(created["phone"], "+12025550143");
    assert_eq!(created["firstName"], "Naomi");
    assert_eq!(created["email"], "naomi@example.org");
    assert_eq!(created["optInSms"], true);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_list_answers_the_frontends_shape() {
    let (s, admin, created) = with_naomi().await;
    let listed = get(&s, &admin, "/api/members").await;
    assert_eq!(
        keys_of(&listed),
        ["data", "nextCursor", "pagination", "success"]
    );
    assert_eq!(
        listed["pagination"],
        json!({"page": 1, "limit": 25, "total": 1, "pages": 1})
    );
    assert_eq!(listed["data"][0], created);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_new_phone_is_claimed_and_the_old_one_freed() {
    let (s, admin, created) = with_naomi().await;
    let id = created["id"].as_str().unwrap();
    let changed = s
        .call(
            &admin,
            "PUT",
            &format!("/api/members/{id}"),
            Some(json!({"lastName": "Bethlehem", "phone": "202.555.0199"})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (
            changed["data"]["lastName"].as_str(),
            changed["data"]["phone"].as_str()
        ),
        (Some("Bethlehem"), Some("+12025550199"))
    );
    // The old number is free again; the new one is taken.
    add(&s, &admin, member("Orpah", "Moab", "202-555-0143")).await;
    let taken = s
        .call(
            &admin,
            "POST",
            "/api/members",
            Some(member("Copy", "Cat", "+1 202 555 0199")),
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_gone_from_the_directory() {
    let (s, admin, created) = with_naomi().await;
    add(&s, &admin, member("Orpah", "Moab", "202-555-0144")).await;
    let id = created["id"].as_str().unwrap();
    let removed = s
        .call(&admin, "DELETE", &format!("/api/members/{id}"), None)
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert_eq!(
        removed.json::<Value>().await.unwrap()["data"],
        json!({"id": id})
    );
    let after = get(&s, &admin, "/api/members").await;
    assert_eq!(after["pagination"]["total"], 1);
    assert_eq!(
        s.call(&admin, "DELETE", &format!("/api/members/{id}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_belongs_to_one_member_per_church() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    add(&s, &a, member("Naomi", "Mara", "2025550143")).await;
    let before = s.dump().await;
    let again = s
        .call(
            &a,
            "POST",
            "/api/members",
            Some(member("Other", "Name", "+1 (202) 555-0143")),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<Value>().await.unwrap()["code"],
        "duplicate_phone"
    );
    assert_eq!(
        s.dump().await,
        before,
        "a refused member leaves the store as it was"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_church_may_have_a_member_with_the_same_phone() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    add(&s, &a, member("Naomi", "Mara", "2025550143")).await;
    add(&s, &b, member("Naomi", "Mara", "202-555-0143")).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_first_or_last_name_prefixes_case_insensitively() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    for (i, (first, last)) in [
        ("Ruth", "Boaz"),
        ("Rachel", "Jacob"),
        ("Naomi", "Rubin"),
        ("Boaz", "Ruthless"),
        ("Leah", "Jacob"),
    ]
    .iter()
    .enumerate()
    {
        add(&s, &admin, member(first, last, &format!("20255501{i:02}"))).await;
    }
    let names = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m["firstName"].as_str().unwrap(),
                    m["lastName"].as_str().unwrap()
                )
            })
            .collect()
    };
    let ru: Value = s
        .call(&admin, "GET", "/api/members?search=RU", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(ru), ["Boaz Ruthless", "Naomi Rubin", "Ruth Boaz"]);
    let jacob: Value = s
        .call(&admin, "GET", "/api/members?search=jac", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(jacob), ["Leah Jacob", "Rachel Jacob"]);
    let full: Value = s
        .call(&admin, "GET", "/api/members?search=ruth%20b", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(full), ["Ruth Boaz"]);
    let none: Value = s
        .call(&admin, "GET", "/api/members?search=zz", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(none["data"].as_array().unwrap().is_empty());
    s.stop().await;
}

/// A fresh church with `n` members, Member00 onwards.
async fn with_members(n: usize) -> (Stack, Admin) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    for i in 0..n {
        add(
            &s,
            &admin,
            member(&format!("Member{i:02}"), "Test", &format!("20255502{i:02}")),
        )
        .await;
    }
    (s, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_the_directory_are_in_name_order() {
    let (s, admin) = with_members(30).await;
    let page3 = get(&s, &admin, "/api/members?page=3&limit=10").await;
    assert_eq!(
        page3["pagination"],
        json!({"page": 3, "limit": 10, "total": 30, "pages": 3})
    );
    assert_eq!(page3["data"][0]["firstName"], "Member20");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_walk_the_whole_directory_in_name_order() {
    let (s, admin) = with_members(30).await;
    let mut seen = Vec::new();
    let mut url = "/api/members?limit=7".to_owned();
    loop {
        let body = get(&s, &admin, &url).await;
        seen.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["firstName"].as_str().unwrap().to_owned()),
        );
        match body["nextCursor"].as_str() {
            Some(cursor) => url = format!("/api/members?limit=7&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..30).map(|i| format!("Member{i:02}")).collect();
    assert_eq!(seen, expected);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cursor_is_refused() {
    let (s, admin) = with_members(8).await;
    let first = get(&s, &admin, "/api/members?limit=7").await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let forged = format!("{}x", cursor);
    let refused = s
        .call(
            &admin,
            "GET",
            &format!("/api/members?cursor={forged}"),
            None,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["details"][0]["field"],
        "cursor"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_undo_a_members_stop() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = church_id(&admin);
    let created = add(&s, &admin, member("Naomi", "Mara", "2025550143")).await;
    let id = shared::domain::MemberId::parse(created["id"].as_str().unwrap()).unwrap();
    // What an inbound STOP records (the inbound issue writes it).
    let stop = Update::default()
        .set("optInSms", false)
        .set("optOutSource", "keyword");
    s.stack
        .app
        .table
        .update(&keys::member(church, id), stop, None)
        .await
        .unwrap();
    let undo = s
        .call(
            &admin,
            "PUT",
            &format!("/api/members/{id}"),
            Some(json!({"optInSms": true})),
        )
        .await;
    assert_eq!(undo.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(undo.json::<Value>().await.unwrap()["code"], "opted_out");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_can_undo_an_opt_out_an_admin_made() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let other = add(
        &s,
        &admin,
        json!({"firstName": "Ruth", "lastName": "Boaz", "phone": "2025550144", "optInSms": false}),
    )
    .await;
    let back = s
        .call(
            &admin,
            "PUT",
            &format!("/api/members/{}", other["id"].as_str().unwrap()),
            Some(json!({"optInSms": "true"})),
        )
        .await;
    assert_eq!(
        back.json::<Value>().await.unwrap()["data"]["optInSms"],
        true
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_at_its_plans_member_limit_cannot_add_more() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    s.stack
        .app
        .table
        .update(
            &keys::church_counters(church_id(&admin)),
            Update::default().set("members", 500),
            None,
        )
        .await
        .unwrap();
    let over = s
        .call(
            &admin,
            "POST",
            "/api/members",
            Some(member("One", "Toomany", "2025550145")),
        )
        .await;
    assert_eq!(over.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.json::<Value>().await.unwrap()["code"], "plan_limit");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_plan_has_one_branch() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let second_branch = s
        .call(
            &admin,
            "POST",
            "/api/branches",
            Some(json!({"name": "North"})),
        )
        .await;
    assert_eq!(
        second_branch.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "starter has one branch"
    );
    s.stop().await;
}

/// A fresh church on the growth plan (several branches).
async fn growth_church() -> (Stack, Admin) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    s.stack
        .app
        .table
        .update(
            &keys::church_profile(church_id(&admin)),
            Update::default().set("plan", "growth"),
            None,
        )
        .await
        .unwrap();
    (s, admin)
}

/// Creates the North branch, blank optional fields and all; as answered.
async fn add_north(s: &Stack, admin: &Admin) -> Value {
    let north = s
        .call(
            admin,
            "POST",
            "/api/branches",
            Some(json!({"name": "North", "address": "1 Main St", "phone": "", "description": ""})),
        )
        .await;
    assert_eq!(north.status(), StatusCode::CREATED);
    north.json::<Value>().await.unwrap()["data"].clone()
}

/// A growth church with the North branch, Naomi in it and Ruth added
/// without a branch (so in the Main Campus); North's id and Naomi as created.
async fn with_naomi_in_north() -> (Stack, Admin, String, Value) {
    let (s, admin) = growth_church().await;
    let north_id = add_north(&s, &admin).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_north = add(&s, &admin, json!({"firstName": "Naomi", "lastName": "Mara", "phone": "2025550143", "branchId": north_id})).await;
    add(&s, &admin, member("Ruth", "Boaz", "2025550144")).await;
    (s, admin, north_id, in_north)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_church_starts_with_a_main_campus_in_the_frontends_shape() {
    let (s, admin) = growth_church().await;
    let listed = get(&s, &admin, "/api/branches").await;
    let main = listed["data"][0].clone();
    assert_eq!(keys_of(&main), BRANCH_KEYS);
    assert_eq!(main["name"], "Main Campus");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_branch_stores_blank_optional_fields_as_absent() {
    let (s, admin) = growth_church().await;
    let north = add_north(&s, &admin).await;
    assert_eq!(
        north["phone"],
        Value::Null,
        "blank optional fields are stored as absent"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_counts_its_members() {
    let (s, admin, _, _) = with_naomi_in_north().await;
    let branches = get(&s, &admin, "/api/branches").await;
    let count = |name: &str| {
        branches["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()["memberCount"]
            .clone()
    };
    assert_eq!(count("North"), 1);
    s.stop().await;
}

/// Each branch's name and member count, as the branch cards read them.
async fn member_counts(s: &Stack, admin: &Admin) -> Vec<(String, i64)> {
    get(s, admin, "/api/branches").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["memberCount"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_without_a_branch_joins_the_first_and_every_count_stays_exact() {
    // The frontend's add-member and CSV import send no branchId.
    let (s, admin, north_id, _) = with_naomi_in_north().await;
    let main_id = get(&s, &admin, "/api/branches").await["data"][0]["id"].clone();
    assert_eq!(
        member_counts(&s, &admin).await,
        [("Main Campus".to_owned(), 1), ("North".to_owned(), 1)]
    );
    let ruth = get(&s, &admin, "/api/members?search=ruth").await["data"][0].clone();
    assert_eq!(ruth["branchId"], main_id, "Ruth is in the Main Campus");
    let of_main = get(
        &s,
        &admin,
        &format!("/api/members?branchId={}", main_id.as_str().unwrap()),
    )
    .await;
    assert_eq!(of_main["pagination"]["total"], 1);

    // Imported rows join it too, counted once each.
    let csv = "firstName,lastName,phone\nBoaz,Elim,2025550150\nOrpah,Moab,2025550151\n";
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("members.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let imported = s
        .http
        .post(s.url("/api/members/import"))
        .bearer_auth(&admin.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::OK);
    assert_eq!(
        member_counts(&s, &admin).await,
        [("Main Campus".to_owned(), 3), ("North".to_owned(), 1)]
    );

    // Moved to North, then deleted: each count follows.
    let ruth_path = format!("/api/members/{}", ruth["id"].as_str().unwrap());
    let moved = s
        .call(
            &admin,
            "PUT",
            &ruth_path,
            Some(json!({"branchId": north_id})),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        member_counts(&s, &admin).await,
        [("Main Campus".to_owned(), 2), ("North".to_owned(), 2)]
    );
    let gone = s.call(&admin, "DELETE", &ruth_path, None).await;
    assert_eq!(gone.status(), StatusCode::OK);
    assert_eq!(
        member_counts(&s, &admin).await,
        [("Main Campus".to_owned(), 2), ("North".to_owned(), 1)]
    );

    // A refused member (its phone taken) counts nowhere.
    let taken = s
        .call(
            &admin,
            "POST",
            "/api/members",
            Some(member("Boaz", "Again", "2025550150")),
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);

    // With the Main Campus deleted, the first branch is North.
    let main_path = format!("/api/branches/{}", main_id.as_str().unwrap());
    let deleted = s.call(&admin, "DELETE", &main_path, None).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let jesse = add(&s, &admin, member("Jesse", "Obed", "2025550152")).await;
    assert_eq!(jesse["branchId"], json!(north_id));
    assert_eq!(member_counts(&s, &admin).await, [("North".to_owned(), 2)]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_can_be_listed_by_branch() {
    let (s, admin, north_id, in_north) = with_naomi_in_north().await;
    let of_north = get(&s, &admin, &format!("/api/members?branchId={north_id}")).await;
    assert_eq!(of_north["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_north["data"][0]["id"], in_north["id"]);
    assert_eq!(of_north["pagination"]["total"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_can_be_deactivated() {
    let (s, admin) = growth_church().await;
    let north_id = add_north(&s, &admin).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renamed = s
        .call(
            &admin,
            "PUT",
            &format!("/api/branches/{north_id}"),
            Some(json!({"name": "North Campus", "isActive": false})),
        )
        .await;
    assert_eq!(
        renamed.json::<Value>().await.unwrap()["data"]["isActive"],
        false
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_branch_keeps_its_members_without_it() {
    let (s, admin, north_id, _) = with_naomi_in_north().await;
    let deleted = s
        .call(&admin, "DELETE", &format!("/api/branches/{north_id}"), None)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["data"]["success"], true);
    assert_eq!(deleted["data"]["membersUnassigned"], 1);
    let naomi = get(&s, &admin, "/api/members?search=naomi").await;
    assert_eq!(
        naomi["data"][0]["branchId"],
        Value::Null,
        "members stay, without the branch"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_branch_cannot_be_deleted() {
    let (s, admin) = growth_church().await;
    let north_id = add_north(&s, &admin).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = s
        .call(&admin, "DELETE", &format!("/api/branches/{north_id}"), None)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let listed = get(&s, &admin, "/api/branches").await;
    let main = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "Main Campus")
        .unwrap()
        .clone();
    let last = s
        .call(
            &admin,
            "DELETE",
            &format!("/api/branches/{}", main["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(last.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(last.json::<Value>().await.unwrap()["code"], "last_branch");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_churchs_ids_are_404_and_change_nothing() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    let a_member = add(&s, &a, member("Naomi", "Mara", "2025550143")).await;
    let a_branches: Value = s
        .call(&a, "GET", "/api/branches", None)
        .await
        .json()
        .await
        .unwrap();
    let (member_id, branch_id) = (
        a_member["id"].as_str().unwrap(),
        a_branches["data"][0]["id"].as_str().unwrap(),
    );
    let before = s.dump().await;
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "PUT",
            format!("/api/members/{member_id}"),
            Some(json!({"firstName": "Hijacked"})),
        ),
        ("DELETE", format!("/api/members/{member_id}"), None),
        (
            "PUT",
            format!("/api/branches/{branch_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        ("DELETE", format!("/api/branches/{branch_id}"), None),
        (
            "PUT",
            "/api/members/not-an-id".to_owned(),
            Some(json!({"firstName": "X"})),
        ),
    ];
    for (method, path, body) in routes {
        let response = s.call(&b, method, &path, body).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "not_found");
    }
    let listed: Value = s
        .call(
            &b,
            "GET",
            &format!("/api/members?branchId={branch_id}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed["data"].as_array().unwrap().is_empty(),
        "B sees none of A's branch"
    );
    assert_eq!(s.dump().await, before, "nothing of A changed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_member_field_is_named_and_nothing_is_written() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let valid = member("Naomi", "Mara", "2025550143");
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"lastName": "Mara", "phone": "2025550143"}),
            "firstName",
            "required",
        ),
        (with("phone", json!("call me")), "phone", "invalid_phone"),
        (with("phone", json!("123")), "phone", "invalid_phone"),
        (with("phone", json!(2025550143u64)), "phone", "invalid_type"),
        (
            with("email", json!("not-an-email")),
            "email",
            "invalid_email",
        ),
        (with("optInSms", json!("yes")), "optInSms", "invalid_type"),
        (
            with("lastName", json!("x".repeat(101))),
            "lastName",
            "too_long",
        ),
        (
            with("branchId", json!("../../etc")),
            "branchId",
            "invalid_id",
        ),
    ];
    let before = s.dump().await;
    for (body, field, code) in cases {
        let response = s.call(&admin, "POST", "/api/members", Some(body)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field} {code}");
        let error: Value = response.json().await.unwrap();
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .cloned();
        assert_eq!(
            detail.map(|d| d["code"].clone()),
            Some(json!(code)),
            "{field}: {error}"
        );
    }
    assert_eq!(s.dump().await, before, "rejections write nothing");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_or_non_numeric_paging_is_400() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    for query in ["page=0", "limit=5000", "page=abc", "limit=-1"] {
        let response = s
            .call(&admin, "GET", &format!("/api/members?{query}"), None)
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_frontends_paging_query_with_its_cache_buster_is_accepted() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let numbers_as_strings = s
        .call(
            &admin,
            "GET",
            "/api/members?page=1&limit=10&_t=1732550000000",
            None,
        )
        .await;
    assert_eq!(numbers_as_strings.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_in_an_unknown_branch_is_422_and_writes_nothing() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = s.dump().await;
    let mut body = member("Naomi", "Mara", "2025550143");
    body["branchId"] = json!("01J9ZQ3K4X5Y6Z7A8B9C0D1E2G");
    let unknown_branch = s.call(&admin, "POST", "/api/members", Some(body)).await;
    assert_eq!(unknown_branch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(s.dump().await, before, "rejections write nothing");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phone_digits_rest_in_the_store() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let phones: Vec<String> = (0..20).map(|i| format!("20255503{i:02}")).collect();
    for (i, phone) in phones.iter().enumerate() {
        add(&s, &admin, member(&format!("M{i}"), "Test", phone)).await;
    }
    let everything = serde_json::to_string(&s.dump().await).unwrap();
    for phone in &phones {
        assert!(
            !everything.contains(phone.as_str()),
            "{phone} is stored in plain text"
        );
        assert!(
            !everything.contains(&phone[3..]),
            "the local part of {phone} is stored in plain text"
        );
    }
    assert!(everything.contains("phoneSealed"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_phone_digits_rest_in_dynamodb_either() {
    use shared::adapters::aws::DynamoTable;
    use shared::adapters::aws::provision::create_table;
    use shared::directory::admins::NewAdmin;
    use shared::directory::churches::{Registration, register};
    use shared::directory::members::{Ctx, NewMember, create};

    let clients = crate::support::aws_clients().await;
    let name = crate::support::unique("kt");
    create_table(&clients, &name).await.unwrap();
    let table = DynamoTable::new(clients.dynamodb.clone(), &name);
    let now = chrono::Utc::now();
    let admin = NewAdmin {
        email: "p@grace.example".into(),
        password_hash: "x".into(),
        first_name: "R".into(),
        last_name: "B".into(),
    };
    let (church, _) = register(
        &table,
        Registration {
            church_name: "Grace".into(),
            admin,
        },
        now,
    )
    .await
    .unwrap();
    let vault =
        shared::crypto::Vault::new(&[9u8; 32], b"a phone hash key, 32 bytes long!").unwrap();
    let ctx = Ctx {
        church: church.id,
        table: &table,
        vault: &vault,
        now,
    };
    let phones: Vec<String> = (0..10).map(|i| format!("20255504{i:02}")).collect();
    for (i, phone) in phones.iter().enumerate() {
        let new = NewMember {
            first_name: format!("M{i}"),
            last_name: "Test".into(),
            phone: shared::domain::PhoneNumber::parse(phone).unwrap(),
            email: None,
            opt_in_sms: true,
            branch_id: None,
        };
        let view = create(&ctx, new).await.unwrap();
        assert_eq!(
            view.phone,
            format!("+1{phone}"),
            "read back through the vault"
        );
    }
    let scan = clients
        .dynamodb
        .scan()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let everything = format!("{:?}", scan.items());
    assert!(
        scan.items().len() >= 20,
        "members and their phone claims are there"
    );
    for phone in &phones {
        assert!(
            !everything.contains(&phone[3..]),
            "{phone} rests in plain text in DynamoDB"
        );
    }
}

/// Polls every page of members until each of the `n` passes `check`.
async fn until_every_member(s: &Stack, admin: &Admin, n: usize, check: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut passing = 0;
        for page in 1..=n.div_ceil(100) {
            let path = format!("/api/members?limit=100&page={page}");
            let listed: Value = s
                .call(admin, "GET", &path, None)
                .await
                .json()
                .await
                .unwrap();
            passing += listed["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| check(m))
                .count();
        }
        if passing == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{passing} of {n} members are done"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Polls `path` until its listing's total is `total`.
async fn until_total(s: &Stack, admin: &Admin, path: &str, total: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let listed: Value = s.call(admin, "GET", path, None).await.json().await.unwrap();
        if listed["pagination"]["total"] == total {
            return listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: total never {total}: {}",
            listed["pagination"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

const LARGE: usize = 260;

/// A church on the pro plan with `LARGE` members, every one of them in the
/// North branch and the Choir group; the ids of North and the Choir.
async fn large_branch_and_group() -> (Stack, Admin, String, String) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    s.stack
        .app
        .table
        .update(
            &keys::church_profile(church_id(&admin)),
            Update::default().set("plan", "pro"),
            None,
        )
        .await
        .unwrap();
    let created = |path: &'static str, body: Value| {
        let s = &s;
        let admin = &admin;
        async move {
            let response = s.call(admin, "POST", path, Some(body)).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<Value>().await.unwrap()["data"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let north = created("/api/branches", json!({"name": "North"})).await;
    let choir = created("/api/groups", json!({"name": "Choir"})).await;
    let ids: Vec<String> = futures_util::stream::iter(0..LARGE)
        .map(|i| {
            let mut body = member(&format!("M{i:03}"), "T", &format!("+1303556{i:04}"));
            body["branchId"] = json!(north);
            created("/api/members", body)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for chunk in ids.chunks(8) {
        let joins = chunk.iter().map(|id| {
            let path = format!("/api/groups/{choir}/members/{id}");
            let (s, admin) = (&s, &admin);
            async move { s.call(admin, "PUT", &path, None).await }
        });
        for joined in futures_util::future::join_all(joins).await {
            assert!(joined.status().is_success(), "{}", joined.status());
        }
    }
    until_total(
        &s,
        &admin,
        &format!("/api/members?branchId={north}"),
        LARGE as u64,
    )
    .await;
    (s, admin, north, choir)
}

/// The membership rows left whose sort key begins with `prefix`.
async fn rows_under(s: &Stack, prefix: &str) -> usize {
    s.dump()
        .await
        .into_iter()
        .filter(|i| i["sk"].as_str().unwrap_or_default().starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_large_branch_unassigns_the_rest_of_its_members_on_the_queue() {
    let (s, admin, north, _) = large_branch_and_group().await;
    // The request unassigns the first 200 and answers; the queue does the rest.
    let deleted = s
        .call(&admin, "DELETE", &format!("/api/branches/{north}"), None)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["data"]["membersUnassigned"], 200, "{deleted}");
    assert_eq!(deleted["data"]["membersPending"], true, "{deleted}");
    // The deleted branch's count reads 0 at once; the members follow as the queue works.
    until_every_member(&s, &admin, LARGE, |m| m["branchId"].is_null()).await;
    assert_eq!(
        rows_under(&s, "IN#BRANCH#").await,
        0,
        "no membership row of the branch is left"
    );
    // Done: deleting it again names nothing.
    assert_eq!(
        s.call(&admin, "DELETE", &format!("/api/branches/{north}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_large_group_removes_the_rest_of_its_memberships_on_the_queue() {
    let (s, admin, _, choir) = large_branch_and_group().await;
    let deleted = s
        .call(&admin, "DELETE", &format!("/api/groups/{choir}"), None)
        .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["data"]["membershipsRemoved"], 200, "{deleted}");
    assert_eq!(deleted["data"]["membershipsPending"], true, "{deleted}");
    until_every_member(&s, &admin, LARGE, |m| m["groupIds"] == json!([])).await;
    assert_eq!(
        rows_under(&s, "IN#GROUP#").await,
        0,
        "no membership row of the group is left"
    );
    // Done: deleting it again names nothing.
    assert_eq!(
        s.call(&admin, "DELETE", &format!("/api/groups/{choir}"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}
