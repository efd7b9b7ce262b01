//! The callback rules an app meets over the REST API (real HTTP client, engine on a manual
//! clock): which bookings the Immediate/Scheduled Enabled flags refuse, what open-for answers
//! for a given start and the current EWT, and one validation of desired times on every path.

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::ManualClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const KEY: &str = "rules-key";
const PASSWORD: &str = "correct horse";

/// Monday 2 March 2026, 10:00 UTC (11:00 Paris).
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An engine at `t0` with `Off_VQ_CB` (both flags off) and `Office_VQ_CB` (Paris office
/// hours 09:00-18:00 on weekdays, closing at 17:00 UTC in March).
async fn engine(dir: &Path) -> (Engine, String, ManualClock) {
    let hash = boomerang::api::admin::auth::hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
admin:
  users:
    - {{name: root, password_hash: '{hash}', roles: [Administrator]}}
business_hours:
  office: {{time_zone: Europe/Paris, weekly: {{mon: '09:00-18:00', tue: '09:00-18:00', wed: '09:00-18:00', thu: '09:00-18:00', fri: '09:00-18:00'}}}}
agents:
  - {{id: alice, skills: {{Sales: 7}}}}
queues:
  - {{name: Off_VQ_CB, skill_expression: Sales > 3, immediate_enabled: false, scheduled_enabled: false}}
  - {{name: Office_VQ_CB, business_hours: office, skill_expression: Sales > 3, max_days_ahead: 14}}
"
    );
    let cfg = Config::from_str_in(&yaml, dir).unwrap();
    let clock = ManualClock::new(t0());
    let e = Engine::start(Arc::new(cfg), clock.shared()).await.unwrap();
    let url = format!("http://{}/engagement/v3", e.http_addr);
    (e, url, clock)
}

async fn send(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .header("x-api-key", KEY);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, path: &str, body: Value) -> (u16, Value) {
    send(reqwest::Method::POST, &format!("{url}{path}"), Some(body)).await
}

async fn get(url: &str, path: &str) -> (u16, Value) {
    send(reqwest::Method::GET, &format!("{url}{path}"), None).await
}

