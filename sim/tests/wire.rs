//! Wire mode against the real engine: an in-process `Engine` on loopback with the shipped demo
//! configuration and flows, and the simulator's callers dialling it over SIP/RTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use boomerang::callback::model::CallbackState;
use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use boomerang_sim::{Scenario, WireOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A free UDP port on loopback for the simulator's user agent (the engine's trunk points at it).
fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// The demo configuration on loopback ports, its trunk pointing at `trunk_port`.
async fn engine(dir: &Path, trunk_port: u16) -> Engine {
    let text = std::fs::read_to_string(repo().join("boomerang.yaml"))
        .unwrap()
        .replace("sip_udp: [\"0.0.0.0:5060\"]", "sip_udp: [\"127.0.0.1:0\"]")
        .replace("sip_tcp: [\"0.0.0.0:5060\"]", "sip_tcp: []")
        .replace("http: \"0.0.0.0:8080\"", "http: \"127.0.0.1:0\"")
        .replace("port: 5080", &format!("port: {trunk_port}"))
        .replace(
            "flows_dir: ivr-flows",
            &format!("flows_dir: {}", repo().join("ivr-flows").display()),
        )
        .replace(
            "prompts_dir: prompts",
            &format!("prompts_dir: {}", repo().join("prompts").display()),
        );
    let config = Config::from_str_in(&text, dir).unwrap_or_else(|e| panic!("{e}"));
    Engine::start(Arc::new(config), SystemClock::shared())
        .await
        .unwrap()
}

