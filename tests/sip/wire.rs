//! Scenarios over real SIP and RTP on loopback against an independent peer, SIPp (Debian's
//! `sip-tester`, installed by ./test.sh): the engine runs in this process with the shipped demo
//! configuration and flows; SIPp plays callers and phones from `tests/sipp/*.xml`.

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use boomerang::callback::model::CallbackState;
use boomerang::config::ConfigSpec;
use boomerang::engine::Engine;
use boomerang::routing::StateKind;

use crate::common;
use common::{free_port, repo};

struct Running {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn engine() -> Running {
    engine_with(|_| {}).await
}

/// The demo configuration on loopback ports, with `edit` applied to it.
async fn engine_with(edit: impl FnOnce(&mut ConfigSpec)) -> Running {
    // The binary's one log subscriber: the capture other SIP tests read.
    common::capture_logs();
    let (dir, engine) = common::start_demo(edit).await;
    Running { engine, _dir: dir }
}

async fn sipp(scenario: &str, target: SocketAddr, tcp: bool) -> Output {
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .arg(target.to_string())
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "60s"])
        .args(["-p", &free_port().to_string()])
        .args(["-mp", &free_port().to_string()])
        .kill_on_drop(true);
    if tcp {
        cmd.args(["-t", "t1"]);
    }
    // Scenarios that register answer the digest challenge as alice's phone.
    cmd.args(common::alice_credentials());
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("sipp did not finish")
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"));
    assert!(
        out.status.success(),
        "sipp {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("call") || l.contains("rror"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_ping_gets_200_with_allow() {
    let r = engine().await;
    sipp("options.xml", r.engine.sip.udp[0], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_gets_404_and_an_offer_without_g711_gets_488() {
    let r = engine().await;
    sipp("unknown-number.xml", r.engine.sip.udp[0], false).await;
    sipp("no-codec.xml", r.engine.sip.udp[0], false).await;
}

async fn books_a_callback_with_rfc4733_keys(tcp: bool) {
    let r = engine().await;
    let target = if tcp {
        r.engine.sip.tcp[0]
    } else {
        r.engine.sip.udp[0]
    };
    sipp("book-callback.xml", target, tcp).await;
    let active = r.engine.callbacks.active();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].phone, "+33612345678");
    assert_eq!(active[0].queue, "Sales_VQ_CB");
    assert_eq!(active[0].state, CallbackState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_books_a_callback_with_rfc4733_keys_over_udp() {
    books_a_callback_with_rfc4733_keys(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_books_a_callback_with_rfc4733_keys_over_tcp() {
    books_a_callback_with_rfc4733_keys(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_phone_logs_its_agent_in_and_unregistering_logs_out() {
    let r = engine().await;
    let router = r.engine.router.clone();
    let alice = router.agents().index_of("alice").unwrap();
    assert_eq!(router.agents().get(alice).state(), StateKind::LoggedOut);
    let target = r.engine.sip.udp[0];
    let run = tokio::spawn(async move { sipp("register.xml", target, false).await });
    // Looked for while SIPp runs (up to 10 s), not only for 1.5 s: SIPp may be slow to start.
    let mut seen_ready = false;
    for _ in 0..1000 {
        if router.agents().get(alice).state() == StateKind::Ready {
            seen_ready = true;
            break;
        }
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.await.unwrap();
    assert!(seen_ready, "alice never became ready while registered");
    assert_eq!(router.agents().get(alice).state(), StateKind::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_gets_400_with_a_reason_and_the_engine_keeps_serving() {
    let r = engine().await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = r.engine.sip.udp[0];
    let bad = "INVITE sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCall-ID: bad-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 999\r\n\r\nshort";
    sock.send_to(bad.as_bytes(), target).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("no answer to a malformed request")
        .unwrap();
    let resp = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(resp.starts_with("SIP/2.0 400 "), "{resp}");
    assert!(resp.contains("Call-ID: bad-1"), "{resp}");
    // Garbage gets no answer and does not stop the engine.
    sock.send_to(b"\x00\x01\x02 not sip at all", target)
        .await
        .unwrap();
    sipp("options.xml", target, false).await;
}

/// Starts SIPp as a server (-sf scenario, no target) on `port`; returns the running child.
fn sipp_server(scenario: &str, port: u16) -> tokio::process::Child {
    sipp_server_n(scenario, port, 1)
}

/// As [`sipp_server`], serving `calls` calls before it exits.
fn sipp_server_n(scenario: &str, port: u16, calls: u32) -> tokio::process::Child {
    tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args([
            "-m",
            &calls.to_string(),
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "90s",
        ])
        .args(["-p", &port.to_string()])
        .args(["-mp", &free_port().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_callback_is_dialled_through_the_trunk_and_bridged_to_the_registered_agent() {
    use boomerang::callback::model::CompletionReason;
    use boomerang::callback::service::{CreateRequest, api_callback};
    // The trunk (the customer's side) and the agent's phone are SIPp servers.
    common::capture_logs();
    let trunk_port = free_port();
    let agent_port = free_port();
    let mut trunk = sipp_server("customer-answers.xml", trunk_port);
    let mut phone = sipp_server("agent-answers.xml", agent_port);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::demo_trunk(spec).port = trunk_port;
    })
    .await;
    let rec = engine
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Sales_VQ_CB", "+33612345678", None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    // Alice's phone registers: she becomes ready, the router gives her the callback.
    let mut reg = tokio::process::Command::new("sipp");
    reg.arg("-sf")
        .arg(repo().join("tests/sipp/agent-register.xml"))
        .arg(engine.sip.udp[0].to_string())
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "20s"])
        .args(["-p", &free_port().to_string()])
        .args(["-set", "contact", &format!("127.0.0.1:{agent_port}")])
        .args(common::alice_credentials());
    let out = reg.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut reason = None;
    for _ in 0..300 {
        let r = engine.callbacks.get(rec.id).await.unwrap();
        if let CallbackState::Completed(why) = r.state {
            reason = Some((why, r));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (why, r) = reason.expect("the callback never completed");
    assert_eq!(why, CompletionReason::Agent, "{:?}", r.history);
    assert_eq!(r.metrics.connected_agent.as_deref(), Some("alice"));
    let t = tokio::time::timeout(Duration::from_secs(20), trunk.wait()).await;
    assert!(
        t.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "the customer's SIPp failed"
    );
    let p = tokio::time::timeout(Duration::from_secs(20), phone.wait()).await;
    assert!(
        p.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "the agent's SIPp failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_who_cancels_while_queued_unanswered_gets_487_and_leaves_the_queue() {
    // A route point whose flow queues without music: the call rings until an agent comes.
    let flows = common::flows_with_ringing_queue();
    let r = engine_with(|spec| common::route_8009_to_ringing_queue(spec, flows.path())).await;
    let router = r.engine.router.clone();
    let target = r.engine.sip.udp[0];
    let run = tokio::spawn(async move { sipp("cancel.xml", target, false).await });
    // Up to 10 s: SIPp may be slow to start on a loaded machine (it rings 1.5 s once it has).
    let mut queued = false;
    for _ in 0..1000 {
        if router.waiting("Sales_VQ").unwrap() == 1 {
            queued = true;
            break;
        }
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.await.unwrap();
    assert!(queued, "the ringing caller never waited in Sales_VQ");
    // The engine's cleanup of the cancelled call follows SIPp's end: wait for it (10 s).
    common::wait_until(10, || async { router.waiting("Sales_VQ").unwrap() == 0 }).await;
    assert_eq!(router.waiting("Sales_VQ").unwrap(), 0);
}

async fn callback_attempt_against(
    scenario: &str,
    ring_timeout: u32,
) -> boomerang::call::DialResult {
    use boomerang::callback::service::{CreateRequest, api_callback};
    let trunk_port = free_port();
    let mut trunk = sipp_server(scenario, trunk_port);
    let r = engine_with(|spec| {
        common::demo_trunk(spec).port = trunk_port;
        let queue = common::demo_queue(spec, "Sales_VQ_CB");
        queue.retry_interval_seconds = 600;
        queue.ring_timeout_seconds = ring_timeout.into();
    })
    .await;
    let rec = r
        .engine
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Sales_VQ_CB", "+33612345678", None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    // An agent becomes ready: the router assigns the callback and the customer is dialled.
    r.engine
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    let t = tokio::time::timeout(Duration::from_secs(40), trunk.wait()).await;
    assert!(
        t.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "the trunk's SIPp failed"
    );
    for _ in 0..100 {
        let got = r.engine.callbacks.get(rec.id).await.unwrap();
        if let Some(a) = got.metrics.attempts.first() {
            assert_eq!(
                got.state,
                CallbackState::Queued,
                "a retry keeps the callback queued"
            );
            return a.result;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no dial attempt recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_customer_line_is_recorded_as_busy_and_the_callback_waits_for_a_retry() {
    let result = callback_attempt_against("customer-busy.xml", 20).await;
    assert_eq!(result, boomerang::call::DialResult::Busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_customer_phone_is_cancelled_at_the_ring_timeout_and_recorded_as_no_answer() {
    let result = callback_attempt_against("customer-no-answer.xml", 5).await;
    assert_eq!(result, boomerang::call::DialResult::NoAnswer);
}

async fn sipp_register(scenario: &str, target: SocketAddr, password: &str) -> bool {
    let out = tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .arg(target.to_string())
        .args(["-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "20s"])
        .args(["-p", &free_port().to_string()])
        .args(["-au", "1001", "-ap", password])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"));
    out.status.success()
}

/// Alice's phone password becomes `s3cret`, bob's and carol's others than the demo's.
fn other_passwords(spec: &mut ConfigSpec) {
    for (agent, password) in [("alice", "s3cret"), ("bob", "other2"), ("carol", "other3")] {
        common::demo_agent(spec, agent).password = Some(password.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_only_the_right_password_registers_the_agent() {
    let r = engine_with(|spec| {
        spec.sip.authenticate_register = true;
        other_passwords(spec);
    })
    .await;
    let target = r.engine.sip.udp[0];
    let router = r.engine.router.clone();
    let alice = router.agents().index_of("alice").unwrap();
    assert!(sipp_register("register-auth-wrong.xml", target, "guess").await);
    assert_eq!(router.agents().get(alice).state(), StateKind::LoggedOut);
    assert!(sipp_register("register-auth.xml", target, "s3cret").await);
    assert_eq!(router.agents().get(alice).state(), StateKind::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_invite_authentication_an_agent_phone_must_answer_the_challenge() {
    let r = engine_with(|spec| {
        spec.sip.authenticate_invite = true;
        other_passwords(spec);
    })
    .await;
    let target = r.engine.sip.udp[0];
    assert!(sipp_register("invite-auth.xml", target, "s3cret").await);
    // Callers who are not agents are not challenged.
    sipp("options.xml", target, false).await;
    sipp("book-callback.xml", target, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_busy_three_times_completes_the_callback_at_the_redial_limit() {
    use boomerang::callback::model::CompletionReason;
    use boomerang::callback::service::{CreateRequest, api_callback};
    let trunk_port = free_port();
    let mut trunk = sipp_server_n("customer-busy.xml", trunk_port, 3);
    let r = engine_with(|spec| {
        common::demo_trunk(spec).port = trunk_port;
        common::demo_queue(spec, "Sales_VQ_CB").retry_interval_seconds = 10;
    })
    .await;
    let rec = r
        .engine
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Sales_VQ_CB", "+33612345678", None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    r.engine
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    let mut done = None;
    for _ in 0..600 {
        let got = r.engine.callbacks.get(rec.id).await.unwrap();
        if let CallbackState::Completed(why) = got.state {
            done = Some((why, got));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (why, got) = done.expect("the callback never completed");
    assert_eq!(why, CompletionReason::RedialLimitReached);
    let results: Vec<_> = got.metrics.attempts.iter().map(|a| a.result).collect();
    assert_eq!(results, vec![boomerang::call::DialResult::Busy; 3]);
    let gaps: Vec<i64> = got
        .metrics
        .attempts
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect();
    assert!(
        gaps.iter().all(|g| *g >= 10),
        "retries closer than the interval: {gaps:?}"
    );
    let t = tokio::time::timeout(Duration::from_secs(20), trunk.wait()).await;
    assert!(
        t.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "the trunk's SIPp failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timers_are_agreed_with_the_caller_as_refresher_and_refreshed_by_update() {
    let r = engine().await;
    sipp("session-timer.xml", r.engine.sip.udp[0], false).await;
}
