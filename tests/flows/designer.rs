//! Golden transcripts of the Designer blocks added for issue #20 (Callback VQ Watermark, …) on
//! scripted in-memory calls against the engine core, and their load-time errors with line and
//! column. Same harness as `blocks.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use boomerang::call::CallLeg;
use boomerang::call::memory::MemoryLeg;
use boomerang::callback::service::{CreateRequest, api_callback};
use boomerang::config::Config;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, LoadContext, RunReport};

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

fn var(r: &RunReport, k: &str) -> String {
    r.variables
        .get(k)
        .map(|v| v.to_string())
        .unwrap_or_default()
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

async fn book(h: &Harness, queue: &str, phone: &str) -> uuid::Uuid {
    h.core
        .callbacks
        .create(CreateRequest {
            callback: api_callback(queue, phone, None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap_or_else(|e| panic!("callback refused: {e}"))
        .id
}

const WATERMARK: &str = "application: watermark
type: default
self_service:
  - type: callback_vq_watermark
    id: wm
    queue: Sales_VQ_CB
    max: 2
    on_below: offer
    on_reached: no_offer
  - type: play_message
    id: offer
    prompts: [offer-callback]
    next: bye
  - type: play_message
    id: no_offer
    prompts: [please-hold]
  - type: terminate_call
    id: bye
";

#[tokio::test]
async fn watermark_below_the_limit_offers_and_at_the_limit_does_not() {
    let h = harness().await;
    book(&h, "Sales_VQ_CB", "+33611111111").await;
    // Another queue's callbacks do not count.
    book(&h, "Support_VQ_CB", "+33611111112").await;
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "wm (callback_vq_watermark): 1 active on Sales_VQ_CB: below 2",
            "offer (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "watermark.count"), "1");
    assert_eq!(var(&r, "watermark.outcome"), "WATERMARK_OK");
    assert_eq!(var(&r, "watermark.reached"), "false");

    book(&h, "Sales_VQ_CB", "+33611111113").await;
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "wm (callback_vq_watermark): 2 active on Sales_VQ_CB: limit 2 reached",
            "no_offer (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "watermark.reached"), "true");
    assert_eq!(leg.transcript(), ["play please-hold", "hang up (Normal)"]);
}

#[tokio::test]
async fn watermark_stops_counting_completed_callbacks_and_reports_an_unknown_queue() {
    let h = harness().await;
    let a = book(&h, "Sales_VQ_CB", "+33611111111").await;
    book(&h, "Sales_VQ_CB", "+33611111113").await;
    h.core.callbacks.cancel(a, "test", true).await.unwrap();
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, WATERMARK, leg).await;
    assert_eq!(
        r.lines()[0],
        "wm (callback_vq_watermark): 1 active on Sales_VQ_CB: below 2"
    );

    let text = "application: wm
type: default
variables:
  cbq: Nowhere_VQ_CB
self_service:
  - type: callback_vq_watermark
    queue_from: cbq
    result: wm
    on_error: bye
  - type: play_message
    prompts: [offer-callback]
  - type: terminate_call
    id: bye
";
    let leg = MemoryLeg::caller("+33600000000", "8000", []);
    let r = run(&h, text, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (callback_vq_watermark): no callback queue `Nowhere_VQ_CB`",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "wm.outcome"), "");
    assert_eq!(leg.transcript(), ["hang up (Normal)"]);
}

#[test]
fn watermark_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: callback_vq_watermark
    queue: Sales_VQ_CV
    on_reached: bye
    on_error: bye
  - type: callback_vq_watermark
    queue_from: \"cbq +\"
    max: 0
    result: 9x
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:12: self_service[0].queue: no virtual queue `Sales_VQ_CV` in the configuration (did you mean `Sales_VQ_CB`?)",
            "flow.yaml:6:5: self_service[0].on_reached: `on_reached` needs `max` (the limit to compare with)",
            "flow.yaml:7:5: self_service[0].on_error: `on_error` needs `queue_from` (a named queue is checked at load)",
            "flow.yaml:9:23: self_service[1].queue_from: expression: the expression ends too early",
            "flow.yaml:10:10: self_service[1].max: max must be between 1 and 1000000, not 0",
            "flow.yaml:11:13: self_service[1].result: `9x` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
        ]
    );
}

/// A pending call-in request of DemoApp (DNIS 8001) for `ani`; its access code.
fn call_in_request(h: &Harness, ani: &str) -> String {
    use boomerang::callin::{NewCallIn, RoutingData};
    use boomerang::clock::Clock;
    let req = h
        .core
        .callin
        .request(
            NewCallIn {
                group: "DemoApp".into(),
                ani: Some(ani.into()),
                routing: RoutingData {
                    queue: Some("Sales_VQ".into()),
                    priority: 7,
                    skill_expression: Some("English > 3".into()),
                    user_data: [("order".to_string(), "A-17".to_string())].into(),
                },
                callback_id: None,
            },
            h.clock.now(),
        )
        .unwrap();
    req.access_code.unwrap()
}

const COMBINATIONS: &str = "application: combos
type: default
self_service:
  - type: click_to_call_in_match
    id: match
    criteria: [access_code, ani, dnis]
    outcomes:
      dnis+access_code: other_phone
      ani+dnis: wrong_code
    on_matched: all
    on_no_match: nothing
  - type: play_message
    id: all
    prompts: [digit-1]
    next: bye
  - type: play_message
    id: other_phone
    prompts: [digit-2]
    next: bye
  - type: play_message
    id: wrong_code
    prompts: [digit-3]
    next: bye
  - type: play_message
    id: nothing
    prompts: [invalid-code]
  - type: terminate_call
    id: bye
";

async fn match_with(h: &Harness, ani: &str, code: &str) -> (RunReport, Vec<String>) {
    let leg = MemoryLeg::caller(ani, "8001", []);
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), COMBINATIONS, &ctx)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut vars = system_variables(leg.as_ref(), "8001");
    vars.insert("access_code".into(), code.into());
    let r = flow::run(&f, leg.clone(), &h.services, vars).await;
    (r, leg.transcript())
}

