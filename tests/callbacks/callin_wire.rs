//! Click-to-Call-In over real SIP and RTP on loopback: an app asks the REST API for a call-in
//! number and access code; SIPp calls that number from the requesting ANI and keys the code as
//! RFC 4733 events; the engine matches and routes the caller to the registered agent (another
//! SIPp), or refuses a wrong code, an expired request and a used one with the flow's message
//! and a hang-up. The guessing guard drops a number that keeps trying codes. The engine runs on
//! a manual clock, so a request expires when the test says.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boomerang::callin::CallInState;
use boomerang::clock::{Clock, ManualClock};
use boomerang::engine::Engine;
use boomerang::routing::StateKind;
use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

const KEY: &str = "callin-wire-key";

struct Running {
    engine: Engine,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn engine() -> Running {
    common::capture_logs();
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = common::demo_config(dir.path(), |spec| {
        spec.api.keys.push(common::api_key("app", KEY))
    });
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let engine = Engine::start(Arc::new(config), clock.shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Running {
        engine,
        clock,
        _dir: dir,
    }
}

/// What the app gets back from `/call-in/requests/create`.
struct Granted {
    id: Uuid,
    number: String,
    code: String,
}

impl Running {
    async fn request(&self, ani: &str) -> Granted {
        let r: Value = reqwest::Client::new()
            .post(format!(
                "http://{}/engagement/v3/call-in/requests/create",
                self.engine.http_addr
            ))
            .header("x-api-key", KEY)
            .json(&json!({
                "groupName": "DemoApp",
                "fromPhoneNumber": ani,
                "virtualQueue": "Sales_VQ",
                "priority": 3
            }))
            .send()
            .await
            .expect("HTTP request")
            .json()
            .await
            .expect("JSON answer");
        let data = &r["data"];
        Granted {
            id: data["id"].as_str().unwrap_or_default().parse().expect("id"),
            number: data["toPhoneNumber"].as_str().unwrap_or_default().into(),
            code: data["accessCode"].as_str().unwrap_or_default().into(),
        }
    }

    fn sip(&self) -> SocketAddr {
        self.engine.sip.udp[0]
    }

    fn state(&self, id: Uuid) -> Option<CallInState> {
        self.engine.callin.get(id).map(|r| r.state)
    }
}

/// SIPp pcap replays for `entries` (each one keyed after `gap_ms` of prompts), one RFC 4733
/// event per key.
fn keys(entries: &[String], gap_ms: u32) -> String {
    let mut xml = String::new();
    for entry in entries {
        xml += &format!("  <pause milliseconds=\"{gap_ms}\"/>\n");
        for k in entry.chars() {
            let name = match k {
                '#' => "pound".to_string(),
                '*' => "star".to_string(),
                d => d.to_string(),
            };
            xml += &format!(
                "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/dtmf_2833_{name}.pcap\"/></action></nop>\n  <pause milliseconds=\"400\"/>\n"
            );
        }
    }
    xml
}

/// Calls `number` from `ani`, keys `entries`, and expects the engine's BYE. Returns the
/// flow's trace as the engine logged it.
async fn call(r: &Running, ani: &str, number: &str, entries: &[String]) -> String {
    let call_id = format!("callin-{}", Uuid::new_v4());
    let dir = tempfile::tempdir().expect("temporary directory");
    let template = std::fs::read_to_string(common::repo().join("tests/sipp/call-in-caller.xml"))
        .expect("scenario template");
    let scenario = template
        .replace("@DNIS@", number)
        .replace("@ANI@", ani)
        .replace("@KEYS@", &keys(entries, 1500));
    let path = dir.path().join("call-in-caller.xml");
    std::fs::write(&path, scenario).expect("write scenario");
    let out = common::sipp_client(&path, r.sip(), &["-cid_str", &call_id]).await;
    assert!(
        out.status.success(),
        "the caller did not get the engine's BYE: {}",
        common::sipp_report(&out)
    );
    // The flow's trace is logged once the call has ended.
    for _ in 0..100 {
        let lines = common::log_lines(&["blocks visited", &call_id]);
        if let Some(l) = lines.first() {
            return l.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no flow trace logged for {call_id}");
}

/// The flow refused each of three codes for `failure` with its message, then said goodbye
/// and hung up without routing the caller.
fn refused_three_times(trace: &str, failure: &str) {
    let refusal = format!("no match ({failure})");
    assert_eq!(trace.matches(&refusal).count(), 3, "{trace}");
    assert_eq!(
        trace.matches("invalid (play_message)").count(),
        3,
        "{trace}"
    );
    assert!(trace.contains("farewell (play_message)"), "{trace}");
    assert!(trace.contains("bye (terminate_call)"), "{trace}");
    assert!(!trace.contains("route (route_call)"), "{trace}");
}

fn entry(code: &str) -> String {
    format!("{code}#")
}

/// A code of the right length that is not `code`.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '9' {
                '0'
            } else {
                ((c as u8) + 1) as char
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_code_from_the_requesting_number_reaches_the_agent_and_a_second_call_is_refused()
{
    let r = engine().await;
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    common::register_alice(r.sip(), &format!("127.0.0.1:{agent_port}")).await;
    let agents = r.engine.router.agents();
    let alice = agents.index_of("alice").expect("alice");
    assert_eq!(agents.get(alice).state(), StateKind::Ready);

    let ani = "+33612345678";
    let g = r.request(ani).await;
    assert_eq!(
        g.number, "8001",
        "the demo group's only number, as configured"
    );
    assert_eq!(g.code.len(), 6);
    assert_eq!(r.state(g.id), Some(CallInState::Pending));

    let trace = call(&r, ani, &g.number, &[entry(&g.code)]).await;
    assert!(
        trace.contains("match (click_to_call_in_match): matched request for queue Sales_VQ"),
        "{trace}"
    );
    assert!(
        trace.contains("route (route_call): connected to alice"),
        "{trace}"
    );
    let matched = r.engine.callin.get(g.id).expect("request");
    assert_eq!(matched.state, CallInState::Completed);
    assert_eq!(matched.matched_at, Some(r.clock.now()));
    common::sipp_succeeded(&mut phone, "the agent").await;

    // The same code again: the request was used. Refused three times, then goodbye and BYE.
    let again = vec![entry(&g.code); 3];
    let trace = call(&r, ani, &g.number, &again).await;
    refused_three_times(&trace, "the request was already used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_is_refused_with_the_message_and_the_third_ends_the_call() {
    let r = engine().await;
    let ani = "+33611111111";
    let g = r.request(ani).await;
    let bad = wrong(&g.code);
    let trace = call(&r, ani, &g.number, &vec![entry(&bad); 3]).await;
    refused_three_times(&trace, "no request matches");
    assert_eq!(r.state(g.id), Some(CallInState::Pending), "still usable");
    // Each wrong code was logged with the calling number.
    assert_eq!(
        common::log_lines(&["call-in: wrong access code", ani]).len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_request_is_refused_with_the_message_and_a_hang_up() {
    let r = engine().await;
    let ani = "+33622222222";
    let g = r.request(ani).await;
    // The demo group's requests live 300 s.
    r.clock.advance(TimeDelta::seconds(301));
    // Up to 10 s (was 2 s) for the expiry to be applied.
    for _ in 0..500 {
        if r.state(g.id) == Some(CallInState::Expired) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(r.state(g.id), Some(CallInState::Expired));
    let trace = call(&r, ani, &g.number, &vec![entry(&g.code); 3]).await;
    refused_three_times(&trace, "the request has expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_that_keeps_guessing_is_told_and_dropped_even_with_the_right_code() {
    let r = engine().await;
    let ani = "+33633333333";
    let g = r.request(ani).await;
    let bad = wrong(&g.code);
    // Three wrong codes end the first call (the flow's limit per call)...
    call(&r, ani, &g.number, &vec![entry(&bad); 3]).await;
    // ...and two more within the minute reach the limit per number (5): the right code is
    // then refused too, the caller hears goodbye and is dropped.
    let trace = call(
        &r,
        ani,
        &g.number,
        &[entry(&bad), entry(&bad), entry(&g.code)],
    )
    .await;
    assert!(
        trace.contains("no match (too many wrong access codes from this number)"),
        "{trace}"
    );
    assert!(trace.contains("farewell (play_message)"), "{trace}");
    assert!(trace.contains("bye (terminate_call)"), "{trace}");
    assert_eq!(r.state(g.id), Some(CallInState::Pending), "never matched");
    assert_eq!(
        common::log_lines(&["call-in: wrong access code", ani]).len(),
        5
    );
    assert!(!common::log_lines(&["too many wrong access codes", ani]).is_empty());
}

impl Running {
    /// POSTs `body` to `path` under `/engagement/v3` with the API key; status and JSON answer.
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!(
                "http://{}/engagement/v3{path}",
                self.engine.http_addr
            ))
            .header("x-api-key", KEY)
            .json(&body)
            .send()
            .await
            .expect("HTTP request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_could_not_be_routed_is_refused_at_creation() {
    let r = engine().await;
    // Neither a queue nor a callback: the matched call would have nowhere to go.
    let (status, body) = r
        .post(
            "/call-in/requests/create",
            json!({"groupName": "DemoApp", "fromPhoneNumber": "+33644444444"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("virtualQueue"), "{body}");
    // A callback that does not exist cannot be served either.
    let (status, body) = r
        .post(
            "/call-in/requests/create",
            json!({"groupName": "DemoApp", "callbackServiceId": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("callbackServiceId"), "{body}");
    assert!(r.engine.callin.records(None, None, None).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matched_caller_who_cannot_be_routed_hears_an_apology_and_keeps_the_request() {
    // A request without a queue, as an earlier version stored it, is back after a restart.
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = common::demo_config(dir.path(), |spec| {
        spec.api.keys.push(common::api_key("app", KEY))
    });
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let ani = "+33655555555";
    let stored = boomerang::callin::CallInRequest {
        id: Uuid::new_v4(),
        group: "DemoApp".into(),
        dnis: "8001".into(),
        access_code: Some("424242".into()),
        ani: Some(ani.into()),
        routing: Default::default(),
        callback_id: None,
        created_at: now,
        expires_at: now + TimeDelta::seconds(300),
        state: CallInState::Pending,
        matched_at: None,
    };
    {
        use boomerang::store::Store;
        let store = boomerang::store::SqliteStore::open(&config.data_dir()).expect("store");
        store
            .save_documents(vec![boomerang::callin::to_document(&stored)])
            .await
            .expect("saved");
    }
    common::capture_logs();
    let clock = ManualClock::new(now);
    let engine = Engine::start(Arc::new(config), clock.shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = Running {
        engine,
        clock,
        _dir: dir,
    };
    let trace = call(&r, ani, "8001", &[entry("424242")]).await;
    assert!(
        trace.contains("match (click_to_call_in_match): cannot route"),
        "{trace}"
    );
    assert!(trace.contains("sorry (play_message)"), "{trace}");
    assert!(!trace.contains("route (route_call)"), "{trace}");
    assert_eq!(
        r.state(stored.id),
        Some(CallInState::Pending),
        "not used up"
    );
    let warned = common::log_lines(&["WARN", "cannot be routed", &stored.id.to_string()]);
    assert_eq!(warned.len(), 1, "{warned:?}");
}

/// Registers carol's phone (SIP user 1003, the Support agent) at `contact`.
async fn register_carol(target: SocketAddr, contact: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let xml = std::fs::read_to_string(common::repo().join("tests/sipp/agent-register.xml"))
        .expect("scenario")
        .replace("1001", "1003");
    let path = dir.path().join("register.xml");
    std::fs::write(&path, xml).expect("write scenario");
    // Carol's demo password (REGISTER is authenticated by default).
    common::sipp_register(
        &path,
        target,
        contact,
        &["-au", "1003", "-ap", "carol-1003"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_call_in_reaches_the_callback_queue_and_completes_the_callback_with_agent() {
    use boomerang::callback::model::CompletionReason;
    let r = engine().await;
    let ani = "+33666666666";
    // The app books a customer-dials-in callback on the support line.
    let (status, body) = r
        .post(
            "/callbacks/create",
            json!({"serviceName": "Support_VQ_CB", "phoneNumber": ani}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let callback: Uuid = body["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("callback id");
    // Carol (Support) becomes ready: the callback is ready for the customer to call in.
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    register_carol(r.sip(), &format!("127.0.0.1:{agent_port}")).await;
    // The app asks for the number to call, tied to the callback (no queue of its own).
    let (status, body) = r
        .post(
            "/call-in/requests/create",
            json!({"groupName": "DemoApp", "fromPhoneNumber": ani, "callbackServiceId": callback}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let number = body["data"]["toPhoneNumber"].as_str().unwrap_or_default();
    let code = body["data"]["accessCode"].as_str().unwrap_or_default();
    let trace = call(&r, ani, number, &[entry(code)]).await;
    assert!(
        trace.contains("match (click_to_call_in_match): matched request for queue Support_VQ_CB"),
        "{trace}"
    );
    assert!(
        trace.contains("route (route_call): connected to carol"),
        "{trace}"
    );
    common::sipp_succeeded(&mut phone, "carol's phone").await;
    let (why, _) = common::until_completed(&r.engine, callback).await;
    assert_eq!(why, CompletionReason::Agent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_number_records_the_ani_that_matched_it() {
    let r = engine().await;
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    common::register_alice(r.sip(), &format!("127.0.0.1:{agent_port}")).await;
    // The app does not know the customer's number.
    let (status, body) = r
        .post(
            "/call-in/requests/create",
            json!({"groupName": "DemoApp", "virtualQueue": "Sales_VQ"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["toPhoneNumber"], "8001",
        "as configured: {body}"
    );
    assert_eq!(body["data"]["fromPhoneNumber"], Value::Null);
    let id: Uuid = body["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("id");
    let code = body["data"]["accessCode"].as_str().unwrap_or_default();
    let ani = "+33677777777";
    let trace = call(&r, ani, "8001", &[entry(code)]).await;
    assert!(trace.contains("connected to alice"), "{trace}");
    common::sipp_succeeded(&mut phone, "the agent").await;
    let record = r.engine.callin.get(id).expect("record");
    assert_eq!(record.state, CallInState::Completed);
    assert_eq!(
        record.ani.as_deref(),
        Some(ani),
        "the matching caller's number"
    );
    assert_eq!(record.dnis, "8001");
}

/// The demo engine with the Support queue handing out DemoApp call-in numbers in its READY
/// push, and a local webhook receiving every push of the queue.
async fn delayed_engine() -> (Running, common::push::Webhook) {
    common::capture_logs();
    let hook = common::push::Webhook::start(vec![]).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = common::demo_config(dir.path(), |spec| {
        spec.api.keys.push(common::api_key("app", KEY));
        common::demo_queue(spec, "Support_VQ_CB").call_in_group = Some("DemoApp".into());
    });
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let engine = Engine::start(Arc::new(config), clock.shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (
        Running {
            engine,
            clock,
            _dir: dir,
        },
        hook,
    )
}

impl Running {
    /// Books a customer-dials-in callback on the Support line whose pushes go to `hook`.
    async fn book_delayed(&self, ani: &str, hook: &str) -> Uuid {
        let (status, body) = self
            .post(
                "/callbacks/create",
                json!({"serviceName": "Support_VQ_CB", "phoneNumber": ani,
                       "pushTargets": [{"channel": "WEBHOOK", "target": hook}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .expect("callback id")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_click_to_call_in_end_to_end_ready_push_carries_the_number_and_code_to_dial() {
    use boomerang::callback::model::CompletionReason;
    let (r, hook) = delayed_engine().await;
    let ani = "+33688888888";
    let callback = r.book_delayed(ani, &hook.url).await;
    assert!(hook.seen().is_empty(), "no agent yet: nothing pushed");
    // Carol (Support) becomes ready: the callback reaches the head of its queue and the app
    // gets CALLBACK_READY with the number and access code to dial.
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    register_carol(r.sip(), &format!("127.0.0.1:{agent_port}")).await;
    let ready = hook.wait_for(1).await;
    let push = &ready[0].body;
    assert_eq!(push["event"], "CALLBACK_READY", "{push}");
    assert_eq!(push["callbackId"], callback.to_string());
    let number = push["data"]["toPhoneNumber"].as_str().expect("number");
    let code = push["data"]["accessCode"].as_str().expect("access code");
    assert_eq!(number, "8001", "the DemoApp group's number");
    assert_eq!(code.len(), 6);
    let request: Uuid = push["data"]["callInRequestId"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .expect("request id");
    assert_eq!(
        r.engine.callin.get(request).map(|q| q.callback_id),
        Some(Some(callback))
    );
    // The customer dials it and keys the code: matched, bridged to carol, COMPLETED(AGENT).
    let trace = call(&r, ani, number, &[entry(code)]).await;
    assert!(
        trace.contains("match (click_to_call_in_match): matched request for queue Support_VQ_CB"),
        "{trace}"
    );
    assert!(
        trace.contains("route (route_call): connected to carol"),
        "{trace}"
    );
    common::sipp_succeeded(&mut phone, "carol's phone").await;
    let (why, _) = common::until_completed(&r.engine, callback).await;
    assert_eq!(why, CompletionReason::Agent);
    assert_eq!(
        r.state(request),
        Some(CallInState::Completed),
        "the request was used"
    );
    assert_eq!(hook.seen().len(), 1, "READY is pushed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_ready_push_expires_after_pushed_callback_expiry_minutes() {
    use boomerang::callback::model::CompletionReason;
    let (r, hook) = delayed_engine().await;
    let ani = "+33699999999";
    let callback = r.book_delayed(ani, &hook.url).await;
    // Carol registers (no call will reach her phone).
    register_carol(r.sip(), &format!("127.0.0.1:{}", common::free_port())).await;
    let ready = hook.wait_for(1).await;
    assert_eq!(ready[0].body["event"], "CALLBACK_READY");
    // The customer never calls: the demo queue's pushed callback expiry (60 min) passes.
    r.clock.advance(TimeDelta::minutes(59));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !r.engine
            .callbacks
            .get(callback)
            .await
            .unwrap()
            .state
            .is_completed(),
        "not before its time"
    );
    r.clock.advance(TimeDelta::minutes(2));
    let (why, _) = common::until_completed(&r.engine, callback).await;
    assert_eq!(why, CompletionReason::Expired);
}
