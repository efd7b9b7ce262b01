//! Scenarios over the REST API with a real HTTP client on loopback: an app books, reads,
//! reschedules and cancels callbacks; bad requests get precise JSON errors; nothing answers
//! without a key.

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use serde_json::{Value, json};

const KEY: &str = "test-key";

async fn engine(dir: &Path) -> (Engine, String) {
    let e = Engine::start(Arc::new(config(dir)), SystemClock::shared())
        .await
        .unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    (e, url)
}

fn config(dir: &Path) -> Config {
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
  max_body_bytes: 2048
business_hours:
  always: {{time_zone: Europe/Paris, weekly: {{mon: 24h, tue: 24h, wed: 24h, thu: 24h, fri: 24h, sat: 24h, sun: 24h}}}}
agents:
  - {{id: alice, skills: {{Sales: 7}}}}
queues:
  - name: Sales_VQ_CB
    business_hours: always
    skill_expression: Sales > 3
    slot_duration_minutes: 60
"
    );
    Config::from_str_in(&yaml, dir).unwrap()
}

/// The engine builder takes its store and its shutdown signal from outside: a callback booked
/// over HTTP lands in the given in-memory store (no database file is made), and cancelling the
/// given token stops the engine's HTTP listener.
#[tokio::test]
async fn an_engine_built_with_a_memory_store_keeps_callbacks_there_and_stops_on_its_token() {
    use boomerang::store::{MemoryStore, Store};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let token = tokio_util::sync::CancellationToken::new();
    let e = Engine::builder(Arc::new(config(dir.path())))
        .store(store.clone())
        .clock(SystemClock::shared())
        .notifier(Arc::new(boomerang::push::LogNotifier))
        .shutdown(token.clone())
        .start()
        .await
        .unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    let (s, v, _) = post(
        &url,
        "/callbacks/create",
        json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33 6 12 34 56 78"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id: uuid::Uuid = v["data"]["id"].as_str().unwrap().parse().unwrap();
    let stored = store
        .callback(id)
        .await
        .unwrap()
        .expect("in the memory store");
    assert_eq!(stored.phone, "+33612345678");
    assert!(!dir.path().join("boomerang.db").exists());
    token.cancel();
    let mut stopped = false;
    for _ in 0..50 {
        let r = reqwest::Client::new()
            .get(format!("{url}/callbacks/open-for"))
            .timeout(std::time::Duration::from_millis(200))
            .send()
            .await;
        if r.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        stopped,
        "the HTTP listener still answers after the shutdown token"
    );
}

async fn post(url: &str, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let corr = r
        .headers()
        .get("x-correlation-id")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), corr)
}

