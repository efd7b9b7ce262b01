//! The API tried from outside as a GES client and as a hostile one would: situations the other
//! modules do not cover, each one a defect found by probing (line-of-business restrictions on
//! every listing, bounded error log, GES forms, CORS headers, precise path errors, the last
//! administrator).

use crate::common;
use crate::common::admin_call as call;

use std::path::Path;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::engine::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

/// An engine with an administrator, a Sales-only monitor, supervisor and developer, and two
/// queues, on the admin tests' Monday morning.
async fn engine(dir: &Path) -> (Engine, String, ManualClock) {
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
  cors_origins: ['https://app.example']
admin:
  users:
    - {{name: root, password_hash: '{hash}', roles: [Administrator]}}
    - {{name: mon, password_hash: '{hash}', roles: [Monitor], queues: [Sales_VQ_CB]}}
    - {{name: sup, password_hash: '{hash}', roles: [Supervisor], queues: [Sales_VQ_CB]}}
    - {{name: devs, password_hash: '{hash}', roles: [Developer], queues: [Sales_VQ_CB]}}
business_hours:
  office: {{time_zone: Europe/Paris, weekly: {{mon: '08:00-18:00', tue: '08:00-18:00', wed: '08:00-18:00', thu: '08:00-18:00', fri: '08:00-18:00', sat: closed, sun: closed}}}}
agents:
  - {{id: alice, skills: {{Sales: 7}}}}
queues:
  - {{name: Sales_VQ_CB, skill_expression: Sales > 3}}
  - {{name: Service_VQ_CB, business_hours: office}}
callin_groups:
  - {{name: App, dnis: [{{number: '8001'}}], generate_access_code: true}}
"
    );
    let clock = ManualClock::new(common::monday_9am_utc());
    let shared: SharedClock = clock.shared();
    let (e, url) = common::start_engine_from_file(dir, yaml, shared).await;
    (e, url, clock)
}

/// Books an immediate callback on `queue` through the v3 API; its id.
async fn book(url: &str, queue: &str) -> uuid::Uuid {
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&json!({"serviceName": queue, "phoneNumber": "+33123456789"}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    v["data"]["id"].as_str().unwrap().parse().unwrap()
}

/// A recording of one second of silence for `callback`, stored as the Record block does.
async fn record(e: &Engine, callback: Option<uuid::Uuid>) -> uuid::Uuid {
    let rec = boomerang::recordings::Recording {
        id: uuid::Uuid::new_v4(),
        created: common::monday_9am_utc(),
        duration_ms: 1000,
        bytes: 0,
        ended: "hang_up".into(),
        call_id: format!("call-{}", uuid::Uuid::new_v4()),
        ani: "+33123456789".into(),
        dnis: "8000".into(),
        callback_id: callback,
    };
    boomerang::recordings::save(
        e.core.store.as_ref(),
        &e.core.config.data_dir(),
        vec![0; 8000],
        rec,
    )
    .await
    .unwrap()
    .id
}

/// A user restricted to some queues sees only their recordings: the list leaves out the other
/// queues' recordings (and those of calls that served no callback, whose queue is unknown), and
/// downloading one of them answers 404 as for a callback outside the user's queues.
#[tokio::test]
async fn recordings_of_other_queues_are_hidden_from_a_user_restricted_to_some_queues() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    let sales = book(&url, "Sales_VQ_CB").await;
    let service = book(&url, "Service_VQ_CB").await;
    let sales_rec = record(&e, Some(sales)).await;
    let service_rec = record(&e, Some(service)).await;
    let loose_rec = record(&e, None).await;
    let admin = |p: &str| format!("{url}/admin{p}");

    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, all) = call(Method::GET, &admin("/recordings"), Some(&root), None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"].as_array().unwrap().len(), 3, "{all}");

    for user in ["mon", "sup"] {
        let token = common::admin_login(&url, user, PASSWORD).await;
        let (status, v) = call(Method::GET, &admin("/recordings"), Some(&token), None).await;
        assert_eq!(status, 200, "{v}");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![sales_rec.to_string()], "{user} sees {v}");
        let q = format!("/recordings?callbackId={service}");
        let (status, v) = call(Method::GET, &admin(&q), Some(&token), None).await;
        assert_eq!((status, v["data"].clone()), (200, json!([])), "{user}: {v}");
    }
    let sup = common::admin_login(&url, "sup", PASSWORD).await;
    let get = |id: uuid::Uuid| {
        let sup = sup.clone();
        let u = admin(&format!("/recordings/{id}"));
        async move {
            reqwest::Client::new()
                .get(u)
                .bearer_auth(sup)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(sales_rec).await, 200);
    assert_eq!(get(service_rec).await, 404, "another queue's recording");
    assert_eq!(get(loose_rec).await, 404, "a recording of no known queue");
    let (status, _) = call(
        Method::GET,
        &admin(&format!("/recordings/{service_rec}")),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "the administrator reads every queue");
}

