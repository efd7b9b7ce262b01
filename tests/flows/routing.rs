//! Golden transcripts of Route Call's routing options (issue #20, Routing): skill relaxation
//! over time and priority growth while waiting, on scripted in-memory calls against the engine
//! core on a manual clock, and their load-time errors with line and column.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boomerang::call::CallLeg;
use boomerang::call::memory::{Action, MemoryLeg};
use boomerang::clock::Clock;
use boomerang::config::Config;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext, RunReport};
use boomerang::routing::{StateKind, Waiting};

use crate::common::repo;
use crate::harness::{Harness, harness};

async fn run(h: &Harness, text: &str, leg: Arc<MemoryLeg>) -> RunReport {
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
    let vars = system_variables(leg.as_ref(), &leg.info().dnis);
    flow::run(&f, leg, &h.services, vars).await
}

/// Moves the manual clock to each next sleeper's deadline while the flow runs.
fn drive(h: &Harness) -> tokio::task::JoinHandle<()> {
    let clock = h.clock.clone();
    tokio::spawn(async move {
        for _ in 0..400 {
            tokio::task::yield_now().await;
            clock.advance_to_next();
        }
    })
}

fn var(r: &RunReport, k: &str) -> String {
    r.variables
        .get(k)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

const RELAX: &str = "application: relax
type: default
self_service:
  - type: route_call
    id: wait
    queue: Sales_VQ
    skill_expression: \"Sales >= 10\"
    relax_skills: {step: 1, every_seconds: 30, min_level: 5}
    hold_music: hold-music
    timeout_seconds: 600
    on_timeout: bye
  - type: terminate_call
    id: bye
";

#[tokio::test]
async fn a_relaxing_call_reaches_the_ready_junior_agent_when_its_level_comes_down() {
    let h = harness().await;
    // Bob (Sales 5) is ready from the start; Sales >= 10 comes down to 5 after 5 steps.
    h.core
        .dispatch
        .set_agent_state("bob", StateKind::Ready, None)
        .unwrap();
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Talk(Duration::from_secs(10))],
    );
    let driver = drive(&h);
    let r = run(&h, RELAX, leg.clone()).await;
    driver.abort();
    assert_eq!(
        r.lines(),
        ["wait (route_call): connected to bob after 150s (ThisSide hung up)"]
    );
    assert_eq!(var(&r, "route.waited"), "150");
    assert_eq!(
        leg.transcript()[..2],
        ["loop hold-music", "bridge with bob"],
        "the music plays on through the five relaxations"
    );
}

#[tokio::test]
async fn without_relaxation_the_same_call_times_out() {
    let h = harness().await;
    h.core
        .dispatch
        .set_agent_state("bob", StateKind::Ready, None)
        .unwrap();
    let text = RELAX.replace(
        "    relax_skills: {step: 1, every_seconds: 30, min_level: 5}\n",
        "",
    );
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    let driver = drive(&h);
    let r = run(&h, &text, leg).await;
    driver.abort();
    assert_eq!(
        r.lines(),
        [
            "wait (route_call): no agent within 600s",
            "bye (terminate_call): end (normal)"
        ]
    );
}

const GROWTH: &str = "application: growth
type: default
self_service:
  - type: route_call
    id: wait
    queue: Sales_VQ
    priority: 0
    priority_growth: {increment: 2, every_seconds: 20, limit: 10}
    announce_position: true
    announce_every_seconds: 30
    timeout_seconds: 65
    on_timeout: bye
  - type: terminate_call
    id: bye
";

#[tokio::test]
async fn a_growing_priority_moves_the_caller_ahead_of_a_fixed_priority_call() {
    let h = harness().await;
    // Someone waits with a fixed priority 3 from the start.
    let other = Waiting {
        id: uuid::Uuid::new_v4(),
        priority: 3,
        enqueued_at: h.clock.now(),
    };
    h.core
        .router()
        .enqueue("Sales_VQ", other.clone(), h.clock.now())
        .unwrap();
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    let driver = drive(&h);
    let r = run(&h, GROWTH, leg.clone()).await;
    driver.abort();
    // At 30 s the caller has 2 (behind the 3): position 2; at 60 s 6: position 1.
    assert_eq!(
        leg.transcript(),
        ["play digits:2", "play digits:1", "hang up (Normal)"]
    );
    assert_eq!(
        r.lines(),
        [
            "wait (route_call): no agent within 65s",
            "bye (terminate_call): end (normal)"
        ]
    );
    assert_eq!(var(&r, "route.position"), "2");
}

