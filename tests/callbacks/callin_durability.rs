//! Scenario: an app obtains a call-in number and access code over the REST API; the engine stops
//! before the customer calls; after a restart on the same data the customer's code still matches
//! once, with the request's routing data.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use boomerang::call::memory::{Action, Answer, MemoryDialer, MemoryLeg};
use boomerang::callin::CallInState;
use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::{Core, Engine};
use boomerang::flow::expr::Variables;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext};
use boomerang::push::LogNotifier;
use boomerang::store::SqliteStore;
use serde_json::{Value, json};
use uuid::Uuid;

const KEY: &str = "test-key";

fn config(dir: &Path) -> Config {
    common::demo_config(dir, |spec| {
        spec.listeners.sip_udp.clear();
        spec.listeners.sip_tcp.clear();
        for group in &mut spec.callin_groups {
            group.expiry_seconds = 1800;
        }
        spec.api.keys.push(common::api_key("t", KEY));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_request_survives_a_restart_and_matches_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(Arc::new(config(dir.path())), SystemClock::shared())
        .await
        .unwrap();
    let r: Value = reqwest::Client::new()
        .post(format!(
            "http://{}/engagement/v3/call-in/requests/create",
            engine.http_addr
        ))
        .header("x-api-key", KEY)
        .json(&json!({"groupName": "DemoApp", "virtualQueue": "Sales_VQ", "priority": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = &r["data"];
    let id: Uuid = data["id"].as_str().unwrap().parse().unwrap();
    let code = data["accessCode"].as_str().unwrap().to_string();
    // The DNIS as configured (issue #14.11: not "+8001").
    assert_eq!(data["toPhoneNumber"], "8001");
    engine.shutdown();

    // A new engine process on the same data directory.
    let config = Arc::new(config(dir.path()));
    let core = Core::build(
        config.clone(),
        SystemClock::shared(),
        Arc::new(SqliteStore::open(&config.data_dir()).unwrap()),
        Arc::new(LogNotifier),
    )
    .await
    .unwrap();
    let restored = core.callin.get(id).expect("the request was lost");
    assert_eq!(restored.state, CallInState::Pending);
    assert_eq!(restored.access_code.as_deref(), Some(code.as_str()));

    core.dispatch
        .set_agent_state("bob", boomerang::routing::StateKind::Ready, None)
        .unwrap();
    let services = core.flow_services(Arc::new(MemoryDialer::new(Answer::Pick(vec![]), None)));
    let ctx = LoadContext {
        config: &config,
        prompts: None,
    };
    let f = flow::load_file(&config.flows_dir().join("click-to-call-in.yaml"), &ctx).unwrap();
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8001",
        [
            Action::Press(format!("{code}#")),
            Action::Talk(std::time::Duration::from_secs(5)),
        ],
    );
    let vars: Variables = system_variables(leg.as_ref(), "8001");
    let report = flow::run(&f, leg, &services, vars).await;
    assert_eq!(report.variables["match.matched"].to_string(), "true");
    assert_eq!(report.variables["match.priority"].to_string(), "4");
    assert_eq!(core.callin.get(id).unwrap().state, CallInState::Completed);
}