/// Stores one survey response given in `queue`, as the survey block does.
async fn survey_answer(e: &Engine, queue: &str, answer: u8) {
    use boomerang::flow::survey::{Answer, SurveyResponse, save};
    let r = SurveyResponse {
        id: uuid::Uuid::new_v4(),
        at: common::monday_9am_utc(),
        survey: "csat".into(),
        call_id: format!("call-{queue}"),
        ani: "+33123456789".into(),
        queue: queue.into(),
        agent: "alice".into(),
        callback_id: None,
        answers: vec![Answer {
            question: "q1".into(),
            answer: Some(answer),
        }],
    };
    save(e.core.store.as_ref(), &r).await.unwrap();
}

/// The survey export of a user restricted to some queues holds only those queues' answers.
#[tokio::test]
async fn survey_answers_of_other_queues_are_left_out_of_a_restricted_users_export() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    survey_answer(&e, "Sales_VQ_CB", 5).await;
    survey_answer(&e, "Service_VQ_CB", 1).await;
    let csv_as = |user: &'static str| {
        let url = url.clone();
        async move {
            let token = common::admin_login(&url, user, PASSWORD).await;
            let resp = reqwest::Client::new()
                .get(format!("{url}/admin/surveys.csv"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{user}");
            resp.text().await.unwrap()
        }
    };
    let all = csv_as("root").await;
    assert!(
        all.contains(",Sales_VQ_CB,") && all.contains(",Service_VQ_CB,"),
        "{all}"
    );
    let sales = csv_as("sup").await;
    assert!(sales.contains(",Sales_VQ_CB,"), "{sales}");
    assert!(
        !sales.contains("Service_VQ_CB"),
        "another queue's answers: {sales}"
    );
}

/// The error log (Developer > Errors) keeps a bounded part of what a client sent: a request
/// with a 60 kB URI and no key, and one whose 60 kB queue name the error message names, leave
/// entries of at most 1 kB of URI and message each (else 1000 such requests, the first one
/// needing no key, would hold over 100 MB), still recognisable by their start.
#[tokio::test]
async fn the_error_log_keeps_a_bounded_part_of_long_uris_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let long = "a".repeat(60_000);
    let http = reqwest::Client::new();
    let anonymous = http
        .get(format!("{url}/engagement/v3/callbacks?{long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let keyed = http
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&json!({"serviceName": long, "phoneNumber": "+33123456789"}))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status().as_u16(), 400);

    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::GET,
        &format!("{url}/admin/developer/errors"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let entries = v["data"].as_array().unwrap();
    let of = |code: u64| {
        entries
            .iter()
            .find(|x| x["code"] == code)
            .unwrap_or_else(|| panic!("no {code} entry in {v}"))
    };
    let (unauthorized, bad) = (of(40101), of(40001));
    assert!(
        unauthorized["uri"]
            .as_str()
            .unwrap()
            .starts_with("/engagement/v3/callbacks?aaa")
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("serviceName: unknown virtual queue")
    );
    for e in entries {
        for field in ["uri", "message"] {
            let len = e[field].as_str().unwrap().len();
            assert!(
                len <= 1024,
                "{field} of {} kept whole: {len} bytes",
                e["code"]
            );
        }
    }
}