#[tokio::test]
async fn call_in_match_takes_the_outcome_of_the_criteria_that_matched() {
    let h = harness().await;
    // Every criterion.
    let code = call_in_request(&h, "+33612345678");
    let (r, t) = match_with(&h, "+33612345678", &code).await;
    assert_eq!(
        r.lines()[0],
        "match (click_to_call_in_match): matched request for queue Sales_VQ"
    );
    assert_eq!(t[0], "play digit-1");
    assert_eq!(var(&r, "match.matched_criteria"), "access_code+ani+dnis");

    // The right code from another phone: access_code+dnis, with the routing parameters.
    let code = call_in_request(&h, "+33612345678");
    let (r, t) = match_with(&h, "+33699999999", &code).await;
    assert_eq!(
        r.lines()[0],
        "match (click_to_call_in_match): matched request for queue Sales_VQ by access_code+dnis only"
    );
    assert_eq!(t[0], "play digit-2");
    assert_eq!(var(&r, "match.matched_criteria"), "access_code+dnis");
    assert_eq!(var(&r, "match.queue"), "Sales_VQ");
    assert_eq!(var(&r, "match.priority"), "7");
    assert_eq!(var(&r, "match.skill_expression"), "English > 3");
    assert_eq!(var(&r, "match.user_data.order"), "A-17");

    // The right phone with a wrong code: ani+dnis.
    call_in_request(&h, "+33612345670");
    let (r, t) = match_with(&h, "+33612345670", "0000").await;
    assert_eq!(
        var(&r, "match.matched_criteria"),
        "ani+dnis",
        "{:?}",
        r.lines()
    );
    assert_eq!(t[0], "play digit-3");

    // Neither: Nothing Matched (`on_no_match`), and the request stays pending for its caller.
    let code = call_in_request(&h, "+33612345671");
    let (r, t) = match_with(&h, "+33600000001", "0000").await;
    assert_eq!(
        r.lines()[0],
        "match (click_to_call_in_match): no match (no request matches)"
    );
    assert_eq!(t[0], "play invalid-code");
    assert_eq!(var(&r, "match.matched_criteria"), "");
    let (r, _) = match_with(&h, "+33612345671", &code).await;
    assert_eq!(var(&r, "match.matched_criteria"), "access_code+ani+dnis");
}

