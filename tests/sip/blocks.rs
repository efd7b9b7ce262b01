//! Designer blocks over SIP: a SIPp caller dials a route point whose flow uses the block, and
//! SIPp phones play the agent, the far end of a transfer, or a caller with or without REFER.

use std::time::Duration;

use crate::common::{self, free_port};

/// Waits (up to 60 s) for a SIPp run to end; asserts it played its scenario through.
async fn sipp_ok(child: tokio::process::Child, who: &str) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{who}'s SIPp did not finish"))
        .unwrap();
    assert!(
        out.status.success(),
        "{who}'s SIPp failed: {}\nlogs: {:?}",
        common::sipp_report(&out),
        common::log_lines(&["blocks visited"])
    );
}

/// The flow trace the engine logged for a call that has `needle` in it (waits up to 5 s):
/// tests run side by side, so each looks for the line only its own call can write.
async fn trace_with(needle: &str) -> String {
    for _ in 0..50 {
        if let Some(l) = common::log_lines(&["blocks visited", needle]).pop() {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no trace with {needle}: {:?}",
        common::log_lines(&["blocks visited"])
    );
}

const ROUTE_AGENT: &str = "application: route-agent-alice
type: default
assisted_service:
  - type: route_agent
    agent: alice
    queue: Sales_VQ
    timeout_seconds: 20
    on_timeout: sorry
  - type: terminate_call
    id: sorry
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_agent_rings_the_registered_agents_phone_and_bridges_the_caller() {
    common::capture_logs();
    let flows = common::flows_plus(&[("route-agent-alice.yaml", ROUTE_AGENT)]);
    let agent_port = free_port();
    // Alice's phone: rings, answers, talks 3 s and hangs up.
    let phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::route_point_to(spec, "8999", "route-agent-alice.yaml", flows.path());
    })
    .await;
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    // The caller waits for the engine's BYE, sent once alice hung up (no `on_connected`).
    let caller = common::sipp_caller("caller-until-bye.xml", engine.sip.udp[0]);
    sipp_ok(phone, "alice's phone").await;
    sipp_ok(caller, "the caller").await;
    trace_with("(route_agent): connected to alice after").await;
}

