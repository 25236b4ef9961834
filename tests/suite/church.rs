//! Groups, the church profile and sending number, co-admins, the dashboard
//! companions and the later-wave routes, over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::keys;
use shared::ports::table::Update;

use crate::support::{Admin, Stack, expect_status as ok, keys_of};

async fn member(s: &Stack, admin: &Admin, first: &str, phone: &str) -> String {
    let body = ok(
        s.call(
            admin,
            "POST",
            "/api/members",
            Some(json!({"firstName": first, "lastName": "Test", "phone": phone})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    body["data"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_keep_members_counts_and_unique_keywords() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let choir = ok(
        s.call(&admin, "POST", "/api/groups", Some(json!({"name": "Choir", "keyword": "sing", "welcomeMessageEnabled": true, "welcomeMessageText": "Welcome!"}))).await,
        StatusCode::CREATED,
    )
    .await["data"]
        .clone();
    assert_eq!(
        keys_of(&choir),
        [
            "branchId",
            "churchId",
            "createdAt",
            "description",
            "id",
            "keyword",
            "memberCount",
            "name",
            "updatedAt",
            "welcomeMessageEnabled",
            "welcomeMessageText"
        ]
    );
    assert_eq!(choir["keyword"], "SING");
    let gid = choir["id"].as_str().unwrap().to_owned();
    let taken = s
        .call(
            &admin,
            "POST",
            "/api/groups",
            Some(json!({"name": "Singers", "keyword": "Sing"})),
        )
        .await;
    assert_eq!(
        ok(taken, StatusCode::CONFLICT).await["code"],
        "keyword_taken"
    );
    for reserved in ["stop", "HELP", "start", "two words", "x"] {
        let refused = s
            .call(
                &admin,
                "POST",
                "/api/groups",
                Some(json!({"name": "G", "keyword": reserved})),
            )
            .await;
        assert_eq!(
            ok(refused, StatusCode::BAD_REQUEST).await["details"][0]["field"],
            "keyword",
            "{reserved}"
        );
    }

    let naomi = member(&s, &admin, "Naomi", "2025550143").await;
    let ruth = member(&s, &admin, "Ruth", "2025550144").await;
    for m in [&naomi, &ruth, &naomi] {
        ok(
            s.call(
                &admin,
                "PUT",
                &format!("/api/groups/{gid}/members/{m}"),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }
    let listed = ok(
        s.call(&admin, "GET", &format!("/api/groups/{gid}/members"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["pagination"]["total"], 2, "adding twice counts once");
    let groups = ok(
        s.call(&admin, "GET", "/api/groups", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(groups["data"][0]["memberCount"], 2);
    let by_group = ok(
        s.call(&admin, "GET", &format!("/api/members?groupId={gid}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_group["data"].as_array().unwrap().len(), 2);
    assert_eq!(by_group["data"][0]["groupIds"], json!([gid]));

    ok(
        s.call(
            &admin,
            "DELETE",
            &format!("/api/groups/{gid}/members/{ruth}"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let renamed = ok(
        s.call(
            &admin,
            "PUT",
            &format!("/api/groups/{gid}"),
            Some(json!({"name": "Sunday Choir", "keyword": ""})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["data"]["keyword"], Value::Null);
    // The freed keyword can be claimed again.
    ok(
        s.call(
            &admin,
            "POST",
            "/api/groups",
            Some(json!({"name": "Singers", "keyword": "SING"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let deleted = ok(
        s.call(&admin, "DELETE", &format!("/api/groups/{gid}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(deleted["data"]["membershipsRemoved"], 1);
    let naomi_now = ok(
        s.call(&admin, "GET", "/api/members?search=naomi", None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        naomi_now["data"][0]["groupIds"],
        json!([]),
        "deleting a group cleans its memberships"
    );
    assert_eq!(
        s.call(&admin, "GET", &format!("/api/groups/{gid}/members"), None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_seals_the_ein_and_checks_time_zones() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let profile = ok(
        s.call(&admin, "GET", "/api/admin/profile", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&profile),
        [
            "brandPhoneNumber",
            "city",
            "createdAt",
            "dlcApprovedAt",
            "dlcBrandId",
            "dlcCampaignId",
            "dlcRegisteredAt",
            "dlcStatus",
            "ein",
            "email",
            "entityType",
            "helpReply",
            "id",
            "name",
            "postalCode",
            "quietHours",
            "sendingMps",
            "state",
            "streetAddress",
            "telnyxPhoneNumber",
            "timezone",
            "updatedAt",
            "vertical",
            "wantsPremiumDelivery",
            "website",
            "welcomeMessage"
        ]
    );
    assert_eq!(profile["timezone"], "America/New_York");
    let change = json!({"ein": "12-3456789", "timezone": "America/Chicago", "state": "tx", "postalCode": "75001", "brandPhoneNumber": "(202) 555-0100", "website": "https://grace.example"});
    let updated = ok(
        s.call(&admin, "PUT", "/api/admin/profile", Some(change))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["success"], true);
    assert_eq!(updated["profile"]["ein"], "*****6789");
    assert_eq!(updated["profile"]["state"], "TX");
    assert_eq!(updated["profile"]["brandPhoneNumber"], "+12025550100");
    // The frontend sends the masked EIN back with the rest of the form.
    let resent = ok(
        s.call(
            &admin,
            "PUT",
            "/api/admin/profile",
            Some(json!({"ein": "*****6789", "city": "Dallas"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(resent["profile"]["ein"], "*****6789");
    let stored = serde_json::to_string(&s.dump().await).unwrap();
    assert!(
        !stored.contains("123456789") && !stored.contains("12-3456789"),
        "the EIN rests sealed"
    );

    let before = s.dump().await;
    for (body, field) in [
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"ein": "12345"}), "ein"),
        (json!({"postalCode": "7500"}), "postalCode"),
        (json!({"website": "javascript:alert(1)"}), "website"),
        (json!({"name": ""}), "name"),
        (
            json!({"wantsPremiumDelivery": "yes"}),
            "wantsPremiumDelivery",
        ),
        (json!({"sendingMps": 0}), "sendingMps"),
        (json!({"favouriteHymn": "Amazing Grace"}), "favouriteHymn"),
    ] {
        let refused = ok(
            s.call(&admin, "PUT", "/api/admin/profile", Some(body))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["details"][0]["field"], field);
    }
    assert_eq!(s.dump().await, before, "rejections write nothing");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sending_number_belongs_to_one_church_and_routes_to_it() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    assert_eq!(
        s.call(&a, "GET", "/api/numbers/current", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let linked = ok(
        s.call(
            &a,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "(202) 555-0100"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&linked["data"]),
        ["message", "phoneNumber", "verified"]
    );
    assert_eq!(linked["data"]["phoneNumber"], "+12025550100");
    let current = ok(
        s.call(&a, "GET", "/api/numbers/current", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&current["data"]),
        [
            "id",
            "telnyxPhoneNumber",
            "telnyxPurchasedAt",
            "telnyxVerified"
        ]
    );
    let taken = s
        .call(
            &b,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "+12025550100"})),
        )
        .await;
    assert_eq!(
        ok(taken, StatusCode::CONFLICT).await["code"],
        "number_taken"
    );
    let bad = s
        .call(
            &a,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "12"})),
        )
        .await;
    assert_eq!(
        ok(bad, StatusCode::BAD_REQUEST).await["details"][0]["field"],
        "phoneNumber"
    );

    let number = shared::domain::PhoneNumber::parse("+12025550100").unwrap();
    let owner = shared::directory::profile::church_for_number(s.stack.app.table.as_ref(), &number)
        .await
        .unwrap();
    assert_eq!(owner.map(|c| c.to_string()), Some(a.church_id.clone()));
    // Moving to another number frees the first for other churches.
    ok(
        s.call(
            &a,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "+12025550101"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    ok(
        s.call(
            &b,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": "+12025550100"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_admins_are_managed_by_the_primary_admin_only() {
    let s = Stack::start().await;
    let primary = s.register("pastor@grace.example").await;
    let created = ok(
        s.call(&primary, "POST", "/api/admin/co-admins", Some(json!({"email": "helper@grace.example", "firstName": "Boaz", "lastName": "Ephrath"}))).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(keys_of(&created["data"]), ["admin", "tempPassword"]);
    assert_eq!(created["data"]["admin"]["role"], "CO_ADMIN");
    let temp = created["data"]["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(temp.len(), 16);

    let login = ok(
        s.post(
            "/api/auth/login",
            &json!({"email": "helper@grace.example", "password": temp}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let co = Admin {
        token: login["data"]["accessToken"].as_str().unwrap().to_owned(),
        church_id: primary.church_id.clone(),
    };
    assert_eq!(
        login["data"]["church"]["id"],
        primary.church_id.as_str(),
        "co-admins log in to the same church"
    );
    for (method, path, body) in [
        ("GET", "/api/admin/co-admins".to_owned(), None),
        (
            "POST",
            "/api/admin/co-admins".to_owned(),
            Some(json!({"email": "x@grace.example", "firstName": "X", "lastName": "Y"})),
        ),
        (
            "POST",
            "/api/admin/phone-numbers/link".to_owned(),
            Some(json!({"phoneNumber": "+12025550100"})),
        ),
    ] {
        let refused = ok(
            s.call(&co, method, &path, body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(refused["code"], "primary_admin_only", "{method} {path}");
    }
    // Everything else is open to co-admins.
    ok(
        s.call(
            &co,
            "POST",
            "/api/members",
            Some(json!({"firstName": "A", "lastName": "B", "phone": "2025550150"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let listed = ok(
        s.call(&primary, "GET", "/api/admin/co-admins", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&listed[0]),
        [
            "createdAt",
            "email",
            "firstName",
            "id",
            "lastLoginAt",
            "lastName",
            "role"
        ]
    );
    assert!(listed[0]["lastLoginAt"].is_string());
    let over = s
        .call(
            &primary,
            "POST",
            "/api/admin/co-admins",
            Some(json!({"email": "two@grace.example", "firstName": "T", "lastName": "W"})),
        )
        .await;
    assert_eq!(
        ok(over, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "plan_limit",
        "starter allows one co-admin"
    );

    let id = listed[0]["id"].as_str().unwrap();
    let removed = ok(
        s.call(
            &primary,
            "DELETE",
            &format!("/api/admin/co-admins/{id}"),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys_of(&removed), ["message", "success"]);
    assert_eq!(
        s.call(&co, "GET", "/api/auth/me", None).await.status(),
        StatusCode::UNAUTHORIZED,
        "their sessions end"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reads_counters_and_later_waves_answer_501() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let trial = ok(
        s.call(&admin, "GET", "/api/billing/trial", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            trial["data"]["onTrial"].clone(),
            trial["data"]["daysRemaining"].clone()
        ),
        (json!(true), json!(14))
    );
    assert_eq!(trial["onTrial"], true, "also readable bare");
    member(&s, &admin, "Naomi", "2025550143").await;
    let plan = ok(
        s.call(&admin, "GET", "/api/billing/plan", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        keys_of(&plan["data"]),
        ["limits", "plan", "remaining", "usage"]
    );
    assert_eq!(
        keys_of(&plan["data"]["limits"]),
        [
            "branches",
            "coAdmins",
            "features",
            "members",
            "messagesPerMonth",
            "name",
            "price"
        ]
    );
    assert_eq!(
        plan["data"]["usage"],
        json!({"branches": 1, "members": 1, "messagesThisMonth": 0, "coAdmins": 0})
    );
    assert_eq!(plan["data"]["remaining"]["members"], 499);

    let progress = ok(
        s.call(&admin, "GET", "/api/onboarding/progress", None)
            .await,
        StatusCode::OK,
    )
    .await;
    let done: Vec<(String, bool)> = progress["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["taskId"].as_str().unwrap().to_owned(),
                t["completed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("create_branch".to_owned(), false),
            ("add_members".to_owned(), true),
            ("send_message".to_owned(), false)
        ]
    );
    let completed = ok(
        s.call(
            &admin,
            "POST",
            "/api/onboarding/complete/create_branch",
            Some(json!({})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        completed["data"],
        json!({"completedTasks": 2, "remainingTasks": 1, "percentageComplete": 66, "isComplete": false})
    );
    assert_eq!(
        s.call(
            &admin,
            "POST",
            "/api/onboarding/complete/fly_to_mars",
            Some(json!({}))
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );

    for (method, path) in [
        ("GET", "/api/billing/usage"),
        ("POST", "/api/billing/subscribe"),
        ("GET", "/api/numbers/search"),
        ("GET", "/api/admin/activity-logs"),
        ("POST", "/api/mfa/enable"),
        ("GET", "/api/gdpr/export"),
    ] {
        let later = ok(
            s.call(&admin, method, path, None).await,
            StatusCode::NOT_IMPLEMENTED,
        )
        .await;
        assert_eq!(
            (later["success"].clone(), later["code"].clone()),
            (json!(false), json!("not_implemented")),
            "{method} {path}"
        );
    }
    // Not a later wave: the current number stays its own route.
    assert_eq!(
        s.call(&admin, "GET", "/api/numbers/current", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.stack
        .app
        .table
        .update(
            &keys::church_profile(church),
            Update::default().set("trialEndsAt", "2020-01-01T00:00:00+00:00"),
            None,
        )
        .await
        .unwrap();
    let over = ok(
        s.call(&admin, "GET", "/api/billing/trial", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(over["data"], json!({"onTrial": false, "daysRemaining": 0}));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_writing_route_names_the_field_and_writes_nothing() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.stack
        .app
        .table
        .update(
            &keys::church_profile(church),
            Update::default().set("plan", "growth"),
            None,
        )
        .await
        .unwrap();
    let group = ok(
        s.call(
            &admin,
            "POST",
            "/api/groups",
            Some(json!({"name": "Choir"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let gid = group["data"]["id"].as_str().unwrap().to_owned();
    let branches = ok(
        s.call(&admin, "GET", "/api/branches", None).await,
        StatusCode::OK,
    )
    .await;
    let bid = branches["data"][0]["id"].as_str().unwrap().to_owned();
    let long = "x".repeat(1001);
    let cases: Vec<(&str, String, Value, &str, &str)> = vec![
        (
            "POST",
            "/api/branches".into(),
            json!({}),
            "name",
            "required",
        ),
        (
            "POST",
            "/api/branches".into(),
            json!({"name": 7}),
            "name",
            "invalid_type",
        ),
        (
            "POST",
            "/api/branches".into(),
            json!({"name": "N", "description": long}),
            "description",
            "too_long",
        ),
        (
            "PUT",
            format!("/api/branches/{bid}"),
            json!({"isActive": "maybe"}),
            "isActive",
            "invalid_type",
        ),
        (
            "PUT",
            format!("/api/branches/{bid}"),
            json!({"name": ""}),
            "name",
            "required",
        ),
        (
            "POST",
            "/api/groups".into(),
            json!({"description": "no name"}),
            "name",
            "required",
        ),
        (
            "POST",
            "/api/groups".into(),
            json!({"name": "G", "branchId": "nope"}),
            "branchId",
            "invalid_id",
        ),
        (
            "POST",
            "/api/groups".into(),
            json!({"name": "G", "welcomeMessageEnabled": 3}),
            "welcomeMessageEnabled",
            "invalid_type",
        ),
        (
            "PUT",
            format!("/api/groups/{gid}"),
            json!({"welcomeMessageText": "w".repeat(481)}),
            "welcomeMessageText",
            "too_long",
        ),
        (
            "PUT",
            format!("/api/groups/{gid}"),
            json!({"keyword": "STOP"}),
            "keyword",
            "invalid_keyword",
        ),
        (
            "POST",
            "/api/admin/co-admins".into(),
            json!({"email": "not-an-email", "firstName": "A", "lastName": "B"}),
            "email",
            "invalid_email",
        ),
        (
            "POST",
            "/api/admin/co-admins".into(),
            json!({"email": "a@b.example", "lastName": "B"}),
            "firstName",
            "required",
        ),
        (
            "POST",
            "/api/auth/complete-welcome".into(),
            json!({}),
            "userRole",
            "required",
        ),
        (
            "POST",
            "/api/auth/login".into(),
            json!({"email": "pastor@grace.example"}),
            "password",
            "required",
        ),
        (
            "POST",
            "/api/auth/login".into(),
            json!({"email": ["a"], "password": "x"}),
            "email",
            "invalid_type",
        ),
        (
            "POST",
            "/api/admin/phone-numbers/link".into(),
            json!({}),
            "phoneNumber",
            "invalid_phone",
        ),
        (
            "POST",
            "/api/auth/password-reset".into(),
            json!({"email": "nope"}),
            "email",
            "invalid_email",
        ),
    ];
    let before = s.dump().await;
    for (method, path, body, field, code) in cases {
        let response = s.call(&admin, method, &path, Some(body)).await;
        let status = response.status();
        let error: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {error}");
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .cloned();
        assert_eq!(
            detail.map(|d| d["code"].clone()),
            Some(json!(code)),
            "{method} {path}: {error}"
        );
    }
    for (method, path) in [
        ("POST", "/api/branches"),
        ("POST", "/api/groups"),
        ("PUT", "/api/admin/profile"),
        ("POST", "/api/members"),
    ] {
        let malformed = s
            .http
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(&admin.token)
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(
            malformed.status(),
            StatusCode::BAD_REQUEST,
            "{method} {path}"
        );
        let text = s
            .http
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(&admin.token)
            .header("content-type", "text/plain")
            .body("name=x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            text.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
    }
    assert_eq!(s.dump().await, before, "no rejection wrote anything");
    s.stop().await;
}