#[test]
fn call_in_match_combination_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: click_to_call_in_match
    criteria: [access_code, dnis]
    outcomes:
      access_code+pin: bye
      ani: bye
      dnis+access_code: bye
      dnis: bye
      dnis+dnis: bye
      access_code: nowhere
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:7:7: self_service[0].outcomes.access_code+pin: `pin` is not a criterion: a combination is access_code, ani and dnis joined with `+`",
            "flow.yaml:8:7: self_service[0].outcomes.ani: ani is not among `criteria`",
            "flow.yaml:9:7: self_service[0].outcomes.dnis+access_code: every criterion matched: that is `on_matched`",
            "flow.yaml:11:7: self_service[0].outcomes.dnis+dnis: dnis is named twice",
            "flow.yaml:12:20: self_service[0].outcomes.access_code: no block has id `nowhere`",
        ]
    );
}

#[tokio::test]
async fn call_data_attaches_the_matched_requests_user_data_and_the_agent_leg_carries_it() {
    use boomerang::routing::StateKind;
    let h = harness().await;
    h.core
        .dispatch
        .set_agent_state("bob", StateKind::Ready, None)
        .unwrap();
    let code = call_in_request(&h, "+33612345678");
    let text = "application: data
type: default
self_service:
  - type: click_to_call_in_match
    id: match
    criteria: [access_code, dnis]
    on_no_match: bye
  - type: call_data
    id: data
    include: [match.user_data]
    set:
      tier: \"'gold'\"
      request: match.request_id
assisted_service:
  - type: route_call
    id: route
    queue_from: match.queue
  - type: terminate_call
    id: bye
";
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8001",
        [boomerang::call::memory::Action::Talk(
            std::time::Duration::from_secs(2),
        )],
    );
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
    let mut vars = system_variables(leg.as_ref(), "8001");
    vars.insert("access_code".into(), code.as_str().into());
    let r = flow::run(&f, leg, &h.services, vars).await;
    assert_eq!(
        r.lines(),
        [
            "match (click_to_call_in_match): matched request for queue Sales_VQ",
            "data (call_data): attached order, tier, request",
            "route (route_call): connected to bob after 0s (ThisSide hung up)",
        ]
    );
    let request = var(&r, "match.request_id");
    assert_eq!(var(&r, "call_data.order"), "A-17");
    assert_eq!(
        h.agents.headers(),
        [(
            "bob".to_string(),
            vec![
                ("X-Boomerang-order".to_string(), "A-17".to_string()),
                ("X-Boomerang-request".to_string(), request),
                ("X-Boomerang-tier".to_string(), "gold".to_string()),
            ]
        )]
    );
}

#[test]
fn call_data_mistakes_are_located() {
    let text = "application: t
type: default
self_service:
  - type: call_data
  - type: call_data
    set:
      \"bad key\": 1
      ok: \"1 +\"
    include: [9lives]
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:4:5: self_service[0]: give `set`, `include` or both",
            "flow.yaml:7:7: self_service[1].set.bad key: `bad key` cannot name a SIP header: 1 to 64 letters, digits and `-._!%*+'~`",
            "flow.yaml:8:15: self_service[1].set.ok: expression: the expression ends too early",
            "flow.yaml:9:15: self_service[1].include[0]: `9lives` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
        ]
    );
}

fn route_agent_flow(how: &str, extra: &str) -> String {
    format!(
        "application: ra
type: default
assisted_service:
  - type: route_agent
    id: ra
    {how}
    queue: Sales_VQ
    timeout_seconds: 30
{extra}    on_timeout: late
  - type: terminate_call
    id: late
"
    )
}

async fn run_text(h: &Harness, text: &str, ani: &str) -> (RunReport, Arc<MemoryLeg>) {
    use boomerang::call::memory::Action;
    let leg = MemoryLeg::caller(
        ani,
        "8000",
        [Action::Talk(std::time::Duration::from_secs(2))],
    );
    let r = run(h, text, leg.clone()).await;
    (r, leg)
}

fn set_state(h: &Harness, agent: &str, s: boomerang::routing::StateKind) {
    h.core.dispatch.set_agent_state(agent, s, None).unwrap();
}