/// A one-route CRM on a port the OS chose: GET /api/customers/{number} answers the tier.
async fn crm() -> std::net::SocketAddr {
    use axum::extract::Path;
    let app = axum::Router::new().route(
        "/api/customers/{number}",
        axum::routing::get(|Path(n): Path<String>| async move {
            let tier = if n.ends_with('8') { "gold" } else { "basic" };
            axum::Json(serde_json::json!({"customer": {"tier": tier}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_fetches_its_customer_over_http_and_hears_the_prompt_the_answer_chose() {
    common::capture_logs();
    let addr = crm().await;
    // The caller's number in the path: a computed URL under the allowed prefix.
    let flow = format!(
        "application: http-lookup
type: default
self_service:
  - type: http_request
    id: lookup
    url_from: \"'http://{addr}/api/customers/' + ani\"
    response: {{tier: customer.tier}}
    on_error: sorry
  - type: if
    conditions:
      - {{when: \"tier == 'gold'\", goto: gold}}
  - type: play_message
    prompts: [welcome]
    next: bye
  - type: play_message
    id: gold
    prompts: [agent-connect]
    next: bye
  - type: play_message
    id: sorry
    prompts: [goodbye]
  - type: terminate_call
    id: bye
"
    );
    let flows = common::flows_plus(&[("http-lookup.yaml", &flow)]);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        spec.flows.http.allow = vec![format!("http://{addr}/api/")];
        common::route_point_to(spec, "8999", "http-lookup.yaml", flows.path());
    })
    .await;
    // The caller is +33612345678: a gold customer.
    let caller = common::sipp_caller("caller-until-bye.xml", engine.sip.udp[0]);
    sipp_ok(caller, "the caller").await;
    let trace = trace_with("lookup (http_request): 200 tier=gold").await;
    assert!(
        trace.contains("(if): tier == 'gold' → gold")
            && trace.contains("gold (play_message): played")
            && trace.contains("bye (terminate_call)"),
        "{trace}"
    );
}

const TRANSFER: &str = "application: transfer-out
type: default
self_service:
  - type: transfer
    id: out
    to: '+33140000001'
    on_busy: sorry
    on_no_answer: sorry
    on_failed: sorry
  - type: play_message
    id: sorry
    prompts: [goodbye]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_number_dials_it_through_the_trunk_and_bridges_the_caller() {
    common::capture_logs();
    let flows = common::flows_plus(&[("transfer-out.yaml", TRANSFER)]);
    let trunk_port = free_port();
    // The number's phone behind the trunk: rings, answers, talks 3 s and hangs up.
    let far = common::sipp_server("agent-answers.xml", trunk_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::demo_trunk(spec).port = trunk_port;
        common::route_point_to(spec, "8999", "transfer-out.yaml", flows.path());
    })
    .await;
    let caller = common::sipp_caller("caller-until-bye.xml", engine.sip.udp[0]);
    sipp_ok(far, "the far end").await;
    sipp_ok(caller, "the caller").await;
    trace_with("out (transfer): transferred to +33140000001 (far end hung up)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_whose_phone_accepts_refer_is_transferred_by_refer() {
    common::capture_logs();
    let flows = common::flows_plus(&[("transfer-out.yaml", TRANSFER)]);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::route_point_to(spec, "8999", "transfer-out.yaml", flows.path());
    })
    .await;
    // The phone checks the Refer-To, accepts, and reports the target answered.
    let caller = common::sipp_caller("caller-accepts-refer.xml", engine.sip.udp[0]);
    sipp_ok(caller, "the caller").await;
    trace_with("out (transfer): transferred to +33140000001 by REFER").await;
}

const OFFER_IN_QUEUE: &str = "application: offer-in-queue
type: default
assisted_service:
  - type: route_call
    queue: Sales_VQ
    hold_music: hold-music
    timeout_seconds: 60
    offer_callback:
      ewt_threshold_seconds: 30
      every_seconds: 10
      prompts: [offer-immediate]
      key_timeout_seconds: 10
      callback_queue: Sales_VQ_CB
    on_callback_accepted: bye
    on_timeout: bye
  - type: terminate_call
    id: bye
";

/// Route Call's in-queue callback offer over SIP: with no agent logged in, a SIPp caller waits,
/// hears the offer after 10 s, presses 1 (RFC 4733); the engine hangs up, and the callback the
/// administration API shows keeps the caller's place: its queue time is when the caller
/// queued, the offer's 10 s and more before the callback was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_who_presses_1_at_the_offer_gets_a_callback_keeping_their_place() {
    common::capture_logs();
    let flows = common::flows_plus(&[("offer-in-queue.yaml", OFFER_IN_QUEUE)]);
    let hash = boomerang::api::admin::auth::hash_password("offer-pw").unwrap();
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        spec.admin.users.push(common::administrator("root", &hash));
        common::route_point_to(spec, "8999", "offer-in-queue.yaml", flows.path());
    })
    .await;
    let before = boomerang::clock::SystemClock::shared().now();
    let caller = common::sipp_caller("caller-accepts-offer-in-queue.xml", engine.sip.udp[0]);
    sipp_ok(caller, "the caller").await;
    trace_with("booked in-queue callback to +33612345678").await;
    let active = engine.callbacks.active();
    assert_eq!(active.len(), 1, "{active:?}");
    let url = format!("http://{}", engine.http_addr);
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{url}/admin/login"))
        .json(&serde_json::json!({"username": "root", "password": "offer-pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["accessToken"].as_str().unwrap();
    let resp = http
        .get(format!("{url}/admin/callbacks/{}", active[0].id))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    let v = &v["data"];
    assert_eq!(v["phoneNumber"], "+33612345678", "{v}");
    assert_eq!(v["serviceName"], "Sales_VQ_CB", "{v}");
    let time = |k: &str| {
        v[k].as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .with_timezone(&chrono::Utc)
    };
    let (queued, created) = (time("queueTime"), time("createdAt"));
    assert!(queued >= before - chrono::TimeDelta::seconds(1), "{v}");
    let kept = (created - queued).num_milliseconds();
    assert!(
        (10_000..30_000).contains(&kept),
        "the callback's queue time is the caller's enqueue time: {kept} ms before creation; {v}"
    );
}