/// GET with the API key; status and body.
async fn get_v3(url: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{url}/engagement/v3{path}"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Open-for reads `start` as availability does (GES gives both `start` and `timezone`): the
/// local form `…SSS` in `timezone` (UTC without it), the `…SSSZ` form as it says; an unknown
/// time zone is a 400 naming `timezone` rather than silently ignored.
#[tokio::test]
async fn open_for_reads_a_local_start_in_the_given_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    // The office closes at 18:00 in Paris (17:00 UTC) on Monday 2 March 2026.
    let open_for = |q: &'static str| {
        let url = url.clone();
        async move {
            let (status, v) = get_v3(&url, &format!("/callbacks/open-for/Service_VQ_CB?{q}")).await;
            assert_eq!(status, 200, "{q}: {v}");
            v["data"]["openFor"].as_i64().unwrap()
        }
    };
    assert_eq!(
        open_for("start=2026-03-02T10:00:00.000&timezone=Europe/Paris").await,
        8 * 3600,
        "10:00 in Paris"
    );
    assert_eq!(
        open_for("start=2026-03-02T10:00:00.000").await,
        7 * 3600,
        "10:00 UTC, 11:00 in Paris"
    );
    assert_eq!(
        open_for("start=2026-03-02T10:00:00.000Z&timezone=Europe/Paris").await,
        7 * 3600,
        "an instant with its offset is that instant"
    );
    let (status, v) = get_v3(
        &url,
        "/callbacks/open-for/Service_VQ_CB?start=2026-03-02T10:00:00.000&timezone=Mars/Olympus",
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let message = v["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("timezone:"), "{v}");
    let (status, v) = get_v3(&url, "/callbacks/open-for/Service_VQ_CB?start=tomorrow").await;
    assert_eq!(status, 400, "{v}");
    let message = v["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("start:") && message.contains("ISO 8601"),
        "{v}"
    );
}

/// A path parameter that does not parse (an id that is not a UUID, bytes that are not UTF-8)
/// gets a 400 whose message says which parameter and why, not a bare "bad request".
#[tokio::test]
async fn a_malformed_path_parameter_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::GET,
        &format!("{url}/admin/callbacks/not-a-uuid"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("not-a-uuid") && message.contains("UUID"),
        "{v}"
    );
    let (status, v) = get_v3(&url, "/callbacks/queue-status/%FF").await;
    assert_eq!(status, 400, "{v}");
    let message = v["status"]["message"].as_str().unwrap();
    assert!(message.contains("UTF-8"), "{v}");
    assert!(v["status"]["corrId"].is_string(), "{v}");
}

