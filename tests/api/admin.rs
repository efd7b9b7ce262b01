//! The administration API over a real HTTP client on loopback: login, sessions that idle out on
//! the engine's clock, roles and per-queue read permission, and the route table closed to
//! anonymous callers.

use crate::common;
use crate::common::admin_call as call;

use std::path::Path;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::engine::Engine;
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

use crate::common::monday_9am_utc as t0;

/// An engine with one user per role, a Sales-only monitor and two queues.
async fn engine(dir: &Path, clock: SharedClock) -> (Engine, String) {
    engine_limited(dir, clock, 200).await
}

/// As [`engine`], with `rate` requests per second per key or user.
async fn engine_limited(dir: &Path, clock: SharedClock, rate: u32) -> (Engine, String) {
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}, {{name: t2, key: other-key}}]
  rate_limit_per_second: {rate}
admin:
  users:
    - {{name: root, password_hash: '{hash}', roles: [Administrator]}}
    - {{name: sup, password_hash: '{hash}', roles: [Supervisor]}}
    - {{name: mon, password_hash: '{hash}', roles: [Monitor], queues: [Sales_VQ_CB]}}
    - {{name: dev, password_hash: '{hash}', roles: [Developer]}}
    - {{name: supdev, password_hash: '{hash}', roles: [Monitor, Supervisor, Developer]}}
agents:
  - {{id: alice, skills: {{Sales: 7}}}}
queues:
  - {{name: Sales_VQ_CB, skill_expression: Sales > 3}}
  - {{name: Service_VQ_CB}}
"
    );
    common::start_engine_from_file(dir, yaml, clock).await
}

async fn login(url: &str, user: &str) -> String {
    common::admin_login(url, user, PASSWORD).await
}

