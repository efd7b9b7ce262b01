//! Scenarios: the shipped IVR flows run on scripted in-memory calls against the real engine
//! core (router, callbacks on the embedded store, call-in). Each asserts the blocks visited
//! and the prompts played (golden transcripts), and what the engine recorded.

use std::path::Path;
use std::sync::Arc;

use boomerang::call::memory::{Action, Answer, MemoryLeg};
use boomerang::call::{CallLeg, DialResult};
use boomerang::callback::model::{CallbackState, CallbackType};
use boomerang::callin::{NewCallIn, RoutingData};
use boomerang::clock::Clock;
use boomerang::config::Config;
use boomerang::flow::expr::{Value, Variables};
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, Ending, Flow, LoadContext, RunReport};
use boomerang::routing::StateKind;
use chrono::{TimeZone, Utc};

use crate::common::{self, repo};
use crate::harness::{Harness, harness, harness_with};

impl Harness {
    fn flow(&self, name: &str) -> Flow {
        let prompts = flow::load::prompt_names(&repo().join("prompts"));
        let ctx = LoadContext {
            config: &self.core.config,
            prompts: (!prompts.is_empty()).then_some(&prompts),
        };
        flow::load_file(&repo().join("ivr-flows").join(name), &ctx)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn ready(&self, agent: &str) {
        self.core
            .dispatch
            .set_agent_state(agent, StateKind::Ready, None)
            .unwrap();
    }

    async fn call(&self, flow: &str, leg: Arc<MemoryLeg>, extra: Variables) -> RunReport {
        let f = self.flow(flow);
        let mut vars = system_variables(leg.as_ref(), &leg.info().dnis);
        vars.extend(extra);
        flow::run(&f, leg, &self.services, vars).await
    }
}

fn var(r: &RunReport, k: &str) -> String {
    r.variables
        .get(k)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn long_wait_caller_books_an_immediate_callback_on_their_own_number() {
    let h = harness().await;
    // No agent is logged in: the wait is unbounded, so the immediate offer is made.
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Press("1".into()), Action::Press("1".into())],
    );
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "hours (business_hours): open",
            "welcome (play_message): played",
            "offer (callback_v2): booked immediate callback to +33612345678",
            "done (terminate_call): end (normal)",
            "finalize[0] (assign): summary=callback=true route=",
        ]
    );
    assert_eq!(
        leg.transcript(),
        vec![
            "play welcome",
            "play offer-callback",
            "input 1",
            "play confirm-number",
            "input 1",
            "play callback-booked",
            "hang up (Normal)",
        ]
    );
    assert_eq!(r.ending, Ending::Terminated);
    let id = var(&r, "callback.id").parse().unwrap();
    let cb = h.core.callbacks.get(id).await.unwrap();
    assert_eq!(cb.state, CallbackState::Queued);
    assert_eq!(cb.kind, CallbackType::Immediate);
    assert_eq!(cb.queue, "Sales_VQ_CB");
    assert_eq!(cb.phone, "+33612345678");
    // The callback keeps the caller's place in the callback queue.
    assert_eq!(h.core.router().waiting("Sales_VQ_CB").unwrap(), 1);
}

#[tokio::test]
async fn caller_gives_another_number_for_the_callback() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "anonymous",
        "8000",
        [
            Action::Silence,
            Action::BargeIn("1".into()),
            Action::Press("2".into()),
            Action::Press("+33698765432#".into()),
        ],
    );
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(var(&r, "callback.accepted"), "true", "{:?}", r.lines());
    assert_eq!(var(&r, "callback.phone"), "+33698765432");
    assert!(leg.transcript().contains(&"play enter-number".to_string()));
}

#[tokio::test]
async fn short_wait_offers_nothing_and_the_caller_reaches_the_free_agent() {
    let h = harness().await;
    h.ready("alice");
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Talk(std::time::Duration::from_secs(60))],
    );
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "hours (business_hours): open",
            "welcome (play_message): played",
            "offer (callback_v2): not offered (EWT 0s is below the offer threshold 30s)",
            "wait (route_call): connected to alice after 0s (ThisSide hung up)",
            "finalize[0] (assign): summary=callback=false route=connected",
        ]
    );
    assert_eq!(var(&r, "callback.offered_immediate"), "false");
    // A free slot alone does not make an in-queue offer.
    assert_eq!(var(&r, "callback.offered_scheduled"), "false");
    assert!(
        !leg.transcript().iter().any(|l| l.contains("offer")),
        "{:?}",
        leg.transcript()
    );
    assert_eq!(h.agents.calls(), vec![("alice".to_string(), Ok(()))]);
    // Alice is ready again after the conversation.
    let alice = h.core.router().agents().index_of("alice").unwrap();
    assert_eq!(
        h.core.router().agents().get(alice).state(),
        StateKind::Ready
    );
}

