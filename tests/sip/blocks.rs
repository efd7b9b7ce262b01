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

/// The flow trace the engine logged for a call that visited a block of type `kind` (waits up
/// to 5 s for it).
async fn trace_of(kind: &str) -> String {
    let needle = format!("({kind})");
    for _ in 0..50 {
        if let Some(l) = common::log_lines(&["blocks visited", &needle]).pop() {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no trace through {kind}: {:?}",
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
    let trace = trace_of("route_agent").await;
    assert!(
        trace.contains("(route_agent): connected to alice after"),
        "{trace}"
    );
}
