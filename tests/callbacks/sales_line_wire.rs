//! The sales line (route point 8000) over real SIP and RTP on loopback: a caller who finds a
//! Ready agent is put through at once, with no callback offer ("All our agents are busy" would
//! be untrue, and the keys of an offer nobody can take only delay the caller).

use crate::common;

use std::time::Duration;

use boomerang::routing::StateKind;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_a_ready_agent_is_connected_at_once_without_an_offer() {
    common::capture_logs();
    // The sales queues are open around the clock.
    let (_dir, engine) = common::start_demo(|_| {}).await;
    let sip = engine.sip.udp[0];

    // Alice's phone (a SIPp that answers, talks 3 s and hangs up) registers: she is Ready and
    // the sales queue's EWT is 0.
    let agent_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    common::register_alice(sip, &format!("127.0.0.1:{agent_port}")).await;
    let agents = engine.router.agents();
    let alice = agents.index_of("alice").expect("alice");
    assert_eq!(agents.get(alice).state(), StateKind::Ready);

    // A customer calls 8000 and keys nothing.
    let call_id = format!("sales-{}", Uuid::new_v4());
    let scenario_dir = tempfile::tempdir().expect("temporary directory");
    let scenario = std::fs::read_to_string(common::repo().join("tests/sipp/call-in-caller.xml"))
        .expect("scenario template")
        .replace("@DNIS@", "8000")
        .replace("@ANI@", "+33612345678")
        .replace("@KEYS@", "");
    let path = scenario_dir.path().join("caller.xml");
    std::fs::write(&path, scenario).expect("write scenario");
    let started = boomerang::clock::monotonic_now();
    let caller = tokio::spawn({
        let call_id = call_id.clone();
        async move { common::sipp_client(&path, sip, &["-cid_str", &call_id]).await }
    });

    // Alice's phone rings once the welcome is played (about 2 s), not after an offer.
    let mut rang = None;
    while started.elapsed() < Duration::from_secs(60) {
        if agents.get(alice).state() != StateKind::Ready {
            rang = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rang = rang.expect("alice was never offered the call");
    let out = caller.await.expect("caller task");
    assert!(
        out.status.success(),
        "the caller did not get the engine's BYE: {}",
        common::sipp_report(&out)
    );
    common::sipp_succeeded(&mut phone, "alice's phone").await;

    let mut trace = None;
    for _ in 0..100 {
        if let Some(l) = common::log_lines(&["blocks visited", &call_id]).first() {
            trace = Some(l.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trace = trace.expect("the flow's trace");
    assert!(
        trace
            .contains("offer (callback_v2): not offered (EWT 0s is below the offer threshold 30s)"),
        "{trace}"
    );
    assert!(
        trace.contains("wait (route_call): connected to alice after 0s"),
        "{trace}"
    );
    assert!(
        rang < Duration::from_secs(8),
        "alice's phone rang only after {rang:?}: {trace}"
    );
}