#[tokio::test]
async fn long_wait_without_immediate_callbacks_offers_only_the_slot_with_its_own_prompt() {
    let h = harness_with(
        |spec| common::demo_queue(spec, "Sales_VQ_CB").immediate_enabled = false,
        common::monday_9am_utc(),
    )
    .await;
    // No agent is logged in: the wait is long, but the queue takes no immediate callbacks.
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [
            Action::Press("1".into()), // not offered: rejected like a wrong key
            Action::Press("2".into()),
            Action::Press("1".into()),
            Action::Press("1".into()),
        ],
    );
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(var(&r, "callback.offered_immediate"), "false");
    assert_eq!(var(&r, "callback.offered_scheduled"), "true");
    assert_eq!(var(&r, "callback.type"), "scheduled", "{:?}", r.lines());
    let t = leg.transcript();
    assert_eq!(t[1], "play offer-scheduled", "{t:?}");
    assert_eq!(
        t[3], "play offer-scheduled",
        "asked again after the wrong key: {t:?}"
    );
}

#[tokio::test]
async fn caller_books_the_nearest_scheduled_slot() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8002",
        [
            Action::Press("2".into()),
            Action::Press("0915#".into()),
            Action::Press("1".into()),
            Action::Press("1".into()),
        ],
    );
    let r = h
        .call("scheduled-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(var(&r, "callback.type"), "scheduled", "{:?}", r.lines());
    let id = var(&r, "callback.id").parse().unwrap();
    let cb = h.core.callbacks.get(id).await.unwrap();
    assert_eq!(cb.kind, CallbackType::Scheduled);
    assert_eq!(cb.state, CallbackState::Scheduled);
    // 15-minute slots, always open: the nearest free slot starts at the next quarter hour.
    let slot = Utc.with_ymd_and_hms(2026, 3, 2, 9, 15, 0).unwrap();
    assert_eq!(cb.desired_time, slot);
    // The time is read back in the queue's time zone (UTC for the `always` hours): 09 15.
    assert!(
        leg.transcript()
            .contains(&"play scheduled-offer, digits:0915, accept-time".to_string()),
        "{:?}",
        leg.transcript()
    );
}

#[tokio::test]
async fn closed_office_plays_the_closed_message() {
    let sunday = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let h = harness_with(
        |spec| common::demo_queue(spec, "Sales_VQ_CB").business_hours = Some("sales_hours".into()),
        sunday,
    )
    .await;
    let leg = MemoryLeg::caller("+33612345678", "8000", []);
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(
        r.lines()[..3],
        [
            "hours (business_hours): closed",
            "closed (play_message): played",
            "done (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "hours.state"), "closed");
}

#[tokio::test]
async fn silent_caller_is_not_booked_and_abandons_in_queue() {
    let h = harness().await;
    // Two attempts at the offer, both silent; then on hold, the caller gives up.
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Silence, Action::Silence, Action::HangUp],
    );
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(r.ending, Ending::CallerHungUp, "{:?}", r.lines());
    assert_eq!(var(&r, "callback.accepted"), "false");
    assert!(h.core.callbacks.active().is_empty());
    assert_eq!(h.core.router().waiting("Sales_VQ").unwrap(), 0);
}

#[tokio::test]
async fn caller_hanging_up_during_the_welcome_runs_finalize_only() {
    let h = harness().await;
    let leg = MemoryLeg::caller("+33612345678", "8000", [Action::HangUp]);
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "hours (business_hours): open",
            "welcome (play_message): caller hung up",
            "finalize[0] (assign): summary=callback= route=",
        ]
    );
    assert_eq!(r.ending, Ending::CallerHungUp);
}

#[tokio::test]
async fn route_call_times_out_on_the_clock_when_no_agent_comes() {
    let h = harness().await;
    let leg = MemoryLeg::caller("+33612345678", "8000", [Action::Press("3".into())]);
    let clock = h.clock.clone();
    let driver = tokio::spawn(async move {
        for _ in 0..200 {
            tokio::task::yield_now().await;
            clock.advance_to_next();
        }
    });
    let r = h
        .call("in-queue-callback.yaml", leg.clone(), Variables::new())
        .await;
    driver.abort();
    assert_eq!(var(&r, "route.result"), "timeout", "{:?}", r.lines());
    assert!(leg.transcript().contains(&"loop hold-music".to_string()));
    assert!(leg.transcript().contains(&"play goodbye".to_string()));
    assert_eq!(h.core.router().waiting("Sales_VQ").unwrap(), 0);
}