#[tokio::test]
async fn api_bookings_ignore_the_enabled_flags_unless_always_check_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let later = "2026-03-03T10:00:00Z";
    // As in GES, the API books regardless of Immediate/Scheduled Enabled…
    let (s, v) = post(
        &url,
        "/callbacks/create",
        json!({"serviceName": "Off_VQ_CB", "phoneNumber": "+33612345678"}),
    )
    .await;
    assert_eq!(s, 200, "immediate: {v}");
    let (s, v) = post(
        &url,
        "/callbacks/create",
        json!({"serviceName": "Off_VQ_CB", "phoneNumber": "+33612345678", "desiredTime": later}),
    )
    .await;
    assert_eq!(s, 200, "scheduled: {v}");
    // …and checks them when asked to check capacity.
    for body in [
        json!({"serviceName": "Off_VQ_CB", "phoneNumber": "+33612345678", "alwaysCheckCapacity": true}),
        json!({"serviceName": "Off_VQ_CB", "phoneNumber": "+33612345678", "desiredTime": later, "alwaysCheckCapacity": true}),
    ] {
        let (s, v) = post(&url, "/callbacks/create", body).await;
        assert_eq!(s, 409, "{v}");
        assert!(
            v["status"]["message"]
                .as_str()
                .unwrap()
                .contains("does not accept"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn open_for_uses_start_and_the_current_ewt() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, clock) = engine(dir.path()).await;
    // `start` stands for now: 16:40 UTC is 20 minutes before closing (18:00 Paris).
    let (s, v) = get(
        &url,
        "/callbacks/open-for/Office_VQ_CB?start=2026-03-02T16:40:00Z",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["openFor"], 1200, "{v}");
    assert_eq!(v["data"]["isWithinImmediateOfferTime"], true, "{v}");
    // Closed at 17:30 UTC.
    let (_, v) = get(
        &url,
        "/callbacks/open-for/Office_VQ_CB?start=2026-03-02T18:30:00%2B01:00",
    )
    .await;
    assert_eq!(v["data"]["openFor"], 0, "{v}");
    assert_eq!(v["data"]["isWithinImmediateOfferTime"], false, "{v}");
    let (s, v) = get(&url, "/callbacks/open-for/Office_VQ_CB?start=tomorrow").await;
    assert_eq!(s, 400, "{v}");

    // Alice, the one eligible agent, is busy: a new callback would wait about 5 minutes (the
    // default handling time), so 3 minutes before closing it cannot be served in time.
    use boomerang::routing::StateKind;
    for state in [StateKind::NotReady, StateKind::Ready, StateKind::Busy] {
        e.dispatch.set_agent_state("alice", state, None).unwrap();
    }
    let (_, v) = get(
        &url,
        "/callbacks/open-for/Office_VQ_CB?start=2026-03-02T16:57:00Z",
    )
    .await;
    assert_eq!(v["data"]["openFor"], 180, "{v}");
    assert_eq!(v["data"]["isWithinImmediateOfferTime"], false, "{v}");
    clock.set(
        DateTime::parse_from_rfc3339("2026-03-02T16:57:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let (_, v) = get(&url, "/callbacks/open-for/Office_VQ_CB").await;
    assert_eq!(
        v["data"]["isWithinImmediateOfferTime"], false,
        "now + EWT is past closing: {v}"
    );
    let (_, v) = get(
        &url,
        "/callbacks/open-for/Office_VQ_CB?start=2026-03-02T16:50:00Z",
    )
    .await;
    assert_eq!(v["data"]["isWithinImmediateOfferTime"], true, "{v}");
}

/// An administration token for `root`.
async fn admin_token(base: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/admin/login"))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["data"]["accessToken"].as_str().unwrap().to_string()
}

async fn admin_post(base: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/admin{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn assert_bad_time(s: u16, v: &Value, what: &str) {
    assert_eq!(s, 400, "{what}: {v}");
    // The GES surface wraps errors in `status`; the administration keeps them flat.
    let msg = v["status"]["message"]
        .as_str()
        .or(v["message"].as_str())
        .unwrap_or_default();
    assert!(msg.starts_with("desiredTime:"), "{what}: {v}");
}

#[tokio::test]
async fn desired_times_are_validated_alike_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    let base = format!("http://{}", e.http_addr);
    let token = admin_token(&base).await;
    let q = "Office_VQ_CB";
    let ok_time = "2026-03-03T10:00:00Z";
    let bad = [
        ("year 9999", "9999-01-01T10:00:00Z"),
        ("past max_days_ahead", "2026-03-20T10:00:00Z"),
        ("in the past", "2026-03-01T10:00:00Z"),
    ];
    // Create, by an app and by an administrator.
    for (what, t) in bad {
        let (s, v) = post(
            &url,
            "/callbacks/create",
            json!({"serviceName": q, "phoneNumber": "+33612345678", "desiredTime": t}),
        )
        .await;
        assert_bad_time(s, &v, &format!("API create {what}"));
        let (s, v) = admin_post(
            &base,
            &token,
            "/callbacks",
            json!({"serviceName": q, "phoneNumber": "+33612345678", "desiredTime": t}),
        )
        .await;
        assert_bad_time(s, &v, &format!("admin create {what}"));
    }
    // Reschedule, by an app and by an administrator.
    let (s, v) = post(
        &url,
        "/callbacks/create",
        json!({"serviceName": q, "phoneNumber": "+33612345678", "desiredTime": ok_time}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    for (what, t) in bad {
        let (s, v) = post(
            &url,
            "/callbacks/reschedule",
            json!({"id": id, "desiredTime": t}),
        )
        .await;
        assert_bad_time(s, &v, &format!("API reschedule {what}"));
        let (s, v) = admin_post(
            &base,
            &token,
            &format!("/callbacks/{id}/reschedule"),
            json!({"desiredTime": t}),
        )
        .await;
        assert_bad_time(s, &v, &format!("admin reschedule {what}"));
    }
    // Nothing was changed by the refusals; a valid move is taken.
    let (_, v) = post(&url, "/callbacks/retrieve", json!({"id": id})).await;
    assert_eq!(v["data"]["callbackState"], "SCHEDULED", "{v}");
    let (s, v) = post(
        &url,
        "/callbacks/reschedule",
        json!({"id": id, "desiredTime": "2026-03-16T10:00:00Z"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}