fn scenario(dir: &Path, rate_per_hour: f64) -> Scenario {
    let text = format!(
        "description: every caller books an immediate callback over SIP
engine: {}
start: 2026-03-02T08:00:00Z
duration: 60s
seed: 5
arrivals:
  - route_point: \"8000\"
    queue: Sales_VQ
    rate_per_hour: {rate_per_hour}
caller:
  callback: {{immediate: 1, scheduled: 0, wait: 0}}
agents:
  - profile: nobody
    count: 1
    skills: {{Sales: 5}}
    handle_time: {{fixed: 10}}
",
        repo().join("boomerang.yaml").display()
    );
    Scenario::from_str_in(&text, &dir.join("wire.yaml"), dir).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_callers_book_two_hundred_callbacks_over_sip() {
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let engine = engine(dir.path(), sim_port).await;
    let target: SocketAddr = engine.sip.udp[0];
    let s = scenario(dir.path(), 15.0 * 3600.0);
    let calls = 200;
    let started = boomerang::clock::monotonic_now();
    let report = boomerang_sim::wire::run(
        &s,
        s.spec.seed,
        false,
        &WireOptions {
            target: Some(target),
            local: SocketAddr::from(([127, 0, 0, 1], sim_port)),
            max_calls: Some(calls),
            setup_timeout: 10.0,
            max_call: 40.0,
            drain: 0.0,
            ..WireOptions::default()
        },
    )
    .await
    .unwrap();
    let took = started.elapsed();
    println!("{}", report.table());
    println!("wire run took {took:?}");
    let w = report.wire.as_ref().expect("a wire section");
    assert_eq!(w.attempted, calls);
    assert_eq!(w.failed, 0, "{:?}", w.failures);
    assert_eq!(w.ok, calls, "every call answered by the engine");
    assert_eq!(w.setup_ms.n, calls);
    assert_eq!(
        w.ended_by_engine, calls,
        "the engine hangs up after booking"
    );
    assert_eq!(w.ended_by_caller, 0);
    // The engine booked one callback per caller, for the caller's number.
    let mut active = engine.callbacks.active();
    for _ in 0..50 {
        if active.len() >= calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        active = engine.callbacks.active();
    }
    assert_eq!(active.len(), calls, "callbacks in the engine");
    assert!(active.iter().all(|c| c.queue == "Sales_VQ_CB"));
    assert!(active.iter().all(|c| c.state == CallbackState::Queued));
    let mut phones: Vec<String> = active.iter().map(|c| c.phone.clone()).collect();
    phones.sort();
    let expected: Vec<String> = (0..calls).map(boomerang_sim::legs::ani).collect();
    assert_eq!(phones, expected);
    // The report agrees.
    assert_eq!(report.callers, calls);
    assert_eq!(report.overall.offered, calls);
    assert_eq!(report.overall.callbacks_offered, calls);
    assert_eq!(
        report.overall.callbacks_accepted.get("immediate"),
        Some(&calls)
    );
    assert_eq!(report.overall.answered, 0);
    assert_eq!(report.overall.abandoned, 0);
    assert_eq!(report.overall.left_in_ivr, 0);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["wire"]["ok"], calls);
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// The demo configuration on loopback with four agents `sales-001`… (SIP users 2001…), its
/// trunk pointing at `sim_port`, written to `dir/engine.yaml`; the engine started on it.
async fn engine_with_phones(dir: &Path, sim_port: u16) -> (Engine, PathBuf) {
    // Four agents whose ids are the scenario's (`sales-001`…) with SIP users 2001…2004.
    let phones: String = (1..=4)
        .map(|n| {
            format!(
                "  - id: sales-00{n}\n    name: Sales {n}\n    sip_user: \"200{n}\"\n    password: pw-200{n}\n    skills: {{Sales: 8}}\n"
            )
        })
        .collect();
    let text = std::fs::read_to_string(repo().join("boomerang.yaml"))
        .unwrap()
        .replace("agents:\n", &format!("agents:\n{phones}"))
        .replace("sip_udp: [\"0.0.0.0:5060\"]", "sip_udp: [\"127.0.0.1:0\"]")
        .replace("sip_tcp: [\"0.0.0.0:5060\"]", "sip_tcp: []")
        .replace("http: \"0.0.0.0:8080\"", "http: \"127.0.0.1:0\"")
        .replace("port: 5080", &format!("port: {sim_port}"))
        .replace(
            "flows_dir: ivr-flows",
            &format!("flows_dir: {}", repo().join("ivr-flows").display()),
        )
        .replace(
            "prompts_dir: prompts",
            &format!("prompts_dir: {}", repo().join("prompts").display()),
        );
    let engine_file = dir.join("engine.yaml");
    std::fs::write(&engine_file, &text).unwrap();
    let config = Config::from_str_in(&text, dir).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start(Arc::new(config), SystemClock::shared())
        .await
        .unwrap();
    (engine, engine_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_agents_answer_waiting_callers() {
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let (engine, engine_file) = engine_with_phones(dir.path(), sim_port).await;
    let calls = 10;
    let s = Scenario::from_str_in(
        &format!(
            "engine: {}
start: 2026-03-02T08:00:00Z
duration: 60s
seed: 4
arrivals:
  - {{route_point: \"8000\", queue: Sales_VQ, rate_per_hour: 3600}}
caller:
  callback: {{immediate: 0, scheduled: 0, wait: 1}}
agents:
  - profile: sales
    count: 4
    skills: {{Sales: 8}}
    handle_time: {{fixed: 1}}
",
            engine_file.display()
        ),
        &dir.path().join("answer.yaml"),
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = boomerang_sim::wire::run(
        &s,
        s.spec.seed,
        false,
        &WireOptions {
            target: Some(engine.sip.udp[0]),
            local: SocketAddr::from(([127, 0, 0, 1], sim_port)),
            register: true,
            max_calls: Some(calls),
            setup_timeout: 10.0,
            max_call: 40.0,
            drain: 10.0,
            ring: 0.2,
            ..WireOptions::default()
        },
    )
    .await
    .unwrap();
    println!("{}", report.table());
    let w = report.wire.as_ref().expect("a wire section");
    assert_eq!(w.failed, 0, "{:?}", w.failures);
    assert_eq!(w.ok, calls);
    assert_eq!(w.agents_registered, 4);
    assert_eq!(w.agent_calls, calls);
    assert_eq!(
        w.ended_by_engine, calls,
        "the agent's BYE ends the caller's call"
    );
    assert_eq!(report.overall.queued, calls);
    assert_eq!(report.overall.answered, calls);
    assert_eq!(report.overall.abandoned, 0);
    assert!(report.overall.callbacks_accepted.is_empty());
    assert!(engine.callbacks.active().is_empty());
    // Unregistered at the end: the agents are logged out.
    let router = engine.router.clone();
    for n in 1..=4 {
        let i = router.agents().index_of(&format!("sales-00{n}")).unwrap();
        assert_eq!(
            router.agents().get(i).state(),
            boomerang::routing::StateKind::LoggedOut
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_agents_take_the_callbacks_the_engine_dials_back_through_the_trunk() {
    use boomerang::callback::model::CompletionReason;
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let (engine, engine_file) = engine_with_phones(dir.path(), sim_port).await;
    let target = engine.sip.udp[0];
    // Callers book immediate callbacks while no agent is in (the offer needs a long wait);
    // the agents' phones register at 15 s and the engine calls the customers back.
    let calls = 12;
    let s = Scenario::from_str_in(
        &format!(
            "engine: {}
start: 2026-03-02T08:00:00Z
duration: 60s
seed: 11
arrivals:
  - {{route_point: \"8000\", queue: Sales_VQ, rate_per_hour: 18000}}
caller:
  callback: {{immediate: 1, scheduled: 0, wait: 0}}
  callback_answer: {{answer: 1}}
agents:
  - profile: sales
    count: 4
    skills: {{Sales: 8}}
    handle_time: {{fixed: 1}}
    shift: {{from: 15s, to: 10h}}
",
            engine_file.display()
        ),
        &dir.path().join("agents.yaml"),
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Every callback the engine holds, sampled while the run goes on.
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let sampler = {
        let (seen, callbacks) = (seen.clone(), engine.callbacks.clone());
        tokio::spawn(async move {
            loop {
                for r in callbacks.active() {
                    seen.lock().unwrap().insert(r.id);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let report = boomerang_sim::wire::run(
        &s,
        s.spec.seed,
        false,
        &WireOptions {
            target: Some(target),
            local: SocketAddr::from(([127, 0, 0, 1], sim_port)),
            register: true,
            max_calls: Some(calls),
            setup_timeout: 10.0,
            max_call: 40.0,
            drain: 45.0,
            ring: 0.2,
            ..WireOptions::default()
        },
    )
    .await
    .unwrap();
    sampler.abort();
    println!("{}", report.table());
    let w = report.wire.as_ref().expect("a wire section");
    assert_eq!(w.failed, 0, "{:?}", w.failures);
    assert_eq!(w.ok, calls);
    assert_eq!(w.agents_registered, 4);
    assert_eq!(w.customer_answered, calls, "{w:?}");
    assert_eq!(w.agent_calls, calls, "{w:?}");
    assert_eq!(
        report.overall.callbacks_accepted.get("immediate"),
        Some(&calls)
    );
    assert_eq!(
        report.overall.callbacks_completed.get("AGENT"),
        Some(&calls),
        "{:?}",
        report.overall.callbacks_completed
    );
    // The engine agrees: every callback completed with an agent.
    let ids: Vec<_> = seen.lock().unwrap().iter().copied().collect();
    assert_eq!(ids.len(), calls);
    for id in ids {
        let mut r = engine.callbacks.get(id).await.unwrap();
        for _ in 0..50 {
            if r.state.is_completed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = engine.callbacks.get(id).await.unwrap();
        }
        assert_eq!(
            r.state,
            CallbackState::Completed(CompletionReason::Agent),
            "{:?}",
            r.history
        );
        assert!(
            r.metrics
                .connected_agent
                .as_deref()
                .is_some_and(|a| a.starts_with("sales-")),
            "{:?}",
            r.metrics
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_unanswered_calls_are_counted_as_failures() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), free_port()).await;
    let s = |rp: &str| {
        Scenario::from_str_in(
            &format!(
                "engine: {}
start: 2026-03-02T08:00:00Z
duration: 60s
arrivals:
  - {{route_point: \"{rp}\", queue: Sales_VQ, rate_per_hour: 36000}}
agents:
  - {{profile: nobody, count: 1, skills: {{Sales: 5}}, handle_time: {{fixed: 1}}}}
",
                repo().join("boomerang.yaml").display()
            ),
            &dir.path().join("f.yaml"),
            dir.path(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let opts = |target: SocketAddr| WireOptions {
        target: Some(target),
        max_calls: Some(5),
        setup_timeout: 1.0,
        drain: 0.0,
        ..WireOptions::default()
    };
    // A number the engine does not serve: 404.
    let unknown = s("9999");
    let r = boomerang_sim::wire::run(&unknown, 0, false, &opts(engine.sip.udp[0]))
        .await
        .unwrap();
    let w = r.wire.unwrap();
    assert_eq!((w.attempted, w.ok, w.failed), (5, 0, 5));
    assert_eq!(w.failures.get("404"), Some(&5), "{:?}", w.failures);
    assert_eq!(w.setup_ms.n, 0);
    // Nobody listening: no final response within the setup timeout (or a transport error).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = boomerang_sim::wire::run(&s("8000"), 0, false, &opts(silent.local_addr().unwrap()))
        .await
        .unwrap();
    let w = r.wire.unwrap();
    assert_eq!((w.attempted, w.ok, w.failed), (5, 0, 5), "{:?}", w.failures);
    assert_eq!(w.setup_ms.n, 0);
}
