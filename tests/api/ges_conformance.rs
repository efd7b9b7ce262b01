//! GES v3 wire conformance: the example requests of the functional reference
//! (`shared/reference/ges-reference.md` §1) replayed over HTTP, checking status codes, the
//! envelope (`status.code/message/corrId`, same id as `x-correlation-id`), and the names and
//! types of every field of every answer.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::DurationRound;
use serde_json::{Value, json};

const KEY: &str = "conformance-key";

fn config(dir: &Path, extra: &str) -> Config {
    Config::from_str_in(&config_text(extra), dir).unwrap()
}

fn config_text(extra: &str) -> String {
    format!(
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
    )
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

async fn get(url: impl AsRef<str>) -> Answer {
    call("GET", url.as_ref(), None).await
}

/// Availability takes GES's `timezone`, `end`, `startMS` and `endMS`: a local `start` is read
/// in `timezone` and `localTime` is written in it; `endMS` bounds the slots; more than one of
/// end/endMS/numberOfDays, both start and startMS, or an unknown zone are refused.
#[tokio::test]
async fn availability_takes_timezone_end_start_ms_and_end_ms() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "").await;
    let base = format!("{url}/callbacks/availability/Sales_VQ_CB");
    // Tomorrow 09:00 in New York, local form.
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let day = (SystemClock::shared().now() + chrono::TimeDelta::days(1))
        .with_timezone(&ny)
        .date_naive();
    let start_local = day.and_hms_opt(9, 0, 0).unwrap();
    let start = chrono::TimeZone::from_local_datetime(&ny, &start_local)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let a = get(&format!(
        "{base}?timezone=America/New_York&start={}&end={}",
        start_local.format("%Y-%m-%dT%H:%M:%S%.3f"),
        day.and_hms_opt(12, 0, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3f")
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_envelope(&a, "availability");
    let d = &a.body["data"];
    assert_eq!(d["timezone"], "America/New_York");
    assert!(d["durationMin"].is_i64());
    let slots = d["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 4, "09:00, 10:00, 11:00, 12:00: {d}");
    for sl in slots {
        for f in ["capacity", "total"] {
            assert!(sl[f].is_i64() || sl[f].is_u64(), "{f}: {sl}");
        }
        assert!(sl["utcTime"].is_string() && sl["localTime"].is_string());
    }
    assert_eq!(
        slots[0]["localTime"].as_str().unwrap(),
        start_local.format("%Y-%m-%dT%H:%M:%S").to_string()
    );
    let first: chrono::DateTime<chrono::Utc> =
        slots[0]["utcTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(first, start);
    // The same window in epoch milliseconds.
    let a = get(&format!(
        "{base}?startMS={}&endMS={}",
        start.timestamp_millis(),
        (start + chrono::TimeDelta::hours(3)).timestamp_millis()
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["slots"].as_array().unwrap().len(), 4);
    assert_eq!(
        a.body["data"]["timezone"], "Europe/Paris",
        "the queue's zone"
    );
    for (q, field) in [
        ("start=2026-01-01T00:00:00Z&startMS=1", "startMS"),
        ("numberOfDays=2&endMS=1", "end"),
        ("timezone=Mars/Olympus", "timezone"),
        ("start=tomorrow", "start"),
    ] {
        let a = get(&format!("{base}?{q}")).await;
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        assert_envelope(&a, q);
        let m = a.body["status"]["message"].as_str().unwrap();
        assert!(m.starts_with(field), "{q}: {m}");
    }
    e.shutdown();
}

/// `estimated-wait-time` takes `mode` and `include-calls-on-hold`: with no agent logged in and
/// nothing served yet, every mode is -1 with a message saying why (mode1 for lack of
/// history, mode2/mode3 for lack of agents); once an eligible agent is ready, mode2 and
/// mode3 are known; a bad mode is refused.
#[tokio::test]
async fn estimated_wait_time_takes_mode_and_calls_on_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "").await;
    let ewt = |q: &str| {
        get(format!(
            "{url}/estimated-wait-time?virtual-queues=Sales_VQ_CB{q}"
        ))
    };
    for mode in ["", "&mode=mode1", "&mode=mode2", "&mode=mode3"] {
        let a = ewt(&format!("{mode}&include-calls-on-hold=true")).await;
        assert_eq!(a.status, 200, "{mode}: {}", a.body);
        assert_envelope(&a, mode);
        let row = &a.body["data"][0];
        assert_eq!(row["virtualQueue"], "Sales_VQ_CB");
        assert_eq!(row["estimatedWaitTime"], -1, "{mode}: {row}");
        let m = row["message"].as_str().unwrap();
        if mode == "&mode=mode1" {
            assert!(m.contains("reached an agent"), "{m}");
        } else {
            assert!(m.contains("logged in"), "{mode}: {m}");
        }
    }
    e.dispatch
        .set_agent_state("alice", boomerang::routing::StateKind::Ready, None)
        .unwrap();
    for mode in ["mode2", "mode3"] {
        let a = ewt(&format!("&mode={mode}")).await;
        let row = &a.body["data"][0];
        assert!(
            row["estimatedWaitTime"].as_i64().unwrap() >= 0,
            "{mode}: {row}"
        );
        assert_eq!(row["message"], "");
    }
    let a = ewt("&mode=mode4").await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.body["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("mode:")
    );
    let a = ewt("&include-calls-on-hold=maybe").await;
    assert_eq!(a.status, 400, "{}", a.body);
    e.shutdown();
}

/// queue-status's `offerImmediateCallback` has its GES meaning, not the Immediate Enabled
/// flag: false while nobody can serve the queue (ewt -1), true once an eligible agent is ready
/// in inside business hours, false when the EWT does not reach the queue's offer threshold or
/// Immediate Enabled is off; `offerScheduledCallback` is Scheduled Enabled.
#[tokio::test]
async fn queue_status_offers_an_immediate_callback_only_when_it_can_be_served() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(
        dir.path(),
        "  - name: High_VQ_CB
    business_hours: always
    skill_expression: Sales > 3
    ewt_offer_threshold_seconds: 600
  - name: Off_VQ_CB
    business_hours: always
    skill_expression: Sales > 3
    immediate_enabled: false
    scheduled_enabled: false
",
    )
    .await;
    let status = |q: &str| get(format!("{url}/callbacks/queue-status/{q}"));
    let a = status("Sales_VQ_CB").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_envelope(&a, "queue-status");
    let d = &a.body["data"];
    assert_eq!(d["ewt"], -1, "{d}");
    assert_eq!(d["offerImmediateCallback"], false, "no agent: {d}");
    assert_eq!(d["offerScheduledCallback"], true, "{d}");
    e.dispatch
        .set_agent_state("alice", boomerang::routing::StateKind::Ready, None)
        .unwrap();
    let a = status("Sales_VQ_CB").await;
    let d = &a.body["data"];
    assert!(d["ewt"].as_i64().unwrap() >= 0, "{d}");
    assert_eq!(d["offerImmediateCallback"], true, "{d}");
    let d = status("High_VQ_CB").await.body["data"].clone();
    assert_eq!(
        d["offerImmediateCallback"], false,
        "under the threshold: {d}"
    );
    let d = status("Off_VQ_CB").await.body["data"].clone();
    assert_eq!(
        (&d["offerImmediateCallback"], &d["offerScheduledCallback"]),
        (&json!(false), &json!(false)),
        "{d}"
    );
    e.shutdown();
}

/// `POST /statistics/operations/get-statistic-ex` answers from the engine's own figures: a
/// booked callback shows as one QUEUED callback and one interaction waiting, the EWT is -1
/// without agents, agents by state count every agent; `max-age` under 15 s, unknown
/// statistics and unknown queues are refused; no key gets 401.
#[tokio::test]
async fn the_statistics_proxy_answers_from_the_engines_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine(dir.path(), "").await;
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678"})),
    )
    .await;
    assert_eq!(a.status, 200);
    let stat = format!("{url}/statistics/operations/get-statistic-ex");
    let q = |t: &str| json!({"objectId": "Sales_VQ_CB", "objectType": "Queue", "statisticType": t});
    let body = json!({"statistics": [
        q("CurrNumberWaitingCalls"), q("ExpectedWaitTime"), q("CallbacksByState"),
        q("CurrNumberLoggedInAgents"), q("ServiceFactor"),
        {"objectId": "boomerang", "objectType": "Tenant", "statisticType": "AgentsByState"}
    ]});
    let r = reqwest::Client::new()
        .post(&stat)
        .header("x-api-key", KEY)
        .header("cache-control", "max-age=15")
        .json(&body)
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
    assert_eq!(a.status, 200, "{}", a.body);
    assert_envelope(&a, "get-statistic-ex");
    let list = a.body["data"]["statistics"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    for s in list {
        for f in ["objectId", "objectType", "statisticType"] {
            assert!(s[f].is_string(), "{f}: {s}");
        }
        assert!(s["timestamp"].is_i64(), "{s}");
    }
    assert_eq!(list[0]["value"], 1, "one callback waits: {}", a.body);
    assert_eq!(list[1]["value"], -1, "no agent: {}", a.body);
    assert_eq!(list[2]["value"]["QUEUED"], 1, "{}", a.body);
    assert_eq!(list[2]["value"]["SCHEDULED"], 0, "{}", a.body);
    assert_eq!(list[3]["value"], 0);
    assert!(list[4]["value"].is_null(), "no outcome yet");
    assert_eq!(list[5]["value"]["logged_out"], 1, "{}", a.body);
    // One statistic inline, GMS style.
    let a = call("POST", &stat, Some(q("CurrNumberWaitingCalls"))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["statistics"][0]["value"], 1);
    for (body, field) in [
        (q("Nope"), "statisticType"),
        (
            json!({"objectId": "Nope", "objectType": "Queue", "statisticType": "ExpectedWaitTime"}),
            "objectId",
        ),
        (
            json!({"objectId": "x", "objectType": "Agent", "statisticType": "x"}),
            "objectType",
        ),
        (json!({"statistics": []}), "statistics"),
    ] {
        let a = call("POST", &stat, Some(body)).await;
        assert_eq!(a.status, 400, "{field}: {}", a.body);
        assert_envelope(&a, field);
        assert!(
            a.body["status"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{}",
            a.body
        );
    }
    let r = reqwest::Client::new()
        .post(&stat)
        .header("x-api-key", KEY)
        .header("cache-control", "max-age=5")
        .json(&q("ExpectedWaitTime"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::Client::new()
        .post(&stat)
        .json(&q("ExpectedWaitTime"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    e.shutdown();
}

/// A local siteverify server as Google's: it checks the form fields `secret` and `response`
/// and answers per token (`v2-ok`, `v3-high` 0.9 `book`, `v3-low` 0.1, others rejected).
/// Returns its verify URL and the tokens it was asked about.
async fn siteverify() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/recaptcha/api/siteverify",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                assert_eq!(
                    headers["content-type"], "application/x-www-form-urlencoded",
                    "siteverify takes a form"
                );
                let field = |name: &str| {
                    body.split('&')
                        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                        .map(str::to_string)
                };
                let token = field("response").unwrap_or_default();
                log.lock().unwrap().push(token.clone());
                let answer = if field("secret").as_deref() != Some("s3cret") {
                    json!({"success": false, "error-codes": ["invalid-input-secret"]})
                } else {
                    match token.as_str() {
                        "v2-ok" => json!({"success": true, "hostname": "app"}),
                        "v3-high" => json!({"success": true, "score": 0.9, "action": "book"}),
                        "v3-low" => json!({"success": true, "score": 0.1, "action": "book"}),
                        _ => json!({"success": false, "error-codes": ["invalid-input-response"]}),
                    }
                };
                axum::Json(answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/recaptcha/api/siteverify"), seen)
}

fn captcha_config(url: &str, version: &str, enforce: &str) -> String {
    format!(
        "api:\n  keys: [{{name: app, key: {KEY}}}, {{name: other, key: other-key}}]\n  captcha:\n    version: {version}\n    secret: s3cret\n    site_key: site-1\n    verify_url: '{url}'\n    min_score: 0.5\n    action: book\n    {enforce}\n"
    )
}

/// Engine whose `api:` section is replaced by `api`.
async fn engine_with_api(dir: &Path, api: &str) -> (Engine, String) {
    let text =
        config_text("").replace(&format!("api:\n  keys: [{{name: app, key: {KEY}}}]\n"), api);
    let e = Engine::start(
        Arc::new(Config::from_str_in(&text, dir).unwrap()),
        SystemClock::shared(),
    )
    .await
    .unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    (e, url)
}

fn create_body(token: Option<&str>) -> Value {
    let mut b = json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678"});
    if let Some(t) = token {
        b["captchaToken"] = json!(t);
    }
    b
}

/// reCAPTCHA v2 enforced for one API key: a create with that key needs a token the verify
/// server accepts (missing → 400 40001, rejected → 400 40003); another key is not asked;
/// `/captcha/verify` answers `data.success` and refuses a foreign site key; an unreachable
/// verifier is a 500.
#[tokio::test]
async fn captcha_v2_is_enforced_per_api_key() {
    let (verify_url, seen) = siteverify().await;
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine_with_api(
        dir.path(),
        &captcha_config(&verify_url, "v2", "enforce_keys: [app]"),
    )
    .await;
    let create = format!("{url}/callbacks/create");
    let a = call("POST", &create, Some(create_body(None))).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_envelope(&a, "no token");
    assert_eq!(a.body["status"]["code"], 40001);
    assert!(
        a.body["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("captchaToken:")
    );
    let a = call("POST", &create, Some(create_body(Some("forged")))).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["status"]["code"], 40003, "{}", a.body);
    assert!(
        a.body["status"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid-input-response"),
        "{}",
        a.body
    );
    let a = call("POST", &create, Some(create_body(Some("v2-ok")))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        *seen.lock().unwrap(),
        ["forged", "v2-ok"],
        "the tokens went to the verifier"
    );
    // Another key is not enforced.
    let r = reqwest::Client::new()
        .post(&create)
        .header("x-api-key", "other-key")
        .json(&create_body(None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // /captcha/verify.
    let verify = format!("{url}/captcha/verify");
    for (token, success) in [("v2-ok", true), ("forged", false)] {
        let a = call(
            "POST",
            &verify,
            Some(json!({"siteKey": "site-1", "captchaToken": token})),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_envelope(&a, "captcha verify");
        assert_eq!(a.body["data"]["success"], success, "{token}: {}", a.body);
    }
    let a = call(
        "POST",
        &verify,
        Some(json!({"siteKey": "other-site", "captchaToken": "v2-ok"})),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = call("POST", &verify, Some(json!({"captchaToken": "v2-ok"}))).await;
    assert_eq!(a.status, 400, "siteKey is required: {}", a.body);
    e.shutdown();

    // A verifier that does not answer: 500 in the envelope.
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/siteverify", common::free_port());
    let (e, url) = engine_with_api(
        dir.path(),
        &captcha_config(&dead, "v2", "enforce_keys: [app]"),
    )
    .await;
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(create_body(Some("v2-ok"))),
    )
    .await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert_envelope(&a, "verifier down");
    assert_eq!(a.body["status"]["code"], 50002);
    e.shutdown();
}

/// reCAPTCHA v3 enforced for one queue: a token under the score threshold is refused, one
/// over it is accepted, whatever the key.
#[tokio::test]
async fn captcha_v3_is_enforced_per_queue_with_a_score_threshold() {
    let (verify_url, _) = siteverify().await;
    let dir = tempfile::tempdir().unwrap();
    let (e, url) = engine_with_api(
        dir.path(),
        &captcha_config(&verify_url, "v3", "enforce_queues: [Sales_VQ_CB]"),
    )
    .await;
    let create = format!("{url}/callbacks/create");
    let a = call("POST", &create, Some(create_body(Some("v3-low")))).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.body["status"]["code"], 40003);
    assert!(
        a.body["status"]["message"]
            .as_str()
            .unwrap()
            .contains("score 0.1"),
        "{}",
        a.body
    );
    let a = call("POST", &create, Some(create_body(Some("v3-high")))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call("POST", &create, Some(create_body(None))).await;
    assert_eq!(a.status, 400, "{}", a.body);
    e.shutdown();
}

/// check-config refuses a CAPTCHA section that cannot work: a verify URL that is not http(s),
/// a score outside 0–1, enforcement naming an unknown key or queue; Google's https URL is fine.
#[test]
fn check_config_validates_the_captcha_section() {
    let dir = tempfile::tempdir().unwrap();
    for (api, want) in [
        (
            captcha_config("ftp://www.google.com/recaptcha/api/siteverify", "v2", ""),
            "verify_url",
        ),
        (
            captcha_config("http://relay/siteverify", "v3", "enforce_keys: [nobody]"),
            "enforce_keys",
        ),
        (
            captcha_config("http://relay/siteverify", "v3", "enforce_queues: [Nope]"),
            "enforce_queues",
        ),
        (
            captcha_config("http://relay/siteverify", "v3", "")
                .replace("min_score: 0.5", "min_score: 7"),
            "min_score",
        ),
    ] {
        let text = config_text("").replace(
            &format!("api:\n  keys: [{{name: app, key: {KEY}}}]\n"),
            &api,
        );
        let err = Config::from_str_in(&text, dir.path())
            .expect_err(want)
            .to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    let ok = config_text("").replace(
        &format!("api:\n  keys: [{{name: app, key: {KEY}}}]\n"),
        &captcha_config(
            "https://www.google.com/recaptcha/api/siteverify",
            "v3",
            "enforce_queues: [Sales_VQ_CB]",
        ),
    );
    Config::from_str_in(&ok, dir.path()).unwrap();
}

/// The JSON type names the reference gives, checked on a value.
fn assert_type(v: &Value, ty: &str, what: &str) {
    let ok = match ty {
        "int" => v.is_i64() || v.is_u64(),
        "bool" => v.is_boolean(),
        "string" => v.is_string(),
        "uuid" => v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        "date-time" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "local-time" => v
            .as_str()
            .is_some_and(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").is_ok()),
        "array" => v.is_array(),
        "object" => v.is_object(),
        other => panic!("unknown type {other}"),
    };
    assert!(ok, "{what}: expected {ty}, got {v}");
}

fn assert_fields(data: &Value, fields: &[(&str, &str)], op: &str) {
    for (name, ty) in fields {
        assert_type(&data[*name], ty, &format!("{op}.{name}"));
    }
}

/// The reference's 11 operations (§1.2) replayed in the order an app uses them, each answer
/// checked for its status, the envelope and the names and types of its `data` fields:
/// create → retrieve → availability → open-for → queue-status → estimated-wait-time →
/// call-in → statistics → captcha verify → cancel; `/notification/publish` belongs to push
/// notifications and is checked only when present.
#[tokio::test]
async fn the_eleven_operations_answer_with_the_reference_fields_and_types() {
    let (verify_url, _) = siteverify().await;
    let dir = tempfile::tempdir().unwrap();
    let api = captcha_config(&verify_url, "v2", "enforce_queues: []");
    let text = config_text(
        "callin_groups:
  - name: WebApp
    dnis: [{number: '8001'}]
    generate_access_code: true
    access_code_length: 6
    expiry_seconds: 300
",
    )
    .replace(
        &format!("api:\n  keys: [{{name: app, key: {KEY}}}]\n"),
        &api,
    );
    let e = Engine::start(
        Arc::new(Config::from_str_in(&text, dir.path()).unwrap()),
        SystemClock::shared(),
    )
    .await
    .unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    let ok_answer = |a: &Answer, op: &str| {
        assert_eq!(a.status, 200, "{op}: {}", a.body);
        assert_envelope(a, op);
    };

    // 1. Create (example of the reference: userData {"priority":"high","email":…}).
    let a = call(
        "POST",
        &format!("{url}/callbacks/create"),
        Some(
            json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678",
            "userData": {"priority": "high", "email": "joe@smith.com"}}),
        ),
    )
    .await;
    ok_answer(&a, "create");
    assert_fields(&a.body["data"], &[("id", "uuid")], "create");
    let id = a.body["data"]["id"].as_str().unwrap().to_string();

    // 2. Retrieve: Callback (id, desiredTime, callbackState, phoneNumber, position, EWT).
    let a = call(
        "POST",
        &format!("{url}/callbacks/retrieve"),
        Some(json!({"id": id})),
    )
    .await;
    ok_answer(&a, "retrieve");
    let d = &a.body["data"];
    assert_fields(
        d,
        &[
            ("id", "uuid"),
            ("desiredTime", "date-time"),
            ("callbackState", "string"),
            ("phoneNumber", "string"),
            ("positionInQueue", "int"),
            ("estimatedWaitTime", "int"),
        ],
        "retrieve",
    );
    assert!(
        ["SCHEDULED", "QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]
            .contains(&d["callbackState"].as_str().unwrap())
    );
    assert!(d.get("callbackReason").is_none(), "only when COMPLETED");

    // 3. Availability: slots [{utcTime, localTime, capacity, total}], durationMin, timezone.
    let a = get(format!(
        "{url}/callbacks/availability/Sales_VQ_CB?numberOfDays=2&maxTimeSlots=3&reportBusy=false"
    ))
    .await;
    ok_answer(&a, "availability");
    let d = &a.body["data"];
    assert_fields(
        d,
        &[
            ("slots", "array"),
            ("durationMin", "int"),
            ("timezone", "string"),
        ],
        "availability",
    );
    let slots = d["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 3);
    for sl in slots {
        assert_fields(
            sl,
            &[
                ("utcTime", "date-time"),
                ("localTime", "local-time"),
                ("capacity", "int"),
                ("total", "int"),
            ],
            "availability.slots[]",
        );
    }

    // 4. Open-for with the newer flags.
    let a = get(format!(
        "{url}/callbacks/open-for/Sales_VQ_CB?queryImmediateOfferHours=true&returnWithinImmediateOfferTime=true&checkImmediateEnabled=true"
    ))
    .await;
    ok_answer(&a, "open-for");
    assert_fields(
        &a.body["data"],
        &[
            ("openFor", "int"),
            ("immediateOfferHoursOpenFor", "int"),
            ("isWithinImmediateOfferTime", "bool"),
            ("isImmediateEnabled", "bool"),
        ],
        "open-for",
    );

    // 5. Queue status.
    let a = get(format!("{url}/callbacks/queue-status/Sales_VQ_CB")).await;
    ok_answer(&a, "queue-status");
    assert_fields(
        &a.body["data"],
        &[
            ("ewt", "int"),
            ("offerImmediateCallback", "bool"),
            ("offerScheduledCallback", "bool"),
        ],
        "queue-status",
    );

    // 6. Estimated wait time: an array of {virtualQueue, estimatedWaitTime, message}.
    let a = get(format!(
        "{url}/estimated-wait-time?virtual-queues=Sales_VQ_CB&mode=mode2&include-calls-on-hold=false"
    ))
    .await;
    ok_answer(&a, "estimated-wait-time");
    let rows = a.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_fields(
        &rows[0],
        &[
            ("virtualQueue", "string"),
            ("estimatedWaitTime", "int"),
            ("message", "string"),
        ],
        "estimated-wait-time[]",
    );

    // 7. Call-in request for the callback (the Delayed scenario's link).
    let a = call(
        "POST",
        &format!("{url}/call-in/requests/create"),
        Some(
            json!({"groupName": "WebApp", "fromPhoneNumber": "+33612345678",
            "userData": {"order": "42"}, "callbackServiceId": id}),
        ),
    )
    .await;
    ok_answer(&a, "call-in");
    assert_fields(
        &a.body["data"],
        &[
            ("id", "uuid"),
            ("toPhoneNumber", "string"),
            ("groupName", "string"),
            ("expirationTime", "int"),
            // The reference types it int; boomerang keeps a string so that codes keep their
            // leading zeros (a known difference).
            ("accessCode", "string"),
            ("fromPhoneNumber", "string"),
            ("callbackServiceId", "uuid"),
        ],
        "call-in",
    );

    // 8. Statistics proxy.
    let a = call(
        "POST",
        &format!("{url}/statistics/operations/get-statistic-ex"),
        Some(
            json!({"statistics": [{"objectId": "Sales_VQ_CB", "objectType": "Queue",
            "statisticType": "CurrNumberWaitingCalls"}]}),
        ),
    )
    .await;
    ok_answer(&a, "get-statistic-ex");
    assert_fields(
        &a.body["data"],
        &[("statistics", "array")],
        "get-statistic-ex",
    );

    // 9. Captcha verify.
    let a = call(
        "POST",
        &format!("{url}/captcha/verify"),
        Some(json!({"siteKey": "site-1", "captchaToken": "v2-ok"})),
    )
    .await;
    ok_answer(&a, "captcha/verify");
    assert_fields(&a.body["data"], &[("success", "bool")], "captcha/verify");

    // 10. Cancel.
    let a = call(
        "POST",
        &format!("{url}/callbacks/cancel"),
        Some(json!({"id": id})),
    )
    .await;
    ok_answer(&a, "cancel");
    assert_fields(&a.body["data"], &[("id", "uuid")], "cancel");
    let a = call(
        "POST",
        &format!("{url}/callbacks/retrieve"),
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!(a.body["data"]["callbackState"], "COMPLETED");
    assert_type(
        &a.body["data"]["callbackReason"],
        "string",
        "callbackReason",
    );

    // 11. Push publish test: owned by push notifications; when present, a bad body is a 400 in
    // the envelope, not a 404.
    let a = call(
        "POST",
        &format!("{url}/notification/publish"),
        Some(json!({})),
    )
    .await;
    if a.status != 404 {
        assert_eq!(a.status, 400, "{}", a.body);
        assert_envelope(&a, "notification/publish");
    }
    e.shutdown();
}
