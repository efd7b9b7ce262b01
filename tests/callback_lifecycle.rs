//! Scenarios: callbacks booked in the IVR are served end to end on in-memory calls, in virtual
//! time: the router assigns a ready agent, the customer is dialled, the queue's Callback
//! application runs on their leg, and the record ends with an honest reason.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use boomerang::call::DialResult;
use boomerang::call::memory::{Action, Answer, MemoryDialer, MemoryLeg};
use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::clock::{SharedClock, TokioClock};
use boomerang::config::Config;
use boomerang::engine::Core;
use boomerang::engine::callbacks::CallbackRunner;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, FlowSet};
use boomerang::push::{MemoryNotifier, PushKind};
use boomerang::routing::StateKind;
use boomerang::store::SqliteStore;
use chrono::{TimeZone, Utc};
use uuid::Uuid;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct World {
    _dir: tempfile::TempDir,
    core: Core,
    clock: SharedClock,
    customers: Arc<MemoryDialer>,
    notifier: Arc<MemoryNotifier>,
    runner: Arc<CallbackRunner>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("boomerang.yaml"))
        .unwrap()
        .replace(
            "flows_dir: ivr-flows",
            &format!("flows_dir: {}", repo().join("ivr-flows").display()),
        );
    let config = Arc::new(Config::from_str_in(&text, dir.path()).unwrap());
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let notifier = Arc::new(MemoryNotifier::new());
    let core = Core::build(
        config.clone(),
        clock.clone(),
        Arc::new(SqliteStore::open(dir.path()).unwrap()),
        notifier.clone(),
    )
    .await
    .unwrap();
    let agents = Arc::new(MemoryDialer::new(Answer::Pick(vec![]), None));
    let customers = Arc::new(MemoryDialer::new(
        Answer::Refuse(DialResult::NoAnswer),
        None,
    ));
    let flows = Arc::new(FlowSet::load(&config, None).unwrap());
    let runner = Arc::new(CallbackRunner {
        services: Arc::new(core.flow_services(agents)),
        flows,
        customers: customers.clone(),
    });
    runner.install();
    core.spawn_scheduler();
    World {
        _dir: dir,
        core,
        clock,
        customers,
        notifier,
        runner,
    }
}

impl World {
    async fn book_immediate(&self, ani: &str) -> Uuid {
        let f = self.runner.flows.get("in-queue-callback.yaml").unwrap();
        let leg = MemoryLeg::caller(
            ani,
            "8000",
            [Action::Press("1".into()), Action::Press("1".into())],
        );
        let vars = system_variables(leg.as_ref(), "8000");
        let r = flow::run(&f, leg, &self.runner.services, vars).await;
        r.variables["callback.id"].to_string().parse().unwrap()
    }

    async fn until_completed(&self, id: Uuid) -> CompletionReason {
        for _ in 0..10_000 {
            let rec = self.core.callbacks.get(id).await.unwrap();
            if let CallbackState::Completed(reason) = rec.state {
                return reason;
            }
            self.clock.sleep(chrono::TimeDelta::seconds(1)).await;
        }
        panic!("callback {id} never completed");
    }
}

#[tokio::test(start_paused = true)]
async fn booked_callback_is_dialled_when_an_agent_is_ready_and_ends_with_agent() {
    let w = world().await;
    let id = w.book_immediate("+33612345678").await;
    // The customer presses 1 at the greeting and talks for three minutes.
    w.customers.script(
        "+33612345678",
        Answer::Pick(vec![
            Action::Press("1".into()),
            Action::Talk(Duration::from_secs(180)),
        ]),
    );
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    assert_eq!(w.until_completed(id).await, CompletionReason::Agent);
    let rec = w.core.callbacks.get(id).await.unwrap();
    assert_eq!(rec.metrics.connected_agent.as_deref(), Some("alice"));
    let states: Vec<&str> = rec.history.iter().map(|e| e.to.name()).collect();
    assert_eq!(states, ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"]);
    assert_eq!(
        w.customers.calls(),
        vec![("+33612345678".to_string(), Ok(()))]
    );
}

#[tokio::test(start_paused = true)]
async fn busy_customer_is_retried_at_the_interval_until_the_redial_limit() {
    let w = world().await;
    let id = w.book_immediate("+33611111111").await;
    for _ in 0..3 {
        w.customers
            .script("+33611111111", Answer::Refuse(DialResult::Busy));
    }
    let start = w.clock.now();
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    assert_eq!(
        w.until_completed(id).await,
        CompletionReason::RedialLimitReached
    );
    // Three attempts (max_dial_attempts: 3), 60 s apart (retry_interval_seconds: 60).
    let rec = w.core.callbacks.get(id).await.unwrap();
    let times: Vec<i64> = rec
        .metrics
        .attempts
        .iter()
        .map(|a| (a.at - start).num_seconds())
        .collect();
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(
        times[1] - times[0] >= 60 && times[2] - times[1] >= 60,
        "{times:?}"
    );
    assert_eq!(
        w.notifier.kinds_for(id),
        vec![
            PushKind::CallbackAttemptFailed,
            PushKind::CallbackAttemptFailed,
            PushKind::CallbackFinalAttemptFailed
        ]
    );
    // Alice was given back after each failed dial.
    let alice = w.core.router().agents().index_of("alice").unwrap();
    assert_eq!(
        w.core.router().agents().get(alice).state(),
        StateKind::Ready
    );
}

#[tokio::test(start_paused = true)]
async fn customer_who_does_not_press_1_completes_as_abandoned_and_frees_the_agent() {
    let w = world().await;
    let id = w.book_immediate("+33622222222").await;
    w.customers.script(
        "+33622222222",
        Answer::Pick(vec![Action::Silence, Action::Silence, Action::Silence]),
    );
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    assert_eq!(
        w.until_completed(id).await,
        CompletionReason::AbandonedInQueue
    );
    let alice = w.core.router().agents().index_of("alice").unwrap();
    assert_eq!(
        w.core.router().agents().get(alice).state(),
        StateKind::Ready
    );
}
