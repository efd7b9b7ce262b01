//! GES v3 wire conformance: the example requests of the functional reference
//! (`shared/reference/ges-reference.md` §1) replayed over HTTP, checking status codes, the
//! envelope (`status.code/message/corrId`, same id as `x-correlation-id`), and the names and
//! types of every field of every answer.

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::DurationRound;
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

/// `POST /callbacks/create` takes every field of the reference's `CreateCallbackParms`
/// (pushTargets aside, which push notifications own) and the query operations return them:
/// retrieve and the query by number give the values sent, with GES's defaults (`en-US`,
/// `ASAP`/`SCHEDULED`) when left out; only user data keys that are JavaScript identifiers
/// (`_`-prefixed ones included) are kept, the others dropped silently.
#[tokio::test]
async fn create_accepts_every_ges_field_and_the_queries_return_them() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "").await;
    let tomorrow = (SystemClock::shared().now() + chrono::TimeDelta::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(json!({
            "serviceName": "Sales_VQ_CB",
            "phoneNumber": "+33612345678",
            "desiredTime": tomorrow,
            "cbOfferType": "COMBINED_SCHEDULED_AND_ASAP",
            "language": "fr-CA",
            "inboundVQ": "Sales_VQ_CB",
            "offerThreshold": 300,
            "channel": "WEB",
            "offerTiming": "ON-HOURS",
            "cbOriginationIxnId": "00A1B2C3",
            "surveyRP": "9100",
            "priority": 3,
            "routePoint": "8123",
            "userData": {"priority": "high", "email": "joe@smith.com", "_urs_virtual_queue": "X", "order-id": "7"},
            "captchaToken": "unused-without-enforcement",
            "alwaysCheckCapacity": false
        })),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_envelope(&a, "create with every field");
    let id = a.body["data"]["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    let r = call(
        "POST",
        &format!("{url}/callbacks/retrieve"),
        Some(json!({ "id": id })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = &r.body["data"];
    for (field, want) in [
        ("cbOfferType", json!("COMBINED_SCHEDULED_AND_ASAP")),
        ("language", json!("fr-CA")),
        ("inboundVQ", json!("Sales_VQ_CB")),
        ("offerThreshold", json!(300)),
        ("channel", json!("WEB")),
        ("offerTiming", json!("ON-HOURS")),
        ("cbOriginationIxnId", json!("00A1B2C3")),
        ("surveyRP", json!("9100")),
        ("routePoint", json!("8123")),
        ("callbackState", json!("SCHEDULED")),
        ("phoneNumber", json!("+33612345678")),
    ] {
        assert_eq!(d[field], want, "{field}: {d}");
    }
    assert_eq!(d["userData"]["_urs_virtual_queue"], "X", "{d}");
    assert_eq!(d["userData"]["email"], "joe@smith.com", "{d}");
    assert!(d["userData"].get("order-id").is_none(), "dropped: {d}");
    assert!(d.get("captchaToken").is_none(), "never returned: {d}");
    // Left out: GES's defaults.
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345679"})),
    )
    .await;
    let id2 = a.body["data"]["id"].as_str().unwrap().to_string();
    let r = call(
        "POST",
        &format!("{url}/callbacks/retrieve"),
        Some(json!({ "id": id2 })),
    )
    .await;
    assert_eq!(
        (&r.body["data"]["language"], &r.body["data"]["cbOfferType"]),
        (&json!("en-US"), &json!("ASAP")),
        "{}",
        r.body
    );
    assert!(r.body["data"].get("routePoint").is_none(), "{}", r.body);
    // The query by number returns the fields too.
    let q = call(
        "GET",
        &format!("{url}/callbacks?phoneNumber=%2B33612345678"),
        None,
    )
    .await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(
        q.body["data"]["callbacks"][0]["channel"], "WEB",
        "{}",
        q.body
    );
    // Bad values name the field.
    for (body, field) in [
        (json!({"cbOfferType": "LATER"}), "cbOfferType"),
        (json!({"language": "english"}), "language"),
        (json!({"offerTiming": "NOW"}), "offerTiming"),
        (json!({"offerThreshold": -5}), "offerThreshold"),
        (json!({"inboundVQ": "Nope"}), "inboundVQ"),
        (json!({"routePoint": ""}), "routePoint"),
    ] {
        let mut b = json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345670"});
        for (k, v) in body.as_object().unwrap() {
            b[k] = v.clone();
        }
        let a = call("POST", &format!("{url}/callbacks/create"), Some(b)).await;
        assert_eq!(a.status, 400, "{field}: {}", a.body);
        assert_envelope(&a, field);
        let m = a.body["status"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{field}: {m}");
    }
    e.shutdown();
}

/// A scheduled booking with `alwaysCheckCapacity` into a full slot gets GES's 429 with
/// `data.slots`: the free slots from then on, with their free capacity.
#[tokio::test]
async fn a_full_slot_gets_429_with_proposed_slots() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "    slot_capacity: 1\n").await;
    let at = (SystemClock::shared().now() + chrono::TimeDelta::days(1))
        .duration_trunc(chrono::TimeDelta::hours(1))
        .unwrap()
        + chrono::TimeDelta::minutes(10);
    let body = json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678",
        "desiredTime": at.to_rfc3339(), "alwaysCheckCapacity": true});
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call("POST", &format!("{url}/callbacks/create"), Some(body)).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_envelope(&a, "429 on create");
    let slots = a.body["data"]["slots"].as_object().expect("data.slots");
    assert!(!slots.is_empty(), "{}", a.body);
    for (t, cap) in slots {
        let t: chrono::DateTime<chrono::Utc> = t.parse().unwrap();
        assert!(t > at, "a later slot: {t}");
        assert_eq!(cap, 1);
    }
    e.shutdown();
}
