//! GES v3 wire conformance: the example requests of the functional reference
//! (`shared/reference/ges-reference.md` §1) replayed over HTTP, checking status codes, the
//! envelope (`status.code/message/corrId`, same id as `x-correlation-id`), and the names and
//! types of every field of every answer.

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use serde_json::{Value, json};

const KEY: &str = "conformance-key";

fn config(dir: &Path, extra: &str) -> Config {
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: app, key: {KEY}}}]
business_hours:
  always: {{time_zone: Europe/Paris, weekly: {{mon: 24h, tue: 24h, wed: 24h, thu: 24h, fri: 24h, sat: 24h, sun: 24h}}}}
agents:
  - {{id: alice, skills: {{Sales: 7}}}}
queues:
  - name: Sales_VQ_CB
    business_hours: always
    skill_expression: Sales > 3
    slot_duration_minutes: 60
{extra}"
    );
    Config::from_str_in(&yaml, dir).unwrap()
}

/// An engine on a free loopback port and its `/engagement/v3` base URL.
async fn engine(dir: &Path, extra: &str) -> (Engine, String) {
    let e = Engine::start(Arc::new(config(dir, extra)), SystemClock::shared())
        .await
        .unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    (e, url)
}

/// One answer: status, body, `x-correlation-id`.
struct Answer {
    status: u16,
    body: Value,
    corr: Option<String>,
}

async fn call(method: &str, url: &str, body: Option<Value>) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .header("x-api-key", KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let corr = r
        .headers()
        .get("x-correlation-id")
        .map(|v| v.to_str().unwrap().to_string());
    Answer {
        status,
        body: r.json().await.unwrap_or(Value::Null),
        corr,
    }
}

/// The envelope GES sends: `status` with an integer `code`, a string `message` and the
/// `corrId` the header also carries; `data` on success.
fn assert_envelope(a: &Answer, what: &str) {
    let st = &a.body["status"];
    assert!(
        st["code"].is_i64() || st["code"].is_u64(),
        "{what}: {}",
        a.body
    );
    assert!(st["message"].is_string(), "{what}: {}", a.body);
    assert!(st["corrId"].is_string(), "{what}: {}", a.body);
    assert_eq!(st["corrId"].as_str(), a.corr.as_deref(), "{what}: header");
    if a.status == 200 {
        assert_eq!(st["code"], 0, "{what}");
        assert_eq!(st["message"], "Successful", "{what}");
        assert!(a.body.get("data").is_some(), "{what}: {}", a.body);
    } else {
        assert_eq!(
            st["code"].as_u64().map(|c| c / 100),
            Some(a.status as u64),
            "{what}: GES code = HTTP status × 100 + sub-code: {}",
            a.body
        );
        let keys: Vec<&String> = a.body.as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| *k == "status" || *k == "data"),
            "{what}: {}",
            a.body
        );
    }
}

/// Every answer of the GES surface, success or error, wears the envelope with `corrId` equal
/// to the `x-correlation-id` header (the caller's id when it sends one); the administration
/// keeps its flat error format.
#[tokio::test]
async fn every_answer_wears_the_ges_envelope_with_its_correlation_id() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "").await;
    let ok = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678"})),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_envelope(&ok, "create");
    let bad = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(json!({"serviceName": "Nope", "phoneNumber": "+33612345678"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_envelope(&bad, "create, unknown queue");
    assert!(bad.body.get("data").is_none(), "{}", bad.body);
    let missing = call(
        "POST",
        &format!("{url}/callbacks/retrieve"),
        Some(json!({"id": uuid::Uuid::new_v4()})),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_envelope(&missing, "retrieve unknown id");
    // The caller's correlation id is kept.
    let r = reqwest::Client::new()
        .get(format!("{url}/callbacks/queue-status/Sales_VQ_CB"))
        .header("x-api-key", KEY)
        .header("x-correlation-id", "my-corr-1")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["corrId"], "my-corr-1", "{v}");
    // No key: 401 in the envelope too.
    let r = reqwest::Client::new()
        .get(format!("{url}/callbacks/queue-status/Sales_VQ_CB"))
        .send()
        .await
        .unwrap();
    let a = Answer {
        status: r.status().as_u16(),
        corr: r
            .headers()
            .get("x-correlation-id")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.json().await.unwrap(),
    };
    assert_eq!(a.status, 401);
    assert_envelope(&a, "no key");
    // The administration keeps its flat errors.
    let admin = format!("http://{}/admin/callbacks", e.http_addr);
    let v: Value = reqwest::Client::new()
        .get(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["code"].is_u64() && v["correlationId"].is_string(), "{v}");
    e.shutdown();
}