/// A browser app on an allowed origin may send what GES clients send: the statistics proxy's
/// `cache-control: max-age=N` and an `x-correlation-id` of its own (which the API takes up);
/// the preflight allows them beside `content-type` and `x-api-key`.
#[tokio::test]
async fn a_cors_preflight_allows_the_headers_ges_clients_send() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let resp = reqwest::Client::new()
        .request(
            Method::OPTIONS,
            format!("{url}/engagement/v3/statistics/operations/get-statistic-ex"),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-api-key,cache-control,x-correlation-id",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers();
    assert_eq!(
        h.get("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    let allowed: Vec<String> = h
        .get_all("access-control-allow-headers")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    for want in [
        "content-type",
        "x-api-key",
        "cache-control",
        "x-correlation-id",
    ] {
        assert!(
            allowed.iter().any(|a| a == want),
            "{want} not in {allowed:?}"
        );
    }
}

/// The last Administrator can neither drop the role nor be deleted (nobody could manage users
/// any more, short of editing the file and restarting): 409; once another Administrator
/// exists, both work. The situation arises when the file's first administrator is removed
/// after the real ones were created through the API.
#[tokio::test]
async fn the_last_administrator_cannot_be_demoted_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::POST,
        &format!("{url}/admin/users"),
        Some(&root),
        Some(json!({"name": "boss", "password": PASSWORD, "roles": ["Administrator"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    e.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // The same store, the file without its administrator: boss is the only one.
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
admin:
  users:
    - {{name: mon, password_hash: '{hash}', roles: [Monitor]}}
queues:
  - {{name: Sales_VQ_CB}}
"
    );
    let clock: SharedClock = ManualClock::new(common::monday_9am_utc()).shared();
    let (e, url) = common::start_engine_from_file(dir.path(), yaml, clock).await;
    let boss = common::admin_login(&url, "boss", PASSWORD).await;
    let users = format!("{url}/admin/users");
    let (status, v) = call(
        Method::PUT,
        &format!("{users}/boss"),
        Some(&boss),
        Some(json!({"roles": ["Monitor"]})),
    )
    .await;
    assert_eq!(status, 409, "demoting the last administrator: {v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("last Administrator"),
        "{v}"
    );
    let (status, v) = call(Method::DELETE, &format!("{users}/boss"), Some(&boss), None).await;
    assert_eq!(status, 409, "deleting the last administrator: {v}");
    let (status, v) = call(Method::GET, &users, Some(&boss), None).await;
    assert_eq!(status, 200, "boss is still an administrator: {v}");
    // A password change keeps the role: allowed.
    let (status, v) = call(
        Method::PUT,
        &format!("{users}/boss"),
        Some(&boss),
        Some(json!({"password": "another long one"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // The new password ended boss's sessions: in again.
    let boss = common::admin_login(&url, "boss", "another long one").await;

    let (status, v) = call(
        Method::POST,
        &users,
        Some(&boss),
        Some(json!({"name": "deputy", "password": PASSWORD, "roles": ["Administrator"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(
        Method::PUT,
        &format!("{users}/boss"),
        Some(&boss),
        Some(json!({"roles": ["Supervisor", "Administrator"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(Method::DELETE, &format!("{users}/boss"), Some(&boss), None).await;
    assert_eq!(status, 200, "another administrator remains: {v}");
    e.shutdown();
}

/// An agent created through the API without a SIP user (it defaults to the id) is there after
/// the restart its answer announces (`appliesAt: restart`), skills included: the stored
/// definition is read back, not skipped as unreadable.
#[tokio::test]
async fn an_agent_created_without_a_sip_user_is_running_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::POST,
        &format!("{url}/admin/agents"),
        Some(&root),
        Some(json!({"id": "dora", "skills": {"Sales": 9}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["appliesAt"], "restart", "{v}");
    e.shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let (e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::GET,
        &format!("{url}/admin/agents"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let dora = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "dora")
        .unwrap_or_else(|| panic!("dora is lost after the restart: {v}"))
        .clone();
    assert_eq!(dora["sipUser"], "dora", "{dora}");
    assert_eq!(dora["skills"], json!({"Sales": 9}), "{dora}");
    assert_ne!(dora["appliesAt"], "restart", "{dora}");
    assert_eq!(dora["state"], "logged_out", "{dora}");
    e.shutdown();
}

/// A push event of `queue` waiting in the outbox for a webhook.
async fn outbox_entry(e: &Engine, queue: &str) {
    use boomerang::push::{OutboxEntry, PushEvent, PushKind, PushTarget};
    let event = PushEvent {
        id: uuid::Uuid::new_v4(),
        kind: PushKind::CallbackPurged,
        callback_id: uuid::Uuid::new_v4(),
        queue: queue.into(),
        at: common::monday_9am_utc(),
        targets: Vec::new(),
        data: json!({}),
    };
    let target = PushTarget {
        channel: "WEBHOOK".into(),
        target: "http://127.0.0.1:9/hook".into(),
    };
    e.core
        .store
        .save_outbox(vec![OutboxEntry::new(&event, target)])
        .await
        .unwrap();
}

/// The push outbox (Developer tab) of a user restricted to some queues lists only the events
/// of those queues.
#[tokio::test]
async fn push_events_of_other_queues_are_left_out_of_a_restricted_users_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    outbox_entry(&e, "Sales_VQ_CB").await;
    outbox_entry(&e, "Service_VQ_CB").await;
    let queues_seen_by = |user: &'static str| {
        let url = url.clone();
        async move {
            let token = common::admin_login(&url, user, PASSWORD).await;
            let (status, v) = call(
                Method::GET,
                &format!("{url}/admin/push/outbox"),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(status, 200, "{user}: {v}");
            let mut queues: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["event"]["queue"].as_str().unwrap().to_string())
                .collect();
            queues.sort();
            queues
        }
    };
    assert_eq!(
        queues_seen_by("root").await,
        ["Sales_VQ_CB", "Service_VQ_CB"]
    );
    assert_eq!(queues_seen_by("devs").await, ["Sales_VQ_CB"]);
}

/// Instants at the far end of what the date library holds (epoch milliseconds of the year
/// 262142, a local start of that year) are refused with a 400 naming the field, instead of
/// a panic that drops the connection without an answer; the engine answers on.
#[tokio::test]
async fn instants_beyond_the_year_9999_are_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    for (path, field) in [
        (
            "/callbacks/availability/Service_VQ_CB?startMS=8210266876799999",
            "startMS",
        ),
        (
            "/callbacks/availability/Service_VQ_CB?startMS=8200000000000000&numberOfDays=90",
            "startMS",
        ),
        (
            "/callbacks/availability/Service_VQ_CB?start=2026-03-02T10:00:00.000Z&endMS=8210266876799999",
            "endMS",
        ),
        (
            "/callbacks/availability/Service_VQ_CB?start=%2B262142-12-31T23:00:00",
            "start",
        ),
        (
            "/callbacks/open-for/Service_VQ_CB?start=%2B262142-12-31T23:00:00",
            "start",
        ),
    ] {
        let resp = reqwest::Client::new()
            .get(format!("{url}/engagement/v3{path}"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer: {e}"));
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{path}: {v}");
        let message = v["status"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{field}:")), "{path}: {v}");
    }
    let (status, _) = get_v3(&url, "/callbacks/queue-status/Sales_VQ_CB").await;
    assert_eq!(status, 200);
}

/// `POST /call-in/requests/create` with `body`: status and body.
async fn call_in(url: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/call-in/requests/create"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A call-in request's `userData` follows create's rules, as GES says: any JSON value (kept as
/// text), keys that are not JavaScript identifiers dropped, and the same bounds (64 entries,
/// 16 KiB), so that requests cannot each hold 64 KiB in memory and on disk until they expire.
#[tokio::test]
async fn call_in_user_data_follows_the_rules_of_create() {
    let dir = tempfile::tempdir().unwrap();
    let (e, url, _clock) = engine(dir.path()).await;
    let (status, v) = call_in(
        &url,
        json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB",
               "userData": {"count": 5, "vip": true, "name": "Zoë", "bad key": "x"}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id: uuid::Uuid = v["data"]["id"].as_str().unwrap().parse().unwrap();
    let kept = e.core.callin.get(id).unwrap().routing.user_data;
    let want: std::collections::BTreeMap<String, String> =
        [("count", "5"), ("name", "Zoë"), ("vip", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(kept, want);

    let (status, v) = call_in(
        &url,
        json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB",
               "userData": {"k": "x".repeat(60_000)}}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("userData:"),
        "{v}"
    );
    let many: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, v) = call_in(
        &url,
        json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB", "userData": many}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("userData:"),
        "{v}"
    );
}

/// A call-in request's `fromPhoneNumber` (compared with the caller's number) is bounded like
/// the other text fields: 60 kB of it, or control characters, are a 400 naming the field
/// rather than kept in memory and on disk until the request expires.
#[tokio::test]
async fn call_in_from_phone_number_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    for bad in ["1".repeat(60_000), "+331\n23".to_string(), String::new()] {
        let (status, v) = call_in(
            &url,
            json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB", "fromPhoneNumber": bad}),
        )
        .await;
        assert_eq!(status, 400, "{}", v["status"]);
        let message = v["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("fromPhoneNumber:"), "{}", v["status"]);
    }
    let (status, v) = call_in(
        &url,
        json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB", "fromPhoneNumber": "+33612345678"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["fromPhoneNumber"], "+33612345678");
}

/// A client that sends requests but never reads the answers cannot hold its connection (and
/// the engine's send buffers) for ever: once an answer has waited `api.body_timeout_seconds`
/// for the client to take it, the connection is closed. 200 pipelined requests for the
/// OpenAPI document (11 MB of answers), a pause, then reading: only what the socket buffers
/// held arrives, not the 200 answers.
#[tokio::test]
async fn a_client_that_does_not_read_its_answers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
  header_timeout_seconds: 1
  body_timeout_seconds: 1
queues:
  - {{name: Sales_VQ_CB}}
"
    );
    let clock: SharedClock = ManualClock::new(common::monday_9am_utc()).shared();
    let (e, _url) = common::start_engine_from_file(dir.path(), yaml, clock).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(e.http_addr).await.unwrap();
    const N: usize = 200;
    let request = format!("GET /openapi.json HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n\r\n");
    s.write_all(request.repeat(N).as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;

    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = boomerang::clock::tokio_now() + std::time::Duration::from_secs(60);
    let closed = loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    assert!(closed, "the connection is closed");
    let answers = got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert!(answers > 0, "the first answers were sent");
    assert!(
        answers < N,
        "a stalled reader was cut off: {answers} of {N} answers arrived"
    );
    e.shutdown();
}

/// `null` for an optional map or list (`userData`, `pushTargets`; call-in `userData`) means
/// absent, as it already does for `desiredTime` or `priority`: a client that writes every
/// optional field, null when unset, can book.
#[tokio::test]
async fn null_optional_maps_and_lists_read_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33123456789",
                      "desiredTime": null, "priority": null, "userData": null, "pushTargets": null}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let (status, v) = call_in(
        &url,
        json!({"groupName": "App", "virtualQueue": "Sales_VQ_CB", "userData": null}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// A callback query whose `to` is before its `from` is a 400 naming `to`, as availability's
/// and bulk cancel's inverted ranges are, not an empty list that reads as "no callbacks".
#[tokio::test]
async fn an_inverted_query_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    book(&url, "Sales_VQ_CB").await;
    let range = "from=2026-03-03T00:00:00Z&to=2026-03-01T00:00:00Z";
    let (status, v) = get_v3(&url, &format!("/callbacks?{range}")).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["status"]["message"].as_str().unwrap().starts_with("to:"),
        "{v}"
    );
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::GET,
        &format!("{url}/admin/callbacks?{range}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("to:"), "{v}");
    let (status, v) = get_v3(
        &url,
        "/callbacks?from=2026-03-01T00:00:00Z&to=2026-03-03T00:00:00Z",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["callbacks"].as_array().unwrap().len(), 1, "{v}");
}

/// Cancelling a callback that has already ended is a 409 that says so, with how it ended
/// (`already COMPLETED (CANCELLED)`), not "a COMPLETED callback cannot become COMPLETED".
#[tokio::test]
async fn cancelling_an_ended_callback_says_it_has_already_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let id = book(&url, "Sales_VQ_CB").await;
    let cancel = || {
        reqwest::Client::new()
            .post(format!("{url}/engagement/v3/callbacks/cancel"))
            .header("x-api-key", KEY)
            .json(&json!({"id": id}))
            .send()
    };
    assert_eq!(cancel().await.unwrap().status().as_u16(), 200);
    let again = cancel().await.unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let v: Value = again.json().await.unwrap();
    let message = v["status"]["message"].as_str().unwrap();
    assert!(message.contains("already COMPLETED (CANCELLED)"), "{v}");
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let (status, v) = call(
        Method::POST,
        &format!("{url}/admin/callbacks/{id}/cancel"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("already COMPLETED (CANCELLED)"),
        "{v}"
    );
}

/// The audit log and the call-in records refuse an inverted range as the callback query does.
#[tokio::test]
async fn an_inverted_audit_or_call_in_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let range = "from=2026-03-03T00:00:00Z&to=2026-03-01T00:00:00Z";
    for list in ["/admin/audit", "/admin/callin/records"] {
        let (status, v) = call(
            Method::GET,
            &format!("{url}{list}?{range}"),
            Some(&root),
            None,
        )
        .await;
        assert_eq!(status, 400, "{list}: {v}");
        assert!(
            v["message"].as_str().unwrap().starts_with("to:"),
            "{list}: {v}"
        );
    }
}

/// A password change ends the user's open sessions (as a deletion does): after a suspected
/// compromise, the administrator's reset locks out whoever holds a token, which otherwise
/// stays good as long as it is used. Role changes keep sessions (they apply at once).
#[tokio::test]
async fn a_password_change_ends_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (_e, url, _clock) = engine(dir.path()).await;
    let root = common::admin_login(&url, "root", PASSWORD).await;
    let users = format!("{url}/admin/users");
    let (status, v) = call(
        Method::POST,
        &users,
        Some(&root),
        Some(json!({"name": "lina", "password": PASSWORD, "roles": ["Monitor"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let lina = common::admin_login(&url, "lina", PASSWORD).await;
    let me = format!("{url}/admin/me");
    let (status, v) = call(
        Method::PUT,
        &format!("{users}/lina"),
        Some(&root),
        Some(json!({"roles": ["Supervisor"]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(Method::GET, &me, Some(&lina), None).await;
    assert_eq!(status, 200, "a role change keeps the session: {v}");
    assert_eq!(v["data"]["roles"], json!(["Supervisor"]));
    let (status, v) = call(
        Method::PUT,
        &format!("{users}/lina"),
        Some(&root),
        Some(json!({"password": "a brand new secret"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call(Method::GET, &me, Some(&lina), None).await;
    assert_eq!(status, 401, "the old session ended with the password: {v}");
    let fresh = common::admin_login(&url, "lina", "a brand new secret").await;
    let (status, _) = call(Method::GET, &me, Some(&fresh), None).await;
    assert_eq!(status, 200);
}