async fn get(url: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_app_books_reads_reschedules_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path()).await;
    let (s, v, corr) = post(&url, "/callbacks/create", json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33 6 12 34 56 78", "userData": {"order": 42}})).await;
    assert_eq!(s, 200, "{v}");
    assert!(corr.is_some());
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let (_, v, _) = post(&url, "/callbacks/retrieve", json!({"id": id})).await;
    let d = &v["data"];
    assert_eq!(
        (d["callbackState"].as_str(), d["phoneNumber"].as_str()),
        (Some("QUEUED"), Some("+33612345678"))
    );
    assert_eq!(d["positionInQueue"], 1);
    assert_eq!(d["estimatedWaitTime"], -1, "no agent logged in");
    assert_eq!(d["userData"]["order"], "42");

    let (s, v) = get(&url, "/callbacks/queue-status/Sales_VQ_CB").await;
    assert_eq!(s, 200);
    assert_eq!(
        (v["data"]["waiting"].as_u64(), v["data"]["ewt"].as_i64()),
        (Some(1), Some(-1))
    );
    let (s, v) = get(&url, "/estimated-wait-time?virtual-queues=Sales_VQ_CB").await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0]["estimatedWaitTime"], -1);
    assert!(
        v["data"][0]["message"]
            .as_str()
            .unwrap()
            .contains("logged in")
    );

    // Scheduled tomorrow, then rescheduled, then cancelled.
    let tomorrow =
        (boomerang::clock::SystemClock::shared().now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let (s, v, _) = post(&url, "/callbacks/create", json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345679", "desiredTime": tomorrow})).await;
    assert_eq!(s, 200, "{v}");
    let sid = v["data"]["id"].as_str().unwrap().to_string();
    let later =
        (boomerang::clock::SystemClock::shared().now() + chrono::TimeDelta::days(2)).to_rfc3339();
    let (s, v, _) = post(
        &url,
        "/callbacks/reschedule",
        json!({"id": sid, "desiredTime": later}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let new_id = v["data"]["id"].as_str().unwrap().to_string();
    let (_, v, _) = post(&url, "/callbacks/retrieve", json!({"id": sid})).await;
    assert_eq!(v["data"]["callbackReason"], "RESCHEDULED");
    let (s, _, _) = post(&url, "/callbacks/cancel", json!({"id": new_id})).await;
    assert_eq!(s, 200);
    let (s, v, _) = post(
        &url,
        "/callbacks/reschedule",
        json!({"id": new_id, "desiredTime": later}),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .contains("only a SCHEDULED callback")
    );

    let (s, v) = get(
        &url,
        "/callbacks/availability/Sales_VQ_CB?numberOfDays=2&maxTimeSlots=5",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["slots"].as_array().unwrap().len(), 5);
    assert_eq!(v["data"]["timezone"], "Europe/Paris");
    assert_eq!(v["data"]["durationMin"], 60);
    let (s, v) = get(&url, "/callbacks/open-for/Sales_VQ_CB").await;
    assert_eq!(s, 200);
    assert!(v["data"]["openFor"].as_i64().unwrap() > 0);
    assert_eq!(v["data"]["immediateOfferHoursOpenFor"], -1);

    // Query without an id: by number, by state, and a bad filter.
    let (s, v) = get(&url, "/callbacks?phoneNumber=%2B33%206%2012%2034%2056%2078").await;
    assert_eq!(s, 200, "{v}");
    let found = v["data"]["callbacks"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["id"], id.as_str());
    let (s, v) = get(&url, "/callbacks?state=COMPLETED&serviceName=Sales_VQ_CB").await;
    assert_eq!(s, 200, "{v}");
    let mut done: Vec<&str> = v["data"]["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    done.sort();
    let mut expected = vec![sid.as_str(), new_id.as_str()];
    expected.sort();
    assert_eq!(done, expected, "the rescheduled and the cancelled one");
    assert_eq!(v["data"]["hasMore"], false);
    let (s, v) = get(&url, "/callbacks?state=DONE").await;
    assert_eq!(s, 400);
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("state:"),
        "{v}"
    );
    e.shutdown();
}

#[tokio::test]
async fn bad_requests_get_precise_json_errors_kept_by_correlation_id() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path()).await;
    let cases = [
        (
            json!({"serviceName": "Sales_VQ_CB", "phone": "+33612345678"}),
            400,
            "unknown field `phone`",
        ),
        (
            json!({"serviceName": "Nope", "phoneNumber": "+33612345678"}),
            400,
            "serviceName: unknown virtual queue `Nope`",
        ),
        (
            json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "0612"}),
            400,
            "phoneNumber:",
        ),
        (
            json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678", "desiredTime": "tomorrow"}),
            400,
            "desiredTime",
        ),
        (
            json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678", "userData": {"x": "y".repeat(4000)}}),
            413,
            "too large",
        ),
    ];
    for (body, status, text) in cases {
        let (s, v, corr) = post(&url, "/callbacks/create", body).await;
        assert_eq!(s, status, "{v}");
        assert!(
            v["status"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(text),
            "{v}"
        );
        assert_eq!(
            v["status"]["code"].as_u64().map(|c| c / 100),
            Some(status as u64),
            "{v}"
        );
        assert_eq!(v["status"]["corrId"].as_str(), corr.as_deref());
    }
    let (s, v, _) = post(
        &url,
        "/callbacks/retrieve",
        json!({"id": uuid::Uuid::new_v4()}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let (s, v, _) = post(
        &url,
        "/call-in/requests/create",
        json!({"groupName": "none"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("groupName:")
    );
    e.shutdown();
}

#[tokio::test]
async fn no_endpoint_answers_without_a_valid_key() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path()).await;
    let client = reqwest::Client::new();
    let routes = [
        ("POST", "/callbacks/create"),
        ("POST", "/callbacks/retrieve"),
        ("POST", "/callbacks/cancel"),
        ("POST", "/callbacks/reschedule"),
        ("GET", "/callbacks/availability/Sales_VQ_CB"),
        ("GET", "/callbacks/open-for/Sales_VQ_CB"),
        ("GET", "/callbacks/queue-status/Sales_VQ_CB"),
        ("POST", "/call-in/requests/create"),
        ("GET", "/estimated-wait-time?virtual-queues=Sales_VQ_CB"),
        ("GET", "/no/such/route"),
    ];
    for (method, path) in routes {
        for key in [None, Some("wrong-key")] {
            let mut req = client.request(method.parse().unwrap(), format!("{url}{path}"));
            if let Some(k) = key {
                req = req.header("x-api-key", k);
            }
            let r = req.json(&json!({})).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 401, "{method} {path} with {key:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["status"]["code"], 40101);
        }
    }
    e.shutdown();
}