#[tokio::test]
async fn route_agent_by_id_login_and_last_agent() {
    use boomerang::routing::StateKind;
    let h = harness().await;
    set_state(&h, "alice", StateKind::Ready);
    set_state(&h, "bob", StateKind::Ready);
    // By id: bob, though alice has been ready longer.
    let (r, _) = run_text(&h, &route_agent_flow("agent: bob", ""), "+33611111111").await;
    assert_eq!(
        r.lines(),
        ["ra (route_agent): connected to bob after 0s (ThisSide hung up)"]
    );
    assert_eq!(h.agents.calls()[0].0, "bob");
    // By login (alice's phone is SIP user 1001).
    let (r, _) = run_text(
        &h,
        &route_agent_flow("agent_login: \"1001\"", ""),
        "+33622222222",
    )
    .await;
    assert_eq!(var(&r, "route.agent"), "alice", "{:?}", r.lines());
    // The last agent each caller talked to.
    let (r, _) = run_text(
        &h,
        &route_agent_flow("last_agent: true", ""),
        "+33611111111",
    )
    .await;
    assert_eq!(var(&r, "route.agent"), "bob", "{:?}", r.lines());
    let (r, _) = run_text(
        &h,
        &route_agent_flow("last_agent: true", ""),
        "+33622222222",
    )
    .await;
    assert_eq!(var(&r, "route.agent"), "alice", "{:?}", r.lines());
    // A caller who never talked to anyone.
    let (r, _) = run_text(
        &h,
        &route_agent_flow("last_agent: true", ""),
        "+33633333333",
    )
    .await;
    assert_eq!(
        r.lines(),
        [
            "ra (route_agent): no such agent",
            "late (terminate_call): end (normal)"
        ]
    );
}

#[tokio::test]
async fn route_agent_only_if_ready_leaves_at_once_and_otherwise_waits_for_the_agent() {
    use boomerang::routing::StateKind;
    let h = harness().await;
    set_state(&h, "bob", StateKind::NotReady);
    let text = route_agent_flow(
        "agent: bob",
        "    only_if_ready: true\n    on_not_ready: late\n",
    );
    let (r, _) = run_text(&h, &text, "+33611111111").await;
    assert_eq!(
        r.lines(),
        [
            "ra (route_agent): bob is not ready",
            "late (terminate_call): end (normal)"
        ]
    );
    assert_eq!(var(&r, "route.result"), "not_ready");

    // Without it the caller waits: bob becomes ready after 5 s of the clock.
    let clock = h.clock.clone();
    let dispatch = h.core.dispatch.clone();
    let driver = tokio::spawn(async move {
        for i in 0..200 {
            tokio::task::yield_now().await;
            if i == 50 {
                dispatch
                    .set_agent_state("bob", StateKind::Ready, None)
                    .unwrap();
            }
            clock.advance(chrono::TimeDelta::milliseconds(100));
        }
    });
    let (r, _) = run_text(&h, &route_agent_flow("agent: bob", ""), "+33611111111").await;
    driver.abort();
    assert_eq!(var(&r, "route.result"), "connected", "{:?}", r.lines());
    let waited: i64 = var(&r, "route.waited").parse().unwrap();
    assert!((5..=6).contains(&waited), "{waited}");

    // Never ready: the overall timeout.
    set_state(&h, "bob", StateKind::NotReady);
    let clock = h.clock.clone();
    let driver = tokio::spawn(async move {
        for _ in 0..400 {
            tokio::task::yield_now().await;
            clock.advance_to_next();
        }
    });
    let (r, _) = run_text(&h, &route_agent_flow("agent: bob", ""), "+33611111111").await;
    driver.abort();
    assert_eq!(
        r.lines(),
        [
            "ra (route_agent): bob not ready within 30s",
            "late (terminate_call): end (normal)"
        ]
    );
}

#[test]
fn route_agent_mistakes_are_located() {
    let text = "application: t
type: default
assisted_service:
  - type: route_agent
    agent: bobb
    queue: Sales_VQ
    on_not_ready: bye
  - type: route_agent
    agent_login: \"1999\"
    last_agent: true
    queue: Sales_VQ
    timeout_seconds: 0
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:12: assisted_service[0].agent: no agent `bobb` in the configuration (did you mean `bob`?)",
            "flow.yaml:7:5: assisted_service[0].on_not_ready: `on_not_ready` needs `only_if_ready: true`",
            "flow.yaml:8:5: assisted_service[1]: give exactly one of `agent`, `agent_from`, `agent_login`, `last_agent: true`",
            "flow.yaml:9:18: assisted_service[1].agent_login: no agent logs in as `1999`",
            "flow.yaml:12:22: assisted_service[1].timeout_seconds: timeout_seconds must be between 1 and 3600, not 0",
        ]
    );
}
