//! Queue statistics from real outcomes: the demo's in-queue flow runs on scripted in-memory
//! calls against the engine core; one caller reaches an agent, one hangs up while queued; the
//! public `/engagement/v3/statistics` answer (real HTTP on loopback) counts them.

use crate::common;
use common::repo;

use std::sync::Arc;

use boomerang::api::{self, ApiState};
use boomerang::call::CallLeg;
use boomerang::call::memory::{Action, Answer, MemoryDialer, MemoryLeg};
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::engine::Core;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext};
use boomerang::push::MemoryNotifier;
use boomerang::routing::StateKind;
use boomerang::store::SqliteStore;
use chrono::{TimeZone, Utc};
use serde_json::Value;

#[tokio::test]
async fn answered_and_abandoned_calls_reach_the_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(common::demo_config(dir.path(), |spec| {
        spec.api.keys.push(common::api_key("t", "k"));
    }));
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let shared: SharedClock = clock.clone();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let core = Core::build(
        config.clone(),
        shared.clone(),
        store,
        Arc::new(MemoryNotifier::new()),
    )
    .await
    .unwrap();
    let services = core.flow_services(Arc::new(MemoryDialer::new(Answer::Pick(vec![]), None)));
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: (!prompts.is_empty()).then_some(&prompts),
    };
    let f = flow::load_file(&repo().join("ivr-flows/in-queue-callback.yaml"), &ctx)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = |actions: Vec<Action>| {
        let leg = MemoryLeg::caller("+33612345678", "8000", actions);
        let vars = system_variables(leg.as_ref(), &leg.info().dnis);
        flow::run(&f, leg, &services, vars)
    };

    core.dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    // Alice is free: no callback offer, the caller goes straight to her.
    let r = run(vec![Action::Talk(std::time::Duration::from_secs(60))]).await;
    assert!(
        r.lines().iter().any(|l| l.contains("connected to alice")),
        "{:?}",
        r.lines()
    );
    core.dispatch
        .set_agent_state("alice", StateKind::NotReady, None)
        .unwrap();
    let r = run(vec![Action::Press("3".into()), Action::HangUp]).await;
    assert!(
        r.lines().iter().any(|l| l.contains("hung up")),
        "{:?}",
        r.lines()
    );

    let o = core.dispatch.stats().get("Sales_VQ");
    assert_eq!((o.answered, o.answered_within, o.abandoned), (1, 1, 1));

    let state = ApiState::new(core.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, api::router(state)).await;
    });
    let v: Value = reqwest::Client::new()
        .get(format!(
            "http://{addr}/engagement/v3/statistics?virtual-queues=Sales_VQ"
        ))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let q = &v["data"]["queues"][0];
    assert_eq!(q["virtualQueue"], "Sales_VQ", "{v}");
    assert_eq!(
        (q["answered"].as_u64(), q["abandoned"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(q["serviceLevel"].as_f64(), Some(0.5), "{v}");
    assert_eq!(
        q["agentsLoggedIn"], 1,
        "alice is not ready but logged in: {v}"
    );
    assert_eq!(
        (q["agentsReady"].as_u64(), q["waiting"].as_u64()),
        (Some(0), Some(0))
    );
    let states = &v["data"]["agentStates"];
    assert_eq!(states["not_ready"], 1, "{v}");
    assert_eq!(
        states
            .as_object()
            .unwrap()
            .values()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        config.spec.agents.len() as u64
    );
    let r = reqwest::Client::new()
        .get(format!(
            "http://{addr}/engagement/v3/statistics?virtual-queues=Nope"
        ))
        .header("x-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    server.abort();
}
