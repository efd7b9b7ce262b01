//! Rules and Click-to-Call-In groups administered over a real HTTP client on loopback: each
//! change is in force on the public API at once, survives a restart, is refused with a JSON
//! error naming the field when bad, and is allowed or refused per the seed's role matrix.

use std::path::Path;
use std::sync::Arc;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

use crate::common::monday_9am_utc as t0;

/// One user per role (the monitor reads Sales only), two queues, one call-in group in the file.
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
queues:
  - {{name: Sales_VQ_CB, slot_capacity: 10, slot_duration_minutes: 15}}
  - {{name: Service_VQ_CB}}
callin_groups:
  - {{name: FileApp, dnis: [{{number: '+8001'}}]}}
"
    );
    let cfg = Config::from_str_in(&yaml, dir).unwrap();
    let e = Engine::start(Arc::new(cfg), clock).await.unwrap();
    let url = format!("http://{}", e.http_addr);
    (e, url)
}

/// Sends a request as a user (bearer token) or with the API key; returns status and JSON.
async fn call(method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    r = match token {
        Some(t) => r.bearer_auth(t),
        None => r.header("x-api-key", KEY),
    };
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(url: &str, user: &str) -> String {
    crate::common::admin_login(url, user, PASSWORD).await
}

/// The error object: `status` on the GES surface, the body itself on the administration.
fn error_of(v: &Value) -> &Value {
    if v["status"].is_object() {
        &v["status"]
    } else {
        v
    }
}

fn message(v: &Value) -> &str {
    error_of(v)["message"].as_str().unwrap_or_default()
}

/// A JSON error as every non-2xx answer must be.
fn assert_error(status: u16, v: &Value, want: u16, starts: &str) {
    assert_eq!(status, want, "{v}");
    let e = error_of(v);
    assert_eq!(
        e["code"].as_u64().map(|c| c / 100),
        Some(want as u64),
        "{v}"
    );
    assert!(
        e["correlationId"]
            .as_str()
            .or(e["corrId"].as_str())
            .is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    assert!(message(v).starts_with(starts), "expected `{starts}…`: {v}");
}

async fn create_callback(url: &str, phone: &str) -> (u16, Value) {
    call(
        Method::POST,
        &format!("{url}/engagement/v3/callbacks/create"),
        None,
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": phone})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_rules_are_enforced_at_once_by_role_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let (e, url) = engine(dir.path(), clock.shared()).await;
    let root = login(&url, "root").await;
    let mon = login(&url, "mon").await;
    let sup = login(&url, "sup").await;
    let rules = format!("{url}/admin/rules/number");
    let eu = json!({"name": "eu", "countries": ["fr", "BE"], "blockedPatterns": ["^33899"]});

    // A Monitor reads rules but may not change them.
    let (s, v) = call(Method::POST, &rules, Some(&mon), Some(eu.clone())).await;
    assert_error(s, &v, 403, "");
    assert!(message(&v).contains("WriteNumberRules"), "{v}");
    let (s, v) = call(Method::GET, &rules, Some(&mon), None).await;
    assert_eq!((s, v["data"].clone()), (200, json!([])), "{v}");
    // No token at all: 401.
    let r = reqwest::Client::new().get(&rules).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Bad definitions name the field.
    let (s, v) = call(
        Method::POST,
        &rules,
        Some(&root),
        Some(json!({"name": "x", "countries": ["XX"]})),
    )
    .await;
    assert_error(s, &v, 400, "countries:");
    let (s, v) = call(
        Method::POST,
        &rules,
        Some(&root),
        Some(json!({"name": "x", "countries": ["FR"], "blockedPatterns": ["(oops"]})),
    )
    .await;
    assert_error(s, &v, 400, "blockedPatterns:");
    let (s, v) = call(
        Method::POST,
        &rules,
        Some(&root),
        Some(json!({"name": "x", "countries": ["FR"], "colour": "red"})),
    )
    .await;
    assert_error(s, &v, 400, "");
    assert!(message(&v).contains("colour"), "{v}");

    // Bodies stay bounded by api.max_body_bytes (64 KiB) outside the CSV import.
    let huge: Vec<String> = (0..5000).map(|i| format!("^33{i:012}")).collect();
    let (s, v) = call(
        Method::POST,
        &rules,
        Some(&root),
        Some(json!({"name": "x", "countries": ["FR"], "blockedPatterns": huge})),
    )
    .await;
    assert_error(s, &v, 413, "");

    // The guide lets a Supervisor edit number rules.
    let (s, v) = call(Method::POST, &rules, Some(&sup), Some(eu.clone())).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["countries"], json!(["BE", "FR"]));
    let (s, v) = call(Method::POST, &rules, Some(&root), Some(eu.clone())).await;
    assert_error(s, &v, 409, "name:");

    // Test a number: country first, then patterns.
    let test = format!("{rules}/eu/test");
    let (_, v) = call(
        Method::POST,
        &test,
        Some(&mon),
        Some(json!({"phoneNumber": "+44 20 7946 0000"})),
    )
    .await;
    assert_eq!(v["data"]["valid"], false, "{v}");
    assert_eq!(v["data"]["failedCheck"], "country", "{v}");
    let (_, v) = call(
        Method::POST,
        &test,
        Some(&mon),
        Some(json!({"phoneNumber": "+33899123456"})),
    )
    .await;
    assert_eq!(v["data"]["failedCheck"], "pattern", "{v}");
    let (_, v) = call(
        Method::POST,
        &test,
        Some(&mon),
        Some(json!({"phoneNumber": "+33 6 12 34 56 78"})),
    )
    .await;
    assert_eq!(
        v["data"],
        json!({"valid": true, "phoneNumber": "+33612345678"})
    );

    // Before assignment the public API takes a GB number; after, it refuses it.
    let (s, v) = create_callback(&url, "+442079460000").await;
    assert_eq!(s, 200, "{v}");
    let assign = format!("{url}/admin/rules/queues/Sales_VQ_CB");
    let (s, v) = call(
        Method::PUT,
        &assign,
        Some(&mon),
        Some(json!({"numberRule": "eu"})),
    )
    .await;
    assert_error(s, &v, 403, "");
    let (s, v) = call(
        Method::PUT,
        &assign,
        Some(&root),
        Some(json!({"numberRule": "nope"})),
    )
    .await;
    assert_error(s, &v, 400, "numberRule:");
    let (s, v) = call(
        Method::PUT,
        &format!("{url}/admin/rules/queues/Nope_VQ"),
        Some(&root),
        Some(json!({"numberRule": "eu"})),
    )
    .await;
    assert_error(s, &v, 404, "queue:");
    let (s, v) = call(
        Method::PUT,
        &assign,
        Some(&root),
        Some(json!({"numberRule": "eu"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["numberRule"], "eu");
    let (s, v) = create_callback(&url, "+442079460000").await;
    assert_error(s, &v, 400, "phoneNumber:");
    let (s, _) = create_callback(&url, "+33612345678").await;
    assert_eq!(s, 200);

    // The rule lists its queue; the Sales-only monitor sees only Sales in the queue list.
    let (_, v) = call(Method::GET, &format!("{rules}/eu"), Some(&root), None).await;
    assert_eq!(v["data"]["queues"], json!(["Sales_VQ_CB"]));
    let (_, v) = call(
        Method::GET,
        &format!("{url}/admin/rules/queues"),
        Some(&mon),
        None,
    )
    .await;
    assert_eq!(
        v["data"],
        json!({"Sales_VQ_CB": {"numberRule": "eu", "capacityRule": null, "affinityRule": null}})
    );
    let (s, v) = call(
        Method::GET,
        &format!("{url}/admin/rules/queues/Service_VQ_CB"),
        Some(&mon),
        None,
    )
    .await;
    assert_error(s, &v, 403, "");
    let (s, v) = call(Method::DELETE, &format!("{rules}/eu"), Some(&root), None).await;
    assert_error(s, &v, 409, "name:");
    assert!(message(&v).contains("Sales_VQ_CB"), "{v}");

    // Who changed what is in the audit log, stored with each change.
    let (s, v) = call(
        Method::GET,
        &format!("{url}/admin/audit?action=number_rule."),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let entries = v["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{v}");
    assert_eq!(entries[0]["user"], "sup");
    assert_eq!(entries[0]["action"], "number_rule.create");
    assert_eq!(
        entries[0]["detail"]["rule"]["blockedPatterns"],
        json!(["^33899"])
    );
    let (_, v) = call(
        Method::GET,
        &format!("{url}/admin/audit?action=queue_rules.assign"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        v["data"][0]["detail"],
        json!({"queue": "Sales_VQ_CB", "set": {"numberRule": "eu"}})
    );

    // An edit is in force at once: block French mobiles.
    let (s, v) = call(
        Method::PUT,
        &format!("{rules}/eu"),
        Some(&root),
        Some(json!({"name": "eu", "countries": ["FR"], "blockedPatterns": ["^336"]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = create_callback(&url, "+33612345678").await;
    assert_error(s, &v, 400, "phoneNumber:");
    assert!(message(&v).contains("^336"), "{v}");
    e.shutdown();

    // A restart on the same data: the rule and its assignment are back and in force.
    let (e, url) = engine(dir.path(), clock.shared()).await;
    let (s, v) = create_callback(&url, "+33612345678").await;
    assert_error(s, &v, 400, "phoneNumber:");
    let (s, _) = create_callback(&url, "+33123456789").await;
    assert_eq!(s, 200);
    let root = login(&url, "root").await;
    let (s, v) = call(
        Method::PUT,
        &format!("{url}/admin/rules/queues/Sales_VQ_CB"),
        Some(&root),
        Some(json!({"numberRule": null})),
    )
    .await;
    assert_eq!((s, v["data"]["numberRule"].clone()), (200, Value::Null));
    let (s, v) = call(
        Method::DELETE,
        &format!("{url}/admin/rules/number/eu"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = create_callback(&url, "+33612345678").await;
    assert_eq!(s, 200);
    e.shutdown();
}

/// Slot totals of Sales_VQ_CB from 10:00 on the test's Monday, as the public API reports them.
async fn totals(url: &str) -> Vec<u64> {
    let (s, v) = call(
        Method::GET,
        &format!(
            "{url}/engagement/v3/callbacks/availability/Sales_VQ_CB?start=2026-03-02T10:00:00Z&maxTimeSlots=6"
        ),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["data"]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["total"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_and_affinity_rules_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    let root = login(&url, "root").await;
    let sup = login(&url, "sup").await;
    let cap = format!("{url}/admin/rules/capacity");
    let statement = json!({"days": {"mon": {"10:00": 3, "11:00": 5}}, "duration": 60});

    // Capacity rules are Administrator-only to write; a Supervisor reads them.
    let (s, v) = call(
        Method::POST,
        &cap,
        Some(&sup),
        Some(json!({"name": "March", "capacity": statement})),
    )
    .await;
    assert_error(s, &v, 403, "");
    let (s, v) = call(
        Method::POST,
        &cap,
        Some(&root),
        Some(json!({"name": "bad", "capacity": {"days": {"mon": {"10:30": 1}}, "duration": 60}})),
    )
    .await;
    assert_error(s, &v, 400, "capacity.days.mon.10:30:");
    let (s, v) = call(
        Method::POST,
        &cap,
        Some(&root),
        Some(json!({"name": "bad", "capacity": {"days": {}, "duration": 15}})),
    )
    .await;
    assert_error(s, &v, 400, "capacity.duration:");
    let (s, v) = call(
        Method::POST,
        &cap,
        Some(&root),
        Some(json!({"name": "March", "capacity": statement})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["capacity"], statement);

    assert_eq!(totals(&url).await, vec![10; 6], "the queue's slot capacity");
    let (s, v) = call(
        Method::PUT,
        &format!("{url}/admin/rules/queues/Sales_VQ_CB"),
        Some(&root),
        Some(json!({"capacityRule": "March"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(totals(&url).await, vec![3, 3, 3, 3, 5, 5]);
    let (s, v) = call(Method::DELETE, &format!("{cap}/March"), Some(&root), None).await;
    assert_error(s, &v, 409, "name:");

    // Half-hour cells: each hour repeated at :30.
    let (s, v) = call(
        Method::PUT,
        &format!("{cap}/March/duration"),
        Some(&root),
        Some(json!({"duration": 30})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["capacity"],
        json!({"days": {"mon": {"10:00": 3, "10:30": 3, "11:00": 5, "11:30": 5}}, "duration": 30})
    );
    // A statement pasted over the rule replaces it wholly.
    let (s, v) = call(
        Method::PUT,
        &format!("{cap}/March"),
        Some(&root),
        Some(json!({"name": "March", "capacity": {"days": {"mon": {"10:30": 7}}, "duration": 30}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        totals(&url).await,
        vec![7, 7],
        "10:00 and 11:00 are now empty"
    );
    let (_, v) = call(Method::GET, &cap, Some(&sup), None).await;
    assert_eq!(v["data"][0]["queues"], json!(["Sales_VQ_CB"]), "{v}");

    // Region affinity: Administrator-only, ordered, at least one preferred region.
    let aff = format!("{url}/admin/rules/affinity");
    let (s, v) = call(
        Method::POST,
        &aff,
        Some(&root),
        Some(json!({"name": "sf", "preferred": []})),
    )
    .await;
    assert_error(s, &v, 400, "preferred:");
    let rule = json!({"name": "sf", "preferred": ["n-california", "s-california"], "fallback": ["oregon"], "ignored": ["virginia"]});
    let (s, v) = call(Method::POST, &aff, Some(&sup), Some(rule.clone())).await;
    assert_error(s, &v, 403, "");
    let (s, v) = call(Method::POST, &aff, Some(&root), Some(rule.clone())).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        Method::PUT,
        &format!("{url}/admin/rules/queues/Service_VQ_CB"),
        Some(&root),
        Some(json!({"affinityRule": "sf"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    e.shutdown();

    let (e, url) = engine(dir.path(), ManualClock::new(t0()).shared()).await;
    assert_eq!(totals(&url).await, vec![7, 7]);
    let root = login(&url, "root").await;
    let (_, v) = call(
        Method::GET,
        &format!("{url}/admin/rules/affinity/sf"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(v["data"]["preferred"], rule["preferred"], "{v}");
    assert_eq!(v["data"]["queues"], json!(["Service_VQ_CB"]), "{v}");
    e.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_in_groups_csv_import_and_records_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t0());
    let (e, url) = engine(dir.path(), clock.shared()).await;
    let root = login(&url, "root").await;
    let mon = login(&url, "mon").await;
    let dev = login(&url, "dev").await;
    let groups = format!("{url}/admin/callin/groups");
    let group = json!({
        "name": "auto_insurance",
        "dnis": [{"number": "+18005555554", "description": "Claims"}],
        "generateAccessCode": true,
        "accessCodeLength": 8,
        "expirySeconds": 60,
        "uniqueDnis": true
    });

    let (s, v) = call(Method::POST, &groups, Some(&mon), Some(group.clone())).await;
    assert_error(s, &v, 403, "");
    let mut bad = group.clone();
    bad["accessCodeLength"] = json!(13);
    let (s, v) = call(Method::POST, &groups, Some(&root), Some(bad)).await;
    assert_error(s, &v, 400, "accessCodeLength:");
    let mut bad = group.clone();
    bad["dnis"] = json!([{"number": "+1800555555412345"}]);
    let (s, v) = call(Method::POST, &groups, Some(&root), Some(bad)).await;
    assert_error(s, &v, 400, "dnis:");
    let (s, v) = call(Method::POST, &groups, Some(&root), Some(group.clone())).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["data"]["source"], "admin");

    // The file's group is listed read-only.
    let (s, v) = call(Method::GET, &groups, Some(&mon), None).await;
    assert_eq!(s, 200, "{v}");
    let listed: Vec<(String, String)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("FileApp".to_string(), "config".to_string()),
            ("auto_insurance".to_string(), "admin".to_string())
        ]
    );
    let (s, v) = call(
        Method::DELETE,
        &format!("{groups}/FileApp"),
        Some(&root),
        None,
    )
    .await;
    assert_error(s, &v, 409, "name:");
    let mut renamed = group.clone();
    renamed["name"] = json!("other");
    let (s, v) = call(
        Method::PUT,
        &format!("{groups}/auto_insurance"),
        Some(&root),
        Some(renamed),
    )
    .await;
    assert_error(s, &v, 400, "name:");

    // CSV import: every bad row by line, nothing imported; then a good file replaces the pool.
    let import = format!("{groups}/auto_insurance/dnis/import");
    let send_csv = |token: String, text: String| {
        let import = import.clone();
        async move {
            let r = reqwest::Client::new()
                .post(import)
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(text)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = send_csv(
        root.clone(),
        "+18005555554,claims,\n+1800555555X,Renewals,\n+18005555556,,\n+18005555554,again,\n"
            .into(),
    )
    .await;
    assert_error(s, &v, 400, "file:");
    assert!(
        message(&v).contains("line 2") && message(&v).contains("line 4"),
        "{v}"
    );
    assert!(!message(&v).contains("line 3"), "{v}");
    let (_, v) = call(
        Method::GET,
        &format!("{groups}/auto_insurance"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(v["data"]["dnis"].as_array().unwrap().len(), 1, "{v}");
    // A full pool of 10,000 numbers is larger than the API's 64 KiB body limit and still fits;
    // one number more is refused on the line that overflows.
    let full: String = (0..10_000)
        .map(|i| format!("+1800{i:07},Pool number {i}\n"))
        .collect();
    assert!(full.len() > 64 * 1024);
    let (s, v) = send_csv(root.clone(), full.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["dnis"].as_array().unwrap().len(), 10_000);
    let (s, v) = send_csv(root.clone(), format!("{full}+18009999999,\n")).await;
    assert_error(s, &v, 400, "file:");
    assert!(message(&v).contains("line 10001"), "{v}");

    let (s, v) = send_csv(
        root.clone(),
        "+18005555554,claims,\n+18005555555,Renewals,\n+18005555556,,\n".into(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["dnis"][2],
        json!({"number": "+18005555556", "description": ""})
    );

    // In force at once: the public API hands out the three numbers, then none (unique DNIS).
    let mut handed = Vec::new();
    for _ in 0..3 {
        let (s, v) = call(
            Method::POST,
            &format!("{url}/engagement/v3/call-in/requests/create"),
            None,
            Some(json!({"groupName": "auto_insurance", "fromPhoneNumber": "+33612345678", "virtualQueue": "Sales_VQ_CB"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["accessCode"].as_str().unwrap().len(), 8);
        handed.push(v["data"]["toPhoneNumber"].as_str().unwrap().to_string());
        clock.advance(TimeDelta::seconds(1));
    }
    handed.sort();
    assert_eq!(handed, vec!["+18005555554", "+18005555555", "+18005555556"]);
    let (s, _) = call(
        Method::POST,
        &format!("{url}/engagement/v3/call-in/requests/create"),
        None,
        Some(json!({"groupName": "auto_insurance", "virtualQueue": "Sales_VQ_CB"})),
    )
    .await;
    assert!(s >= 400, "a fourth live request got a number");

    // Records: Developer and Administrator only; filtered, sorted, paged.
    let records = format!("{url}/admin/callin/records");
    let (s, v) = call(Method::GET, &records, Some(&mon), None).await;
    assert_error(s, &v, 403, "");
    let (s, v) = call(
        Method::GET,
        &format!("{records}?state=PENDING&sort=created&order=asc&limit=2"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["total"], 3);
    let page = v["data"]["records"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0]["timeCreated"].as_str() < page[1]["timeCreated"].as_str());
    assert!(page[0].get("accessCode").is_none(), "codes are not listed");
    let (s, v) = call(
        Method::GET,
        &format!("{records}?state=EXPIRED"),
        Some(&dev),
        None,
    )
    .await;
    assert_eq!((s, v["data"]["total"].clone()), (200, json!(0)));
    let (s, v) = call(
        Method::GET,
        &format!("{records}?sort=colour"),
        Some(&dev),
        None,
    )
    .await;
    assert_error(s, &v, 400, "");
    let (s, v) = call(
        Method::GET,
        &format!("{records}?limit=501"),
        Some(&dev),
        None,
    )
    .await;
    assert_error(s, &v, 400, "limit:");
    e.shutdown();

    // The admin group is back after a restart; the file group is still the file's.
    let (e, url) = engine(dir.path(), clock.shared()).await;
    let root = login(&url, "root").await;
    let (s, v) = call(
        Method::GET,
        &format!("{url}/admin/callin/groups/auto_insurance"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["dnis"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"]["accessCodeLength"], 8);
    let (s, v) = call(
        Method::DELETE,
        &format!("{url}/admin/callin/groups/auto_insurance"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        Method::POST,
        &format!("{url}/engagement/v3/call-in/requests/create"),
        None,
        Some(json!({"groupName": "auto_insurance", "virtualQueue": "Sales_VQ_CB"})),
    )
    .await;
    assert!(s >= 400, "{v}");
    e.shutdown();
}