async fn call_in_request(h: &Harness) -> String {
    let req = h
        .core
        .callin
        .request(
            NewCallIn {
                group: "DemoApp".into(),
                ani: Some("+33612345678".into()),
                routing: RoutingData {
                    queue: Some("Sales_VQ".into()),
                    priority: 7,
                    ..Default::default()
                },
                callback_id: None,
            },
            h.clock.now(),
        )
        .unwrap();
    assert_eq!(req.dnis, "8001"); // as configured (issue #14.11)
    req.access_code.unwrap()
}

#[tokio::test]
async fn click_to_call_in_caller_with_the_right_code_is_routed_with_the_request_priority() {
    let h = harness().await;
    h.ready("bob");
    let code = call_in_request(&h).await;
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8001",
        [
            Action::Press(format!("{code}#")),
            Action::Talk(std::time::Duration::from_secs(5)),
        ],
    );
    let r = h
        .call("click-to-call-in.yaml", leg.clone(), Variables::new())
        .await;
    assert_eq!(
        r.lines(),
        vec![
            format!("code (user_input): input {code}"),
            "match (click_to_call_in_match): matched request for queue Sales_VQ".to_string(),
            "route (route_call): connected to bob after 0s (ThisSide hung up)".to_string(),
        ]
    );
    assert_eq!(var(&r, "match.priority"), "7");
    // A request matches once: the same code again fails.
    let again = MemoryLeg::caller(
        "+33612345678",
        "8001",
        [Action::Press(format!("{code}#")), Action::HangUp],
    );
    let r2 = h
        .call("click-to-call-in.yaml", again, Variables::new())
        .await;
    assert_eq!(var(&r2, "match.matched"), "false");
}

#[tokio::test]
async fn click_to_call_in_wrong_codes_three_times_end_the_call() {
    let h = harness().await;
    let _code = call_in_request(&h).await;
    let leg = MemoryLeg::caller(
        "+33611111111",
        "8001",
        [
            Action::Press("0000#".into()),
            Action::Press("1111#".into()),
            Action::Press("2222#".into()),
        ],
    );
    let r = h
        .call("click-to-call-in.yaml", leg.clone(), Variables::new())
        .await;
    let lines = r.lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("invalid (play_message)"))
            .count(),
        3,
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "bye (terminate_call): end (normal)");
    assert_eq!(var(&r, "tries"), "3");
}

fn callback_vars(queue: &str, priority: i64) -> Variables {
    let mut v = Variables::new();
    v.insert("callback.queue".into(), Value::Str(queue.into()));
    v.insert("callback.priority".into(), Value::Num(priority as f64));
    v
}

#[tokio::test]
async fn outbound_callback_customer_presses_1_and_is_connected() {
    let h = harness().await;
    h.ready("alice");
    let leg = MemoryLeg::caller(
        "8000",
        "+33612345678",
        [
            Action::Press("1".into()),
            Action::Talk(std::time::Duration::from_secs(30)),
        ],
    );
    let r = h
        .call(
            "outbound-callback.yaml",
            leg.clone(),
            callback_vars("Sales_VQ_CB", 3),
        )
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "greet (callback_v2): customer accepted",
            "connect (route_call): connected to alice after 0s (ThisSide hung up)",
        ]
    );
}

#[tokio::test]
async fn outbound_callback_customer_who_does_not_confirm_hears_goodbye() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "8000",
        "+33612345678",
        [Action::Silence, Action::Press("9".into()), Action::Silence],
    );
    let r = h
        .call(
            "outbound-callback.yaml",
            leg.clone(),
            callback_vars("Sales_VQ_CB", 3),
        )
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "greet (callback_v2): customer did not confirm",
            "bye (play_message): played",
            "assisted_service[2] (terminate_call): end (normal)",
        ]
    );
    assert_eq!(
        leg.transcript()
            .iter()
            .filter(|l| *l == "play callback-intro")
            .count(),
        3
    );
}