#[tokio::test]
async fn login_me_idle_timeout_and_logout() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let (e, url) = engine(dir.path(), clock.shared()).await;

    let (s, v) = call(
        Method::POST,
        &format!("{url}/admin/login"),
        None,
        Some(json!({"username": "root", "password": "wrong"})),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (401, Some(40103)), "{v}");
    assert!(v["correlationId"].is_string());
    let (s, v) = call(
        Method::POST,
        &format!("{url}/admin/login"),
        None,
        Some(json!({"username": "nobody", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["message"], "wrong user name or password");
    let (s, v) = call(
        Method::POST,
        &format!("{url}/admin/login"),
        None,
        Some(json!({"username": "root", "password": PASSWORD, "otp": 1})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("otp"), "{v}");

    let token = login(&url, "mon").await;
    let (s, v) = call(Method::GET, &format!("{url}/admin/me"), Some(&token), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["roles"], json!(["Monitor"]));
    assert_eq!(
        v["data"]["permissions"],
        json!(["readCallbacks", "readRules"])
    );
    assert_eq!(v["data"]["queues"], json!(["Sales_VQ_CB"]));

    // 19 minutes idle: still good, and the request restarts the timer.
    clock.advance(TimeDelta::minutes(19));
    let (s, _) = call(Method::GET, &format!("{url}/admin/me"), Some(&token), None).await;
    assert_eq!(s, 200);
    clock.advance(TimeDelta::minutes(20) + TimeDelta::seconds(1));
    let (s, v) = call(Method::GET, &format!("{url}/admin/me"), Some(&token), None).await;
    assert_eq!((s, v["code"].as_u64()), (401, Some(40104)), "{v}");

    let token = login(&url, "supdev").await;
    let (_, v) = call(Method::GET, &format!("{url}/admin/me"), Some(&token), None).await;
    let perms: Vec<&str> = v["data"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        perms.contains(&"exportCallbacks") && perms.contains(&"developerTools"),
        "the most permissive role wins per permission: {perms:?}"
    );
    assert!(!perms.contains(&"manageUsers"), "{perms:?}");
    let (s, _) = call(
        Method::POST,
        &format!("{url}/admin/logout"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(Method::GET, &format!("{url}/admin/me"), Some(&token), None).await;
    assert_eq!(s, 401, "a logged-out token is refused");
    e.shutdown();
}

#[tokio::test]
async fn admin_routes_need_a_token_not_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let r = reqwest::Client::new()
        .get(format!("{url}/admin/me"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 40102, "{v}");
    assert!(v["message"].as_str().unwrap().contains("Bearer"), "{v}");
    let (s, _) = call(
        Method::GET,
        &format!("{url}/admin/me"),
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(s, 401);
    // A token is no API key either.
    let token = login(&url, "root").await;
    let (s, _) = call(
        Method::GET,
        &format!("{url}/engagement/v3/callbacks/queue-status/Sales_VQ_CB"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 401);
    e.shutdown();
}

/// Every documented path with every method, with no credentials and with wrong ones: 401 JSON.
#[tokio::test]
async fn no_route_answers_without_a_key_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let (s, _) = call(Method::GET, &format!("{url}/openapi.json"), None, None).await;
    assert_eq!(s, 401, "the OpenAPI document needs a key or a token");
    let r = reqwest::Client::new()
        .get(format!("{url}/openapi.json"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    let token = login(&url, "root").await;
    let (s, by_token) = call(
        Method::GET,
        &format!("{url}/openapi.json"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!((s, &by_token), (200, &doc));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{:?}", paths.keys());
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    let mut probed = 0;
    for (path, ops) in paths {
        let concrete = path.replace(['{', '}'], "");
        for m in &methods {
            let documented = ops.get(m.as_str().to_lowercase()).is_some();
            if documented && path == "/admin/login" {
                continue;
            }
            for creds in [None, Some("wrong")] {
                let mut r = reqwest::Client::new().request(m.clone(), format!("{url}{concrete}"));
                if let Some(c) = creds {
                    r = r.header("x-api-key", c).bearer_auth(c);
                }
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 401, "{m} {path} with {creds:?}: {v}");
                // The GES surface wraps errors in `status` (with `corrId`); the
                // administration keeps them flat.
                let (e, corr) = if path.starts_with("/engagement/") {
                    (&v["status"], "corrId")
                } else {
                    (&v, "correlationId")
                };
                assert!(
                    e["code"].as_u64().is_some_and(|c| c / 100 == 401) && e[corr].is_string(),
                    "{m} {path}: {v}"
                );
                probed += 1;
            }
        }
    }
    assert!(probed > 100, "{probed}");
    // The one public route still refuses an empty body with a JSON 400, not data.
    let (s, v) = call(
        Method::POST,
        &format!("{url}/admin/login"),
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    e.shutdown();
}

/// Routes are only added through utoipa-axum's `routes!`, which documents them; the only plain
/// `.route(` is the OpenAPI document itself. Scans the API's sources so a new file counts too.
#[test]
fn every_route_is_registered_with_its_openapi_description() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = vec![api.clone()];
    let mut plain = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with(".route(") {
                    plain.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert_eq!(plain.len(), 1, "{plain:#?}");
    let doc = serde_json::to_value(boomerang::api::openapi()).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/engagement/v3/callbacks/create",
        "/engagement/v3/estimated-wait-time",
        "/admin/login",
        "/admin/me",
    ] {
        assert!(paths.iter().any(|x| *x == p), "{p} not in {paths:?}");
    }
}

fn at(url: &str, path: &str) -> String {
    format!("{url}/admin{path}")
}

#[tokio::test]
async fn users_are_managed_by_administrators_audited_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let root = login(&url, "root").await;
    let sup = login(&url, "sup").await;
    let body = json!({"name": "lina", "password": "longenough", "roles": ["Monitor"], "queues": ["Service_VQ_CB"]});
    let (s, v) = call(
        Method::POST,
        &at(&url, "/users"),
        Some(&sup),
        Some(body.clone()),
    )
    .await;
    assert_eq!((s, v["code"].as_u64()), (403, Some(40301)), "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("ManageUsers"),
        "{v}"
    );
    let (s, v) = call(
        Method::POST,
        &at(&url, "/users"),
        Some(&root),
        Some(json!({"name": "x", "password": "short", "roles": ["Monitor"]})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["message"].as_str().unwrap().starts_with("password:"),
        "{v}"
    );
    let (s, v) = call(Method::POST, &at(&url, "/users"), Some(&root), Some(json!({"name": "x", "password": "longenough", "roles": ["Monitor"], "queues": ["Nope"]}))).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("Nope"), "{v}");
    let (s, v) = call(Method::POST, &at(&url, "/users"), Some(&root), Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["data"].get("passwordHash").is_none(), "{v}");
    let (s, _) = call(
        Method::POST,
        &at(&url, "/users"),
        Some(&root),
        Some(json!({"name": "lina", "password": "longenough", "roles": ["Monitor"]})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, v) = call(
        Method::PUT,
        &at(&url, "/users/sup"),
        Some(&root),
        Some(json!({"roles": ["Monitor"]})),
    )
    .await;
    assert_eq!(s, 409, "configuration users stay as written: {v}");
    let lina = {
        let (s, v) = call(
            Method::POST,
            &at(&url, "/login"),
            None,
            Some(json!({"username": "lina", "password": "longenough"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        v["data"]["accessToken"].as_str().unwrap().to_string()
    };
    // Roles change under an open session: it follows at the next request.
    let (s, _) = call(
        Method::PUT,
        &at(&url, "/users/lina"),
        Some(&root),
        Some(json!({"roles": ["Supervisor"], "queues": null})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = call(Method::GET, &at(&url, "/me"), Some(&lina), None).await;
    assert_eq!(v["data"]["roles"], json!(["Supervisor"]));
    assert_eq!(v["data"]["queues"], Value::Null);

    let (s, v) = call(Method::GET, &at(&url, "/audit"), Some(&root), None).await;
    assert_eq!(s, 200, "{v}");
    let actions: Vec<(&str, &str)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["user"].as_str().unwrap(), x["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![("root", "user.update"), ("root", "user.create")]
    );
    assert_eq!(
        v["data"][0]["detail"]["changed"],
        json!(["roles", "queues"])
    );
    let (s, _) = call(Method::GET, &at(&url, "/audit"), Some(&sup), None).await;
    assert_eq!(s, 403);

    e.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let (s, v) = call(
        Method::POST,
        &at(&url, "/login"),
        None,
        Some(json!({"username": "lina", "password": "longenough"})),
    )
    .await;
    assert_eq!(s, 200, "a stored user comes back after a restart: {v}");
    assert_eq!(v["data"]["user"]["roles"], json!(["Supervisor"]));
    let root = login(&url, "root").await;
    let (s, _) = call(Method::DELETE, &at(&url, "/users/lina"), Some(&root), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        Method::POST,
        &at(&url, "/login"),
        None,
        Some(json!({"username": "lina", "password": "longenough"})),
    )
    .await;
    assert_eq!(s, 401);
    let (_, v) = call(
        Method::GET,
        &at(&url, "/audit?action=user.delete"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    e.shutdown();
}

#[tokio::test]
async fn the_callback_tab_lists_edits_and_bulk_cancels_within_the_users_queues() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let (e, url) = engine(dir.path(), clock.shared()).await;
    let sup = login(&url, "sup").await;
    let mon = login(&url, "mon").await;
    let mut ids = Vec::new();
    for (i, q) in ["Sales_VQ_CB", "Sales_VQ_CB", "Sales_VQ_CB", "Service_VQ_CB"]
        .iter()
        .enumerate()
    {
        let when = (t0() + TimeDelta::hours(2 + i as i64)).to_rfc3339();
        let (s, v) = call(Method::POST, &at(&url, "/callbacks"), Some(&sup), Some(json!({"serviceName": q, "phoneNumber": format!("+3361234567{i}"), "desiredTime": when}))).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["callbackState"], "SCHEDULED");
        ids.push(v["data"]["id"].as_str().unwrap().to_string());
    }
    let (s, v) = call(
        Method::POST,
        &at(&url, "/callbacks"),
        Some(&mon),
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345699"})),
    )
    .await;
    assert_eq!(s, 403, "a Monitor only reads: {v}");

    // Line of business: the Sales-only monitor sees three, the supervisor four.
    let (s, v) = call(Method::GET, &at(&url, "/callbacks"), Some(&mon), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["callbacks"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"]["hasMore"], false);
    let (_, v) = call(Method::GET, &at(&url, "/callbacks"), Some(&sup), None).await;
    assert_eq!(v["data"]["callbacks"].as_array().unwrap().len(), 4);
    let (s, _) = call(
        Method::GET,
        &at(&url, "/callbacks?serviceName=Service_VQ_CB"),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        Method::GET,
        &at(&url, &format!("/callbacks/{}", ids[3])),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(
        s, 404,
        "another line of business's callback does not exist for the monitor"
    );
    let (s, v) = call(
        Method::GET,
        &at(&url, "/callbacks?state=WAITING"),
        Some(&sup),
        None,
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().starts_with("state:"), "{v}");
    let (_, v) = call(
        Method::GET,
        &at(&url, "/callbacks/search?q=%2B33%206%2012%2034%2056%2071"),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"][0]["id"], ids[1].as_str());
    let (_, v) = call(
        Method::GET,
        &at(&url, &format!("/callbacks/search?q={}", ids[3])),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0, "{v}");

    // Reschedule, then recreate the completed original; details carry metrics and history.
    let later = (t0() + TimeDelta::hours(8)).to_rfc3339();
    let (s, v) = call(
        Method::POST,
        &at(&url, &format!("/callbacks/{}/reschedule", ids[0])),
        Some(&sup),
        Some(json!({"desiredTime": later})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let moved = v["data"]["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        Method::GET,
        &at(&url, &format!("/callbacks/{}", ids[0])),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["callbackReason"], "RESCHEDULED");
    assert_eq!(v["data"]["metrics"]["rescheduled_by"], "sup", "{v}");
    assert!(v["data"]["history"].as_array().unwrap().len() >= 2, "{v}");
    let (s, v) = call(
        Method::POST,
        &at(&url, &format!("/callbacks/{}/recreate", ids[0])),
        Some(&sup),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["callbackState"], "QUEUED",
        "recreated as immediate"
    );

    // Bulk cancel of 10:00–14:00 in Sales: preview, then only the confirmed ids.
    let range = json!({"serviceName": "Sales_VQ_CB", "from": (t0() + TimeDelta::hours(1)).to_rfc3339(), "to": (t0() + TimeDelta::hours(5)).to_rfc3339()});
    let (s, v) = call(
        Method::POST,
        &at(&url, "/callbacks/bulk-cancel/preview"),
        Some(&sup),
        Some(range.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let listed: Vec<&str> = v["data"]["toCancel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{v}");
    assert!(listed.contains(&ids[1].as_str()) && listed.contains(&ids[2].as_str()));
    let mut confirm = range.clone();
    confirm["ids"] = json!([ids[1], moved]);
    let (s, v) = call(
        Method::POST,
        &at(&url, "/callbacks/bulk-cancel"),
        Some(&sup),
        Some(confirm),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["cancelled"], json!([ids[1]]));
    assert_eq!(
        v["data"]["skipped"][0]["id"],
        moved.as_str(),
        "outside the range: left alone"
    );
    let summary = v["data"]["summaryId"].as_str().unwrap().to_string();
    let (_, v) = call(
        Method::GET,
        &at(&url, &format!("/callbacks/{}", ids[2])),
        Some(&sup),
        None,
    )
    .await;
    assert_eq!(
        v["data"]["callbackState"], "SCHEDULED",
        "not confirmed, not cancelled"
    );
    let (_, v) = call(
        Method::GET,
        &at(&url, &format!("/callbacks/{}", ids[1])),
        Some(&sup),
        None,
    )
    .await;
    assert_eq!(v["data"]["callbackReason"], "CANCELLED_BY_ADMIN");

    let r = reqwest::Client::new()
        .get(at(
            &url,
            &format!("/callbacks/bulk-cancel/{summary}/summary.csv"),
        ))
        .bearer_auth(&sup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,serviceName,phoneNumber,desiredTime,previousState,result,reason"
    );
    assert!(
        lines[1].starts_with(&format!("{},Sales_VQ_CB,+33612345671,", ids[1]))
            && lines[1].contains(",SCHEDULED,CANCELLED,"),
        "{csv}"
    );
    assert!(lines[2].contains("SKIPPED"), "{csv}");
    let (s, _) = call(
        Method::GET,
        &at(
            &url,
            &format!("/callbacks/bulk-cancel/{summary}/summary.csv"),
        ),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(s, 403, "export needs Supervisor or Administrator");
    let root = login(&url, "root").await;
    let (_, v) = call(
        Method::GET,
        &at(&url, "/audit?action=callback."),
        Some(&root),
        None,
    )
    .await;
    let actions: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..3],
        [
            "callback.bulk_cancel",
            "callback.recreate",
            "callback.reschedule"
        ]
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "callback.create").count(),
        4
    );
    e.shutdown();
}

#[tokio::test]
async fn rate_limits_apply_per_key_and_per_user_on_the_engine_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let (e, url) = engine_limited(dir.path(), clock.shared(), 3).await;
    let status = |key: &'static str| {
        let url = url.clone();
        async move {
            let r = reqwest::Client::new()
                .get(format!(
                    "{url}/engagement/v3/callbacks/queue-status/Sales_VQ_CB"
                ))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                r.status().as_u16(),
                retry,
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for _ in 0..3 {
        assert_eq!(status(KEY).await.0, 200);
    }
    let (s, retry, v) = status(KEY).await;
    assert_eq!(
        (s, retry.as_deref(), v["status"]["code"].as_u64()),
        (429, Some("1"), Some(42902)),
        "{v}"
    );
    assert!(v["status"]["corrId"].is_string());
    assert_eq!(
        status("other-key").await.0,
        200,
        "another key has its own budget"
    );
    clock.advance(TimeDelta::milliseconds(400));
    assert_eq!(
        status(KEY).await.0,
        200,
        "a third of a second refills one request"
    );
    assert_eq!(status(KEY).await.0, 429);

    // Administration users have the same budget per user, whatever the token.
    let a = login(&url, "root").await;
    let b = login(&url, "root").await;
    let mut codes = Vec::new();
    for t in [&a, &b, &a, &b] {
        codes.push(call(Method::GET, &at(&url, "/me"), Some(t), None).await.0);
    }
    assert_eq!(codes, [200, 200, 200, 429]);
    // Logins: a burst of five per address, then two per second.
    let mut codes = Vec::new();
    for _ in 0..6 {
        let (s, _) = call(
            Method::POST,
            &at(&url, "/login"),
            None,
            Some(json!({"username": "root", "password": "bad"})),
        )
        .await;
        codes.push(s);
    }
    assert_eq!(
        codes,
        [401, 401, 401, 429, 429, 429],
        "two logins above already used the burst"
    );
    e.shutdown();
}

/// Every `/admin` route (from the OpenAPI document, so none is forgotten) called by one user per
/// role: 403 exactly when the role lacks the route's permission.
#[tokio::test]
async fn every_admin_route_checks_its_permission_for_every_role() {
    use boomerang::api::admin::{Permission as P, Role};
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let id = uuid::Uuid::new_v4();
    let when = (t0() + TimeDelta::days(1)).to_rfc3339();
    let range = json!({"serviceName": "Sales_VQ_CB", "from": t0().to_rfc3339(), "to": when});
    let mut bulk = range.clone();
    bulk["ids"] = json!([]);
    let table: Vec<(Method, String, &str, Option<Value>, P)> = vec![
        (
            Method::GET,
            "/audit".into(),
            "/admin/audit",
            None,
            P::ReadAudit,
        ),
        (
            Method::GET,
            "/users".into(),
            "/admin/users",
            None,
            P::ManageUsers,
        ),
        (
            Method::POST,
            "/users".into(),
            "/admin/users",
            Some(json!({"name": "t1", "password": "longenough", "roles": ["Monitor"]})),
            P::ManageUsers,
        ),
        (
            Method::PUT,
            "/users/nobody".into(),
            "/admin/users/{name}",
            Some(json!({})),
            P::ManageUsers,
        ),
        (
            Method::DELETE,
            "/users/nobody".into(),
            "/admin/users/{name}",
            None,
            P::ManageUsers,
        ),
        (
            Method::GET,
            "/callbacks".into(),
            "/admin/callbacks",
            None,
            P::ReadCallbacks,
        ),
        (
            Method::POST,
            "/callbacks".into(),
            "/admin/callbacks",
            Some(
                json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678", "desiredTime": when}),
            ),
            P::WriteCallbacks,
        ),
        (
            Method::GET,
            "/callbacks/search?q=%2B33612345678".into(),
            "/admin/callbacks/search",
            None,
            P::ReadCallbacks,
        ),
        (
            Method::GET,
            format!("/callbacks/{id}"),
            "/admin/callbacks/{id}",
            None,
            P::ReadCallbacks,
        ),
        (
            Method::POST,
            format!("/callbacks/{id}/cancel"),
            "/admin/callbacks/{id}/cancel",
            None,
            P::WriteCallbacks,
        ),
        (
            Method::POST,
            format!("/callbacks/{id}/reschedule"),
            "/admin/callbacks/{id}/reschedule",
            Some(json!({"desiredTime": when})),
            P::WriteCallbacks,
        ),
        (
            Method::POST,
            format!("/callbacks/{id}/recreate"),
            "/admin/callbacks/{id}/recreate",
            Some(json!({})),
            P::WriteCallbacks,
        ),
        (
            Method::POST,
            "/callbacks/bulk-cancel/preview".into(),
            "/admin/callbacks/bulk-cancel/preview",
            Some(range),
            P::WriteCallbacks,
        ),
        (
            Method::POST,
            "/callbacks/bulk-cancel".into(),
            "/admin/callbacks/bulk-cancel",
            Some(bulk),
            P::WriteCallbacks,
        ),
        (
            Method::GET,
            format!("/callbacks/bulk-cancel/{id}/summary.csv"),
            "/admin/callbacks/bulk-cancel/{id}/summary.csv",
            None,
            P::ExportCallbacks,
        ),
        (
            Method::GET,
            "/developer/errors".into(),
            "/admin/developer/errors",
            None,
            P::DeveloperTools,
        ),
        (
            Method::GET,
            "/push/outbox".into(),
            "/admin/push/outbox",
            None,
            P::DeveloperTools,
        ),
        (
            Method::POST,
            "/developer/api-keys/validate".into(),
            "/admin/developer/api-keys/validate",
            Some(json!({"key": "x"})),
            P::DeveloperTools,
        ),
        (
            Method::GET,
            "/developer/cors-origins".into(),
            "/admin/developer/cors-origins",
            None,
            P::DeveloperTools,
        ),
        (
            Method::GET,
            "/queues".into(),
            "/admin/queues",
            None,
            P::UseTools,
        ),
        (
            Method::GET,
            "/agents".into(),
            "/admin/agents",
            None,
            P::UseTools,
        ),
        (
            Method::POST,
            "/agents".into(),
            "/admin/agents",
            Some(json!({"id": "zed"})),
            P::ManageAgents,
        ),
        (
            Method::PUT,
            "/agents/nobody".into(),
            "/admin/agents/{id}",
            Some(json!({})),
            P::ManageAgents,
        ),
        (
            Method::DELETE,
            "/agents/nobody".into(),
            "/admin/agents/{id}",
            None,
            P::ManageAgents,
        ),
        (
            Method::POST,
            "/agents/nobody/state".into(),
            "/admin/agents/{id}/state",
            Some(json!({"state": "ready"})),
            P::ManageAgents,
        ),
        (
            Method::POST,
            "/reload".into(),
            "/admin/reload",
            None,
            P::ReloadConfig,
        ),
        // Rules and Click-to-Call-In groups (`rules.rs`, `groups.rs`).
        (
            Method::GET,
            "/rules/number".into(),
            "/admin/rules/number",
            None,
            P::ReadRules,
        ),
        (
            Method::POST,
            "/rules/number".into(),
            "/admin/rules/number",
            Some(json!({"name": "t", "countries": ["FR"]})),
            P::WriteNumberRules,
        ),
        (
            Method::GET,
            "/rules/number/nobody".into(),
            "/admin/rules/number/{name}",
            None,
            P::ReadRules,
        ),
        (
            Method::PUT,
            "/rules/number/nobody".into(),
            "/admin/rules/number/{name}",
            Some(json!({"name": "nobody", "countries": ["FR"]})),
            P::WriteNumberRules,
        ),
        (
            Method::DELETE,
            "/rules/number/nobody".into(),
            "/admin/rules/number/{name}",
            None,
            P::WriteNumberRules,
        ),
        (
            Method::POST,
            "/rules/number/nobody/test".into(),
            "/admin/rules/number/{name}/test",
            Some(json!({"phoneNumber": "+33612345678"})),
            P::ReadRules,
        ),
        (
            Method::GET,
            "/rules/capacity".into(),
            "/admin/rules/capacity",
            None,
            P::ReadRules,
        ),
        (
            Method::POST,
            "/rules/capacity".into(),
            "/admin/rules/capacity",
            Some(json!({"name": "t", "capacity": {"days": {}, "duration": 60}})),
            P::WriteCapacityRules,
        ),
        (
            Method::GET,
            "/rules/capacity/nobody".into(),
            "/admin/rules/capacity/{name}",
            None,
            P::ReadRules,
        ),
        (
            Method::PUT,
            "/rules/capacity/nobody".into(),
            "/admin/rules/capacity/{name}",
            Some(json!({"name": "nobody", "capacity": {"days": {}, "duration": 60}})),
            P::WriteCapacityRules,
        ),
        (
            Method::DELETE,
            "/rules/capacity/nobody".into(),
            "/admin/rules/capacity/{name}",
            None,
            P::WriteCapacityRules,
        ),
        (
            Method::PUT,
            "/rules/capacity/nobody/duration".into(),
            "/admin/rules/capacity/{name}/duration",
            Some(json!({"duration": 30})),
            P::WriteCapacityRules,
        ),
        (
            Method::GET,
            "/rules/affinity".into(),
            "/admin/rules/affinity",
            None,
            P::ReadRules,
        ),
        (
            Method::POST,
            "/rules/affinity".into(),
            "/admin/rules/affinity",
            Some(json!({"name": "t", "preferred": ["eu-west"]})),
            P::WriteRegionRules,
        ),
        (
            Method::GET,
            "/rules/affinity/nobody".into(),
            "/admin/rules/affinity/{name}",
            None,
            P::ReadRules,
        ),
        (
            Method::PUT,
            "/rules/affinity/nobody".into(),
            "/admin/rules/affinity/{name}",
            Some(json!({"name": "nobody", "preferred": ["eu-west"]})),
            P::WriteRegionRules,
        ),
        (
            Method::DELETE,
            "/rules/affinity/nobody".into(),
            "/admin/rules/affinity/{name}",
            None,
            P::WriteRegionRules,
        ),
        (
            Method::GET,
            "/rules/queues".into(),
            "/admin/rules/queues",
            None,
            P::ReadRules,
        ),
        (
            Method::GET,
            "/rules/queues/Sales_VQ_CB".into(),
            "/admin/rules/queues/{queue}",
            None,
            P::ReadRules,
        ),
        (
            Method::PUT,
            "/rules/queues/Sales_VQ_CB".into(),
            "/admin/rules/queues/{queue}",
            Some(json!({"numberRule": null})),
            P::WriteNumberRules,
        ),
        (
            Method::GET,
            "/callin/groups".into(),
            "/admin/callin/groups",
            None,
            P::ReadRules,
        ),
        (
            Method::POST,
            "/callin/groups".into(),
            "/admin/callin/groups",
            Some(json!({"name": "t", "dnis": [{"number": "+18005555554"}]})),
            P::WriteCallInGroups,
        ),
        (
            Method::GET,
            "/callin/groups/nobody".into(),
            "/admin/callin/groups/{name}",
            None,
            P::ReadRules,
        ),
        (
            Method::PUT,
            "/callin/groups/nobody".into(),
            "/admin/callin/groups/{name}",
            Some(json!({"name": "nobody", "dnis": [{"number": "+18005555554"}]})),
            P::WriteCallInGroups,
        ),
        (
            Method::DELETE,
            "/callin/groups/nobody".into(),
            "/admin/callin/groups/{name}",
            None,
            P::WriteCallInGroups,
        ),
        (
            Method::POST,
            "/callin/groups/nobody/dnis/import".into(),
            "/admin/callin/groups/{name}/dnis/import",
            None,
            P::WriteCallInGroups,
        ),
        (
            Method::GET,
            "/callin/records".into(),
            "/admin/callin/records",
            None,
            P::ReadCallIn,
        ),
        (
            Method::GET,
            "/recordings".into(),
            "/admin/recordings",
            None,
            P::ReadCallbacks,
        ),
        (
            Method::GET,
            format!("/recordings/{id}"),
            "/admin/recordings/{id}",
            None,
            P::ExportCallbacks,
        ),
        (
            Method::GET,
            "/surveys.csv".into(),
            "/admin/surveys.csv",
            None,
            P::ExportCallbacks,
        ),
    ];
    // The table covers every documented admin route but the three any user may call.
    let doc = serde_json::to_value(boomerang::api::openapi()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            if path.starts_with("/admin/")
                && !["/admin/login", "/admin/logout", "/admin/me"].contains(&path.as_str())
            {
                documented.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    let mut covered: Vec<(String, String)> = table
        .iter()
        .map(|(m, _, t, _, _)| (m.to_string(), t.to_string()))
        .collect();
    documented.sort();
    covered.sort();
    assert_eq!(covered, documented);

    let users = [
        ("root", Role::Administrator),
        ("sup", Role::Supervisor),
        ("mon", Role::Monitor),
        ("dev", Role::Developer),
    ];
    let mut tokens = Vec::new();
    for (name, _) in users {
        tokens.push(login(&url, name).await);
    }
    for (m, path, _, body, perm) in &table {
        for ((name, role), token) in users.iter().zip(&tokens) {
            let (s, v) = call(m.clone(), &at(&url, path), Some(token), body.clone()).await;
            if role.grants(*perm) {
                assert!(
                    s != 403 && s != 401 && s < 500,
                    "{name} {m} {path}: {s} {v}"
                );
            } else {
                assert_eq!(
                    (s, v["code"].as_u64()),
                    (403, Some(40301)),
                    "{name} {m} {path}: {v}"
                );
            }
        }
    }
    e.shutdown();
}

#[tokio::test]
async fn developer_tools_queues_agents_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let dev = login(&url, "dev").await;
    let root = login(&url, "root").await;
    let sup = login(&url, "sup").await;

    // An app's failed request, found by its correlation id.
    let r = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .header("x-correlation-id", "app-req-42")
        .json(&json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "12"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (s, v) = call(
        Method::GET,
        &at(&url, "/developer/errors?correlationId=app-req-42"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["data"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("phoneNumber:"),
        "{v}"
    );
    assert_eq!(v["data"][0]["uri"], "/engagement/v3/callbacks/create");
    let (_, v) = call(
        Method::POST,
        &at(&url, "/developer/api-keys/validate"),
        Some(&dev),
        Some(json!({"key": KEY})),
    )
    .await;
    assert_eq!(
        (v["data"]["valid"].as_bool(), v["data"]["name"].as_str()),
        (Some(true), Some("t")),
        "{v}"
    );
    let (_, v) = call(
        Method::POST,
        &at(&url, "/developer/api-keys/validate"),
        Some(&dev),
        Some(json!({"key": "guess"})),
    )
    .await;
    assert_eq!(v["data"]["valid"], false);
    let (_, v) = call(
        Method::GET,
        &at(&url, "/developer/cors-origins"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(v["data"]["origins"], json!([]));

    // An immediate callback waits in Sales: the queues page shows it.
    let (s, v) = call(
        Method::POST,
        &at(&url, "/callbacks"),
        Some(&sup),
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = call(Method::GET, &at(&url, "/queues"), Some(&sup), None).await;
    let sales = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "Sales_VQ_CB")
        .unwrap()
        .clone();
    assert_eq!(sales["waiting"], 1, "{v}");
    assert_eq!(sales["callbacksByState"]["QUEUED"], 1, "{v}");
    assert_eq!(sales["estimatedWaitTime"], -1);
    assert_eq!(
        sales["hoursToday"][0]["open"], "2026-03-02T00:00:00+00:00",
        "always open: {v}"
    );
    assert_eq!(sales["rules"]["capacity"], false);

    // Alice made ready through the API takes the waiting callback at once.
    let (s, v) = call(
        Method::POST,
        &at(&url, "/agents/alice/state"),
        Some(&root),
        Some(json!({"state": "ready"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // As in the seed, the agent stays ready while the customer is dialled; the callback has
    // left the queue to be dialled.
    assert_eq!(v["data"]["state"], "ready", "{v}");
    let (_, v) = call(Method::GET, &at(&url, "/queues"), Some(&sup), None).await;
    let sales = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "Sales_VQ_CB")
        .unwrap()
        .clone();
    assert_eq!(
        sales["waiting"], 0,
        "her readiness triggered the waiting callback: {v}"
    );
    let (s, v) = call(
        Method::POST,
        &at(&url, "/agents/alice/state"),
        Some(&root),
        Some(json!({"state": "on_break"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // Skills apply at once: with Sales 1 she no longer serves Sales_VQ_CB (Sales > 3).
    let (s, v) = call(
        Method::PUT,
        &at(&url, "/agents/alice"),
        Some(&root),
        Some(json!({"skills": {"Sales": 1}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = reqwest::Client::new()
        .get(format!("{url}/engagement/v3/statistics"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let q = v["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["virtualQueue"] == "Sales_VQ_CB")
        .unwrap()
        .clone();
    assert_eq!(q["agentsLoggedIn"], 0, "{v}");
    let (s, v) = call(
        Method::PUT,
        &at(&url, "/agents/alice"),
        Some(&root),
        Some(json!({"skills": {"Sales": 11}})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("0 to 10"), "{v}");
    let (s, v) = call(
        Method::POST,
        &at(&url, "/agents"),
        Some(&root),
        Some(json!({"id": "dora", "skills": {"Sales": 9}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["data"]["appliesAt"].as_str(), v["data"]["state"].as_str()),
        (Some("restart"), Some("not_started"))
    );

    // Reload: a broken file changes nothing; a good one applies users and skills.
    let file = dir.path().join("boomerang.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        original.replace(
            "- {name: Service_VQ_CB}",
            "- {name: Service_VQ_CB, slot_capacity: -1}",
        ),
    )
    .unwrap();
    let (s, v) = call(Method::POST, &at(&url, "/reload"), Some(&root), None).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("queues[1].slot_capacity: -1 is out of range"),
        "{v}"
    );
    let hash = hash_password(PASSWORD).unwrap();
    let edited = original
        .replace("{id: alice, skills: {Sales: 7}}", "{id: alice, skills: {Sales: 8}}")
        // A queue added needs a restart (a queue's settings would apply at once).
        .replace("  - {name: Service_VQ_CB}", "  - {name: Service_VQ_CB}\n  - {name: Extra_VQ}")
        .replace("    - {name: dev,", &format!("    - {{name: ops, password_hash: '{hash}', roles: [Supervisor]}}\n    - {{name: dev,"));
    std::fs::write(&file, edited).unwrap();
    let (s, v) = call(Method::POST, &at(&url, "/reload"), Some(&root), None).await;
    assert_eq!(s, 200, "{v}");
    let applied: Vec<&str> = v["data"]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        applied,
        ["admin user `ops` updated", "agent `alice` skills"],
        "{v}"
    );
    assert_eq!(v["data"]["restartNeeded"], json!(["queues"]));
    let _ = login(&url, "ops").await;
    let (_, v) = call(
        Method::GET,
        &at(&url, "/audit?action=config."),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        1,
        "only the good reload changed something: {v}"
    );
    e.shutdown();
}
