//! Groups, the church profile and sending number, co-admins, the dashboard
//! companions and the later-wave routes, over HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
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

/// Creates the Choir, keyword `sing`, with a welcome; as answered.
async fn add_choir(s: &Stack, admin: &Admin) -> Value {
    ok(
        s.call(admin, "POST", "/api/groups", Some(json!({"name": "Choir", "keyword": "sing", "welcomeMessageEnabled": true, "welcomeMessageText": "Welcome!"}))).await,
        StatusCode::CREATED,
    )
    .await["data"]
        .clone()
}

/// A fresh church with the Choir; its id.
async fn with_choir() -> (Stack, Admin, String) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let gid = add_choir(&s, &admin).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (s, admin, gid)
}

/// A fresh church whose Choir has Naomi and Ruth, Naomi added twice; the
/// Choir's id and Ruth's.
async fn with_naomi_and_ruth_in_the_choir() -> (Stack, Admin, String, String) {
    let (s, admin, gid) = with_choir().await;
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
    (s, admin, gid, ruth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_answers_the_frontends_shape_with_its_keyword_upper_cased() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let choir = add_choir(&s, &admin).await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyword_belongs_to_one_group_whatever_its_case() {
    let (s, admin, _) = with_choir().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_or_malformed_keywords_are_refused() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_to_a_group_twice_counts_once() {
    let (s, admin, gid, _) = with_naomi_and_ruth_in_the_choir().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_can_be_listed_by_group() {
    let (s, admin, gid, _) = with_naomi_and_ruth_in_the_choir().await;
    let by_group = ok(
        s.call(&admin, "GET", &format!("/api/members?groupId={gid}"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_group["data"].as_array().unwrap().len(), 2);
    assert_eq!(by_group["data"][0]["groupIds"], json!([gid]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_keyword_can_be_claimed_again() {
    let (s, admin, gid) = with_choir().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_group_cleans_its_memberships() {
    let (s, admin, gid, ruth) = with_naomi_and_ruth_in_the_choir().await;
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
async fn the_profile_answers_the_frontends_shape_in_new_york_time() {
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
    assert_eq!(
        profile["dlcStatus"], "pending",
        "a status the frontend's badge knows"
    );
    s.stop().await;
}

/// A fresh church whose profile was filled in (EIN 12-3456789 among it);
/// the update's answer.
async fn with_a_filled_in_profile() -> (Stack, Admin, Value) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let change = json!({"ein": "12-3456789", "timezone": "America/Chicago", "state": "tx", "postalCode": "75001", "brandPhoneNumber": "(202) 555-0100", "website": "https://grace.example"});
    let updated = ok(
        s.call(&admin, "PUT", "/api/admin/profile", Some(change))
            .await,
        StatusCode::OK,
    )
    .await;
    (s, admin, updated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_update_answers_tidied_fields_and_the_ein_in_full() {
    let (s, admin, updated) = with_a_filled_in_profile().await;
    assert_eq!(updated["success"], true);
    // In full, digits only: the frontend masks it on screen and refuses to
    // save a value that is not digits (API.md).
    assert_eq!(updated["profile"]["ein"], "123456789");
    let profile = ok(
        s.call(&admin, "GET", "/api/admin/profile", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["ein"], "123456789");
    assert_eq!(updated["profile"]["state"], "TX");
    assert_eq!(updated["profile"]["brandPhoneNumber"], "+12025550100");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ein_sent_back_with_the_form_keeps_the_ein() {
    let (s, admin, _) = with_a_filled_in_profile().await;
    // The frontend sends the EIN it read back with the rest of the form; a
    // masked one (as older answers gave) keeps it too.
    for ein in ["123456789", "*****6789"] {
        let resent = ok(
            s.call(
                &admin,
                "PUT",
                "/api/admin/profile",
                Some(json!({"ein": ein, "city": "Dallas"})),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(resent["profile"]["ein"], "123456789");
    }
    // Another church's admin never reads it.
    let other = s.register("pastor@hope.example").await;
    let theirs = ok(
        s.call(&other, "GET", "/api/admin/profile", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["ein"], serde_json::Value::Null);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ein_rests_sealed() {
    let (s, _, _) = with_a_filled_in_profile().await;
    let stored = serde_json::to_string(&s.dump().await).unwrap();
    assert!(
        !stored.contains("123456789") && !stored.contains("12-3456789"),
        "the EIN rests sealed"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_ein_copied_to_another_church_does_not_open_there() {
    let (s, _, _) = with_a_filled_in_profile().await;
    let sealed = s
        .dump()
        .await
        .into_iter()
        .find_map(|item| item.get("einSealed").cloned())
        .unwrap();
    assert!(sealed.as_str().unwrap().starts_with("v2."), "{sealed}");
    // Someone with write access to the table moves it to another church's profile.
    let other = s.register("b@hope.example").await;
    s.change_profile(
        shared::domain::ChurchId::parse(&other.church_id).unwrap(),
        Update::default().set("einSealed", sealed),
    )
    .await;
    let shown = s.call(&other, "GET", "/api/admin/profile", None).await;
    assert_eq!(shown.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!shown.text().await.unwrap().contains("123456789"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_profile_field_is_named_and_nothing_is_written() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
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

/// The platform buys `number` for `admin`'s church, which links it; the
/// answer, after checking it is 200.
async fn link(s: &Stack, admin: &Admin, number: &str) -> Value {
    s.own_number(admin, number);
    ok(
        s.call(
            admin,
            "POST",
            "/api/admin/phone-numbers/link",
            Some(json!({"phoneNumber": number})),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

/// Two fresh churches, A (which linked +1 202 555 0100) and B.
async fn a_with_a_number_and_b() -> (Stack, Admin, Admin, Value) {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    let b = s.register("b@hope.example").await;
    let linked = link(&s, &a, "(202) 555-0100").await;
    (s, a, b, linked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_without_a_number_has_no_current_number() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
    // 404, not 501: the current number is its own route, not a later wave.
    assert_eq!(
        s.call(&a, "GET", "/api/numbers/current", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_number_becomes_the_churchs_current_number() {
    let (s, a, _, linked) = a_with_a_number_and_b().await;
    assert_eq!(
        keys_of(&linked["data"]),
        ["message", "phoneNumber", "verified", "webhookId"]
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_number_is_refused() {
    let s = Stack::start().await;
    let a = s.register("a@grace.example").await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_number_routes_to_its_church() {
    let (s, a, _, _) = a_with_a_number_and_b().await;
    let number = shared::domain::PhoneNumber::parse("+12025550100").unwrap();
    let owner = shared::directory::profile::church_for_number(s.stack.app.table.as_ref(), &number)
        .await
        .unwrap();
    assert_eq!(owner.map(|c| c.to_string()), Some(a.church_id.clone()));
    s.stop().await;
}

/// Creates the co-admin helper@grace.example as `primary`; the answer.
async fn add_co_admin(s: &Stack, primary: &Admin) -> Value {
    ok(
        s.call(primary, "POST", "/api/admin/co-admins", Some(json!({"email": "helper@grace.example", "firstName": "Boaz", "lastName": "Ephrath"}))).await,
        StatusCode::CREATED,
    )
    .await
}

/// A fresh church with a co-admin who has logged in with their temporary
/// password; the primary admin, the co-admin, and the login's answer.
async fn with_a_logged_in_co_admin() -> (Stack, Admin, Admin, Value) {
    let s = Stack::start().await;
    let primary = s.register("pastor@grace.example").await;
    let created = add_co_admin(&s, &primary).await;
    let temp = created["data"]["tempPassword"].as_str().unwrap().to_owned();
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
    (s, primary, co, login)
}

/// The primary admin's list of co-admins.
async fn co_admins(s: &Stack, primary: &Admin) -> Value {
    ok(
        s.call(primary, "GET", "/api/admin/co-admins", None).await,
        StatusCode::OK,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_admin_is_created_with_a_temporary_password() {
    let s = Stack::start().await;
    let primary = s.register("pastor@grace.example").await;
    let created = add_co_admin(&s, &primary).await;
    assert_eq!(keys_of(&created["data"]), ["admin", "tempPassword"]);
    assert_eq!(created["data"]["admin"]["role"], "CO_ADMIN");
    let temp = created["data"]["tempPassword"].as_str().unwrap().to_owned();
    assert_eq!(temp.len(), 16);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_admin_logs_in_to_the_same_church() {
    let (s, primary, _, login) = with_a_logged_in_co_admin().await;
    assert_eq!(
        login["data"]["church"]["id"],
        primary.church_id.as_str(),
        "co-admins log in to the same church"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_admins_and_the_number_are_managed_by_the_primary_admin_only() {
    let (s, _, co, _) = with_a_logged_in_co_admin().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_admin_may_do_everything_else() {
    let (s, _, co, _) = with_a_logged_in_co_admin().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_co_admin_list_shows_each_last_login() {
    let (s, primary, _, _) = with_a_logged_in_co_admin().await;
    let listed = co_admins(&s, &primary).await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_plan_allows_one_co_admin() {
    let s = Stack::start().await;
    let primary = s.register("pastor@grace.example").await;
    add_co_admin(&s, &primary).await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_co_admin_ends_their_sessions() {
    let (s, primary, co, _) = with_a_logged_in_co_admin().await;
    let listed = co_admins(&s, &primary).await;
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

/// A fresh church with one member, Naomi.
async fn with_one_member() -> (Stack, Admin) {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    member(&s, &admin, "Naomi", "2025550143").await;
    (s, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_church_has_14_trial_days() {
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_trial_reads_no_days_left() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(
        church,
        Update::default().set("trialEndsAt", "2020-01-01T00:00:00+00:00"),
    )
    .await;
    let over = ok(
        s.call(&admin, "GET", "/api/billing/trial", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(over["data"], json!({"onTrial": false, "daysRemaining": 0}));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_reads_its_limits_against_the_counters() {
    let (s, admin) = with_one_member().await;
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
            "currency",
            "features",
            "members",
            "messagesPerMonth",
            "name",
            "price"
        ]
    );
    // In cents: the billing page shows price / 100 dollars.
    assert_eq!(plan["data"]["limits"]["price"], 4900, "$49 a month");
    assert_eq!(
        plan["data"]["usage"],
        json!({"branches": 1, "members": 1, "messagesThisMonth": 0, "coAdmins": 0})
    );
    assert_eq!(
        plan["data"]["remaining"],
        json!({"branches": 0, "members": 499, "messagesPerMonth": 1000, "coAdmins": 1}),
        "the frontend reads remaining.messagesPerMonth"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlimited_plan_reads_999999_where_it_has_no_limit() {
    let (s, admin) = with_one_member().await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(church, Update::default().set("plan", "pro"))
        .await;
    let plan = ok(
        s.call(&admin, "GET", "/api/billing/plan", None).await,
        StatusCode::OK,
    )
    .await;
    let data = &plan["data"];
    assert_eq!(data["plan"], "pro");
    assert_eq!(data["limits"]["price"], 12900);
    assert_eq!(
        (
            data["limits"]["members"].clone(),
            data["limits"]["messagesPerMonth"].clone()
        ),
        (json!(999999), json!(999999)),
        "the frontend reads 999999 (anything over 100,000) as unlimited"
    );
    assert_eq!(
        data["remaining"],
        json!({"branches": 9, "members": 999999, "messagesPerMonth": 999999, "coAdmins": 3})
    );
    // Without a token, nothing.
    let anonymous = s.http.get(s.url("/api/billing/plan")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_progress_follows_what_the_church_has_done() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    // A new church has its Main Campus: a branch exists, as the old
    // backend's check (at least one branch) reads it.
    assert_eq!(
        progress_of(&s, &admin).await,
        [
            ("create_branch".to_owned(), true),
            ("add_members".to_owned(), false),
            ("send_message".to_owned(), false)
        ]
    );
    let (sender, _) = s
        .church_with_members("pastor@hope.example", "+12025550177", 10, 2)
        .await;
    assert_eq!(
        progress_of(&s, &sender).await,
        [
            ("create_branch".to_owned(), true),
            ("add_members".to_owned(), true),
            ("send_message".to_owned(), false)
        ],
        "members, no send yet"
    );
    s.send_to_all(&sender, "Service at 10").await;
    assert_eq!(
        progress_of(&s, &sender).await,
        [
            ("create_branch".to_owned(), true),
            ("add_members".to_owned(), true),
            ("send_message".to_owned(), true)
        ],
        "after a send"
    );
    // One church's send is not another's.
    assert!(!progress_of(&s, &admin).await[2].1);
    s.stop().await;
}

/// Each onboarding task and whether it reads done.
async fn progress_of(s: &Stack, admin: &Admin) -> Vec<(String, bool)> {
    let progress = ok(
        s.call(admin, "GET", "/api/onboarding/progress", None).await,
        StatusCode::OK,
    )
    .await;
    progress["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["taskId"].as_str().unwrap().to_owned(),
                t["completed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_an_onboarding_task_answers_the_new_progress() {
    let (s, admin) = with_one_member().await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_onboarding_task_is_404() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_wave_routes_answer_501() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
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
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_field_on_every_writing_route_is_named_and_nothing_is_written() {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let church = shared::domain::ChurchId::parse(&admin.church_id).unwrap();
    s.change_profile(church, Update::default().set("plan", "growth"))
        .await;
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
    assert_eq!(s.dump().await, before, "no rejection wrote anything");
    s.stop().await;
}

/// The writing routes that take a JSON body.
const JSON_ROUTES: [(&str, &str); 4] = [
    ("POST", "/api/branches"),
    ("POST", "/api/groups"),
    ("PUT", "/api/admin/profile"),
    ("POST", "/api/members"),
];

/// Sends `body` as `content_type` to each of `JSON_ROUTES` as a fresh
/// church; each status, after checking that nothing was written.
async fn raw_to_every_json_route(content_type: &str, body: &str) -> Vec<(String, StatusCode)> {
    let s = Stack::start().await;
    let admin = s.register("pastor@grace.example").await;
    let before = s.dump().await;
    let mut statuses = Vec::new();
    for (method, path) in JSON_ROUTES {
        let response = s
            .http
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(&admin.token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        statuses.push((format!("{method} {path}"), response.status()));
    }
    assert_eq!(s.dump().await, before, "no rejection wrote anything");
    s.stop().await;
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_on_every_writing_route_is_400() {
    for (route, status) in raw_to_every_json_route("application/json", "{\"name\": ").await {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_body_on_every_writing_route_is_415() {
    for (route, status) in raw_to_every_json_route("text/plain", "name=x").await {
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{route}");
    }
}