#[tokio::test]
async fn delayed_call_in_customer_is_connected_ahead_of_the_queue() {
    let h = harness().await;
    h.ready("carol");
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8001",
        [Action::Talk(std::time::Duration::from_secs(5))],
    );
    let r = h
        .call(
            "delayed-call-in.yaml",
            leg.clone(),
            callback_vars("Support_VQ_CB", 1),
        )
        .await;
    assert_eq!(
        r.lines(),
        vec![
            "greet (callback_v2): customer connected",
            "connect (route_call): connected to carol after 0s (ThisSide hung up)",
        ]
    );
}

#[tokio::test]
async fn agent_who_does_not_answer_is_made_not_ready_and_the_next_agent_takes_the_call() {
    let h = harness().await;
    h.agents
        .script("alice", Answer::Refuse(DialResult::NoAnswer));
    h.ready("alice");
    h.ready("bob");
    // Agents are free: no offer, the caller goes straight to them.
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Talk(std::time::Duration::from_secs(5))],
    );
    let r = h
        .call("in-queue-callback.yaml", leg, Variables::new())
        .await;
    assert_eq!(var(&r, "route.agent"), "bob", "{:?}", r.lines());
    let alice = h.core.router().agents().index_of("alice").unwrap();
    assert_eq!(
        h.core.router().agents().get(alice).state(),
        StateKind::NotReady
    );
}

#[test]
fn every_shipped_flow_loads_against_the_demo_configuration() {
    let config = Config::load(&repo().join("boomerang.yaml")).unwrap();
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: (!prompts.is_empty()).then_some(&prompts),
    };
    let (flows, errors) = flow::load_dir(Path::new(&repo().join("ivr-flows")), &ctx);
    assert!(
        errors.is_empty(),
        "{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut names: Vec<_> = flows.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "click-to-call-in",
            "delayed-call-in",
            "in-queue-callback",
            "outbound-callback",
            "scheduled-callback"
        ]
    );
    // Every route point and callback application names a shipped flow.
    for rp in &config.spec.route_points {
        assert!(
            repo().join("ivr-flows").join(&rp.flow).exists(),
            "{}",
            rp.flow
        );
    }
    for q in &config.spec.queues {
        if let Some(app) = &q.callback_application {
            assert!(repo().join("ivr-flows").join(app).exists(), "{app}");
        }
    }
}

#[tokio::test]
async fn caller_chooses_a_time_tomorrow_and_is_offered_the_slot_then() {
    let h = harness().await;
    // Monday 09:00 UTC; the caller keys 1 (tomorrow) 1430.
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8002",
        [
            Action::Press("2".into()),
            Action::Press("11430#".into()),
            Action::Press("1".into()),
            Action::Press("1".into()),
        ],
    );
    let r = h
        .call("scheduled-callback.yaml", leg.clone(), Variables::new())
        .await;
    let id = var(&r, "callback.id").parse().unwrap();
    let cb = h.core.callbacks.get(id).await.unwrap();
    assert_eq!(
        cb.desired_time,
        Utc.with_ymd_and_hms(2026, 3, 3, 14, 30, 0).unwrap()
    );
    // Another day is read back with its date (DDMM) before the time.
    assert!(
        leg.transcript()
            .contains(&"play scheduled-offer, digits:0303, digits:1430, accept-time".to_string()),
        "{:?}",
        leg.transcript()
    );
}

#[tokio::test]
async fn a_caller_queued_behind_another_is_told_position_two() {
    let h = harness().await;
    // Nobody is logged in: two callers wait, the second sees position 2.
    let first = MemoryLeg::caller("+33611111111", "8000", [Action::Press("3".into())]);
    let second = MemoryLeg::caller("+33622222222", "8000", [Action::Press("3".into())]);
    let f = h.flow("in-queue-callback.yaml");
    let (s1, s2) = (first.clone(), second.clone());
    let vars1 = system_variables(s1.as_ref(), "8000");
    let vars2 = system_variables(s2.as_ref(), "8000");
    let run1 = flow::run(&f, s1, &h.services, vars1);
    let run2 = async {
        // Let the first caller reach the queue before the second dials.
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        flow::run(&f, s2, &h.services, vars2).await
    };
    let hang = async {
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        first.remote_hang_up();
        second.remote_hang_up();
    };
    let (r1, r2, ()) = tokio::join!(run1, run2, hang);
    assert_eq!(var(&r1, "route.position"), "1", "{:?}", r1.lines());
    assert_eq!(var(&r2, "route.position"), "2", "{:?}", r2.lines());
}
