//! The administration API over a real HTTP client on loopback: login, sessions that idle out on
//! the engine's clock, roles and per-queue read permission, and the route table closed to
//! anonymous callers.

use std::path::Path;
use std::sync::Arc;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An engine with one user per role, a Sales-only monitor and two queues.
async fn engine(dir: &Path, clock: SharedClock) -> (Engine, String) {
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
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
    let cfg = Config::from_str_in(&yaml, dir).unwrap();
    let e = Engine::start(Arc::new(cfg), clock).await.unwrap();
    let url = format!("http://{}", e.http_addr);
    (e, url)
}

async fn call(method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(url: &str, user: &str) -> String {
    let (s, v) = call(
        Method::POST,
        &format!("{url}/admin/login"),
        None,
        Some(json!({"username": user, "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["data"]["accessToken"].as_str().unwrap().to_string()
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
                assert!(
                    v["code"].as_u64().is_some_and(|c| c / 100 == 401)
                        && v["correlationId"].is_string(),
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