/// Each problem of `text` as `file:line:col: path: message`.
fn problems(text: &str) -> Vec<String> {
    let config = Config::load(&repo().join("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names: BTreeSet<String> = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    match flow::load_str(Path::new("flow.yaml"), text, &ctx) {
        Ok(f) => panic!("`{}` loaded without problems", f.name),
        Err(e) => e.diagnostics.iter().map(|d| d.to_string()).collect(),
    }
}

#[test]
fn routing_option_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: route_call
    queue: Sales_VQ
    skill_expression: \"Level = 3\"
    relax_skills: {step: 0, every_seconds: 30, min_level: 2}
    priority_growth: {increment: 1, every_seconds: 0, limit: 9}
  - type: route_call
    queue: Sales_VQ
    relax_skills: {step: 1, every_seconds: 30, min_level: 2}
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:7:5: self_service[0].relax_skills: `relax_skills` needs a `>=` or `>` level in `skill_expression` to lower",
            "flow.yaml:7:26: self_service[0].relax_skills.step: step must be between 1 and 10, not 0",
            "flow.yaml:8:52: self_service[0].priority_growth.every_seconds: every_seconds must be between 1 and 86400, not 0",
            "flow.yaml:11:5: self_service[1].relax_skills: `relax_skills` needs `skill_expression` or `skill_expression_from`",
        ]
    );
}

const OFFER: &str = "application: offer
type: default
self_service:
  - type: route_call
    id: wait
    queue: Sales_VQ
    hold_music: hold-music
    timeout_seconds: 600
    offer_callback:
      ewt_threshold_seconds: 60
      every_seconds: 30
      prompts: [offer-immediate]
      booked_prompts: [callback-booked]
      callback_queue: Sales_VQ_CB
    on_callback_accepted: done
    on_timeout: done
  - type: terminate_call
    id: done
";

/// With no agent ready (the wait is unknown, so above any threshold) the caller is offered a
/// callback every 30 s while waiting; they press 2 at the first offer and 1 at the second:
/// the callback is booked in Sales_VQ_CB with the caller's enqueue time as its queue time, and
/// the caller leaves the queue.
#[tokio::test]
async fn a_waiting_caller_who_presses_1_gets_a_callback_keeping_their_place() {
    let h = harness().await;
    let entered = h.clock.now();
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Press("2".into()), Action::Press("1".into())],
    );
    let driver = drive(&h);
    let r = run(&h, OFFER, leg.clone()).await;
    driver.abort();
    assert_eq!(
        r.lines(),
        [
            &format!(
                "wait (route_call): booked in-queue callback to +33612345678 keeping the place of {}",
                entered.format("%H:%M:%S")
            ),
            "done (terminate_call): end (normal)"
        ]
    );
    assert_eq!(
        leg.transcript(),
        [
            "loop hold-music",
            "play offer-immediate",
            "input 2",
            "loop hold-music",
            "play offer-immediate",
            "input 1",
            "play callback-booked",
            "hang up (Normal)"
        ]
    );
    assert_eq!(var(&r, "route.result"), "callback");
    let id: uuid::Uuid = var(&r, "callback.id").parse().unwrap();
    let rec = h.core.callbacks.get(id).await.unwrap();
    assert_eq!(rec.queue, "Sales_VQ_CB");
    assert_eq!(
        rec.queue_time, entered,
        "the callback keeps the caller's place"
    );
    assert!(h.clock.now() >= entered + chrono::TimeDelta::seconds(60));
    assert_eq!(
        h.core
            .router()
            .position_at("Sales_VQ", id, h.clock.now())
            .ok()
            .flatten(),
        None
    );
}

#[test]
fn in_queue_offer_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: route_call
    queue: Sales_VQ
    offer_callback:
      ewt_threshold_seconds: 60
      every_seconds: 5
      prompts: []
      callback_queue: Sales_CB
  - type: route_call
    queue: Sales_VQ
    on_callback_accepted: end
  - type: terminate_call
    id: end
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:8:22: self_service[0].offer_callback.every_seconds: every_seconds must be between 10 and 3600, not 5",
            "flow.yaml:9:16: self_service[0].offer_callback.prompts: the offer needs at least one prompt",
            "flow.yaml:10:23: self_service[0].offer_callback.callback_queue: no virtual queue `Sales_CB` in the configuration (did you mean `Sales_VQ`?)",
            "flow.yaml:13:5: self_service[1].on_callback_accepted: `on_callback_accepted` needs `offer_callback`",
        ]
    );
}
