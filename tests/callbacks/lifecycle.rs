//! Scenarios: callbacks booked in the IVR are served end to end on in-memory calls, in virtual
//! time: a ready agent triggers the dial without being reserved, the queue's Callback
//! application runs on the customer's leg and routes them to the next ready agent, and the
//! record ends with an honest reason. The pacing rule keeps dials within the ready agents.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::call::memory::{Action, Answer, MemoryDialer, MemoryLeg};
use boomerang::call::{CallLeg, Dial, DialResult, DialTarget, Dialer};
use boomerang::callback::model::{CallbackState, CompletionReason};
use boomerang::callback::service::{CreateRequest, api_callback};
use boomerang::clock::{ManualClock, SharedClock, TokioClock};
use boomerang::config::ConfigSpec;
use boomerang::engine::Core;
use boomerang::engine::callbacks::CallbackRunner;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, FlowSet};
use boomerang::push::{MemoryNotifier, PushKind};
use boomerang::routing::{StateKind, Waiting};
use boomerang::store::SqliteStore;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::common;

/// Customers' phones that ring until the test lets them answer (then they behave as the
/// in-memory dialer's script says); other numbers answer at once.
struct RingingPhones {
    inner: Arc<MemoryDialer>,
    gates: Mutex<HashMap<String, Arc<Notify>>>,
    ringing: AtomicUsize,
    most_ringing: AtomicUsize,
    dialled: Mutex<Vec<String>>,
}

impl RingingPhones {
    fn new(inner: Arc<MemoryDialer>) -> Self {
        RingingPhones {
            inner,
            gates: Mutex::new(HashMap::new()),
            ringing: AtomicUsize::new(0),
            most_ringing: AtomicUsize::new(0),
            dialled: Mutex::new(Vec::new()),
        }
    }

    /// `number` rings when called, until [`Self::pick_up`].
    fn hold(&self, number: &str) {
        self.gates
            .lock()
            .unwrap()
            .insert(number.to_string(), Arc::new(Notify::new()));
    }

    fn pick_up(&self, number: &str) {
        if let Some(g) = self.gates.lock().unwrap().get(number) {
            g.notify_one();
        }
    }

    fn dialled(&self) -> Vec<String> {
        self.dialled.lock().unwrap().clone()
    }
}

#[async_trait]
impl Dialer for RingingPhones {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        if let DialTarget::Customer { number, .. } = call.target {
            self.dialled.lock().unwrap().push(number.clone());
            let gate = self.gates.lock().unwrap().get(number).cloned();
            if let Some(gate) = gate {
                let now = self.ringing.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_ringing.fetch_max(now, Ordering::SeqCst);
                gate.notified().await;
                self.ringing.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.inner.dial(call).await
    }
}

struct World {
    _dir: tempfile::TempDir,
    core: Core,
    clock: SharedClock,
    /// Set when time moves only as the test says (waits then poll in real time).
    manual: Option<ManualClock>,
    customers: Arc<MemoryDialer>,
    phones: Arc<RingingPhones>,
    notifier: Arc<MemoryNotifier>,
    runner: Arc<CallbackRunner>,
}

async fn world() -> World {
    world_at(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(), |_| {}).await
}

/// The demo configuration (edited by `edit`) on tokio's paused time starting at `start`.
async fn world_at(start: DateTime<Utc>, edit: impl FnOnce(&mut ConfigSpec)) -> World {
    build(Arc::new(TokioClock::starting_at(start)), None, edit).await
}

/// The demo configuration on a manual clock: time moves only when the test advances it, so
/// waits on the store (its own thread) cannot let hours pass.
async fn world_manual(start: DateTime<Utc>, edit: impl FnOnce(&mut ConfigSpec)) -> World {
    let manual = ManualClock::new(start);
    build(manual.shared(), Some(manual), edit).await
}

async fn build(
    clock: SharedClock,
    manual: Option<ManualClock>,
    edit: impl FnOnce(&mut ConfigSpec),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let config = Arc::new(common::demo_config(dir.path(), edit));
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
    let phones = Arc::new(RingingPhones::new(customers.clone()));
    let flows = Arc::new(FlowSet::load(&config, None).unwrap());
    let runner = Arc::new(CallbackRunner {
        services: Arc::new(core.flow_services(agents)),
        flows,
        customers: phones.clone(),
    });
    runner.install();
    core.spawn_scheduler();
    World {
        _dir: dir,
        core,
        clock,
        manual,
        customers,
        phones,
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

    async fn book_api(&self, number: &str) -> Uuid {
        let rec = self
            .core
            .callbacks
            .create(CreateRequest {
                callback: api_callback("Sales_VQ_CB", number, None),
                check_slot: false,
                ewt_at_offer_seconds: None,
                position_at_offer: None,
            })
            .await
            .unwrap();
        rec.id
    }

    /// The customer at `number` answers, presses 1 at the greeting and talks `secs` seconds.
    fn press_1_and_talk(&self, number: &str, secs: u64) {
        self.customers.script(
            number,
            Answer::Pick(vec![
                Action::Press("1".into()),
                Action::Talk(Duration::from_secs(secs)),
            ]),
        );
    }

    /// The callback's first dial was made at `due` or later.
    async fn first_dial_not_before(&self, id: Uuid, due: DateTime<Utc>) {
        let rec = self.core.callbacks.get(id).await.unwrap();
        let first = rec.metrics.attempts.first().map(|a| a.at);
        assert!(first.is_some_and(|at| at >= due), "{first:?} before {due}");
    }

    fn state_of(&self, agent: &str) -> StateKind {
        let agents = self.core.router().agents();
        agents.get(agents.index_of(agent).unwrap()).state()
    }

    /// Waits until `done` holds: virtual time moves in small steps, and real time passes too.
    async fn until(&self, what: &str, done: impl Fn() -> bool) {
        for _ in 0..5000 {
            if done() {
                return;
            }
            self.pause().await;
        }
        panic!("never: {what}");
    }

    /// Waits until callback `id` is in memory in `state`.
    async fn until_in(&self, id: Uuid, state: CallbackState) {
        self.until(&format!("{id} is {}", state.name()), || {
            self.core
                .callbacks
                .active()
                .iter()
                .any(|r| r.id == id && r.state == state)
        })
        .await;
    }

    /// Waits for the callback to complete as AGENT, connected to `agent` through every state
    /// (from SCHEDULED when it was booked for later); returns those states.
    async fn served_by(&self, id: Uuid, agent: &str) -> Vec<&'static str> {
        assert_eq!(self.until_completed(id).await, CompletionReason::Agent);
        let rec = self.core.callbacks.get(id).await.unwrap();
        assert_eq!(rec.metrics.connected_agent.as_deref(), Some(agent));
        let states: Vec<&'static str> = rec.history.iter().map(|e| e.to.name()).collect();
        let served = ["QUEUED", "ROUTING", "PROCESSING", "COMPLETED"];
        assert!(
            states == served || states[1..] == served && states[0] == "SCHEDULED",
            "{states:?}"
        );
        states
    }

    /// Lets a little time pass: real time on a manual clock; otherwise 10 ms of virtual time
    /// and 2 ms of real time (the store writes on its own thread while paused time races on).
    async fn pause(&self) {
        if self.manual.is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else {
            self.clock.sleep(chrono::TimeDelta::milliseconds(10)).await;
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lets `secs` seconds pass on the engine's clock (and, on a manual clock, a moment of
    /// real time for the tasks that follow).
    async fn let_pass(&self, secs: i64) {
        match &self.manual {
            Some(m) => {
                m.advance(chrono::TimeDelta::seconds(secs));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => self.clock.sleep(chrono::TimeDelta::seconds(secs)).await,
        }
    }

    async fn until_completed(&self, id: Uuid) -> CompletionReason {
        for _ in 0..10_000 {
            let rec = self.core.callbacks.get(id).await.unwrap();
            if let CallbackState::Completed(reason) = rec.state {
                return reason;
            }
            match self.manual {
                Some(_) => self.pause().await,
                None => self.clock.sleep(chrono::TimeDelta::seconds(1)).await,
            }
        }
        panic!("callback {id} never completed");
    }
}

#[tokio::test(start_paused = true)]
async fn booked_callback_is_dialled_when_an_agent_is_ready_and_ends_with_agent() {
    let w = world().await;
    let id = w.book_immediate("+33612345678").await;
    // The customer presses 1 at the greeting and talks for three minutes.
    w.press_1_and_talk("+33612345678", 180);
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.served_by(id, "alice").await;
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
async fn customer_who_does_not_press_1_completes_as_not_confirmed_and_frees_the_agent() {
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
    assert_eq!(w.until_completed(id).await, CompletionReason::NotConfirmed);
    let alice = w.core.router().agents().index_of("alice").unwrap();
    assert_eq!(
        w.core.router().agents().get(alice).state(),
        StateKind::Ready
    );
}

#[tokio::test(start_paused = true)]
async fn the_agent_who_triggers_a_dial_stays_ready_and_takes_an_inbound_caller_meanwhile() {
    let w = world().await;
    let number = "+33633333333";
    w.phones.hold(number);
    w.press_1_and_talk(number, 60);
    let id = w.book_api(number).await;
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.until("the customer's phone rings", || {
        w.phones.ringing.load(Ordering::SeqCst) == 1
    })
    .await;
    // The customer's phone rings: the callback is ROUTING, alice is not reserved for it.
    let rec = w.core.callbacks.get(id).await.unwrap();
    assert_eq!(rec.state, CallbackState::Routing);
    assert_eq!(w.state_of("alice"), StateKind::Ready);
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 1);
    // An inbound caller on the sales line gets alice at once.
    let caller = Uuid::new_v4();
    let rx = w
        .core
        .dispatch
        .enqueue_waiter(
            "Sales_VQ",
            Waiting {
                id: caller,
                priority: 0,
                enqueued_at: w.clock.now(),
            },
        )
        .unwrap();
    let a = tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .expect("the inbound caller waited although alice was ready")
        .unwrap();
    assert_eq!(
        (a.interaction, a.agent.as_str(), a.reserved),
        (caller, "alice", true)
    );
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Busy, None)
        .unwrap();
    // The customer answers and presses 1 while alice talks: they wait at the callback's place.
    w.phones.pick_up(number);
    w.until("the customer waits for an agent", || {
        w.core.router().waiting("Sales_VQ_CB").unwrap_or(0) == 1
    })
    .await;
    assert_eq!(
        w.core.router().position("Sales_VQ_CB", id).unwrap(),
        Some(0)
    );
    assert_eq!(
        w.core.callbacks.get(id).await.unwrap().state,
        CallbackState::Routing
    );
    // Alice's inbound call ends: she is the next ready agent, and takes the customer.
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.served_by(id, "alice").await;
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 0);
}

#[tokio::test]
async fn two_ready_agents_and_ten_waiting_callbacks_give_at_most_two_dials_in_flight() {
    // Failed attempts are retried only the next day: every dial below is a first attempt.
    let w = world_manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(), |spec| {
        common::demo_queue(spec, "Sales_VQ_CB").retry_interval_seconds = 86400;
    })
    .await;
    let numbers: Vec<String> = (0..10).map(|i| format!("+3364444440{i}")).collect();
    let mut ids = Vec::new();
    for n in &numbers {
        w.phones.hold(n);
        ids.push(w.book_api(n).await);
    }
    for agent in ["alice", "bob"] {
        w.core
            .dispatch
            .set_agent_state(agent, StateKind::Ready, None)
            .unwrap();
    }
    w.until("two phones ring", || {
        w.phones.ringing.load(Ordering::SeqCst) == 2
    })
    .await;
    // Time passes: nothing more is dialled while both phones ring.
    w.let_pass(30).await;
    assert_eq!(w.phones.dialled(), numbers[..2].to_vec());
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 2);
    assert_eq!(w.core.router().waiting("Sales_VQ_CB").unwrap(), 8);
    assert_eq!(w.state_of("alice"), StateKind::Ready);
    assert_eq!(w.state_of("bob"), StateKind::Ready);
    // The first customer is busy: that dial ends and the next callback in line is dialled.
    w.customers
        .script(&numbers[0], Answer::Refuse(DialResult::Busy));
    w.phones.pick_up(&numbers[0]);
    w.until("a third phone is dialled", || w.phones.dialled().len() == 3)
        .await;
    w.let_pass(30).await;
    assert_eq!(w.phones.dialled(), numbers[..3].to_vec());
    assert_eq!(w.phones.most_ringing.load(Ordering::SeqCst), 2);
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 2);
    let first = w.core.callbacks.get(ids[0]).await.unwrap();
    assert_eq!(first.state, CallbackState::Queued, "retry keeps it queued");
    // Bob logs out: one ready agent, two dials still ringing, so the next failure dials
    // nobody new.
    w.core
        .dispatch
        .set_agent_state("bob", StateKind::NotReady, None)
        .unwrap();
    w.customers
        .script(&numbers[1], Answer::Refuse(DialResult::Busy));
    w.phones.pick_up(&numbers[1]);
    w.until("the second dial ends", || {
        w.core.router().in_flight("Sales_VQ_CB").unwrap_or(0) == 1
    })
    .await;
    w.let_pass(30).await;
    assert_eq!(w.phones.dialled().len(), 3, "{:?}", w.phones.dialled());
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unserved_callback_is_purged_at_closing_on_the_day_clocks_go_forward() {
    // Sunday 29 March 2026: Paris moves to summer time (UTC+2) at 02:00. The queue closes at
    // 18:00 Paris, which is 16:00 UTC that day (17:00 UTC the day before).
    let w = world_at(
        Utc.with_ymd_and_hms(2026, 3, 29, 10, 0, 0).unwrap(),
        |spec| {
            spec.business_hours.insert(
                "dst_sunday".into(),
                common::hours_spec("Europe/Paris", &[("sun", "09:00-18:00")]),
            );
            common::insert_queue(
                spec,
                common::queue_spec(json!({
                    "name": "Dst_VQ_CB",
                    "business_hours": "dst_sunday",
                    "skill_expression": "Sales >= 5",
                    "callback_purge_time_minutes": 1440,
                })),
            );
        },
    )
    .await;
    let rec = w
        .core
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Dst_VQ_CB", "+33655555555", None),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap();
    assert_eq!(rec.state, CallbackState::Queued);
    let start = w.clock.now();
    // Still waiting one second before closing (a scheduler that ignored the change would
    // wait until 17:00 UTC; one that applied it twice would have purged at 15:00).
    w.clock
        .sleep_until(Utc.with_ymd_and_hms(2026, 3, 29, 15, 59, 59).unwrap())
        .await;
    assert_eq!(
        w.core.callbacks.get(rec.id).await.unwrap().state,
        CallbackState::Queued
    );
    assert_eq!(w.until_completed(rec.id).await, CompletionReason::Purged);
    let done = w.core.callbacks.get(rec.id).await.unwrap();
    let purged_at = done.history.last().unwrap().at;
    assert_eq!(
        purged_at,
        Utc.with_ymd_and_hms(2026, 3, 29, 16, 0, 0).unwrap(),
        "purged {}s after booking",
        (purged_at - start).num_seconds()
    );
    assert_eq!(w.notifier.kinds_for(rec.id), vec![PushKind::CallbackPurged]);
    assert!(w.phones.dialled().is_empty());
}

#[tokio::test]
async fn scheduled_rescheduled_cancelled_and_recreated_callbacks_are_dialled_only_when_due() {
    let w = world_manual(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(), |_| {}).await;
    let Some(manual) = w.manual.clone() else {
        unreachable!("a manual world")
    };
    let start = w.clock.now();
    // Alice is ready all along: only due, live callbacks may be dialled.
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    let book = |number: &'static str, at| {
        let callbacks = w.core.callbacks.clone();
        async move {
            callbacks
                .create(CreateRequest {
                    callback: api_callback("Sales_VQ_CB", number, Some(at)),
                    check_slot: false,
                    ewt_at_offer_seconds: None,
                    position_at_offer: None,
                })
                .await
                .unwrap()
        }
    };
    let later = book("+33666666661", start + chrono::TimeDelta::hours(2)).await;
    let moved = book("+33666666662", start + chrono::TimeDelta::hours(1)).await;
    assert_eq!(later.state, CallbackState::Scheduled);
    // Moved to three hours from now: the first booking ends RESCHEDULED, a new one waits.
    let moved_again = w
        .core
        .callbacks
        .reschedule(moved.id, start + chrono::TimeDelta::hours(3), "app")
        .await
        .unwrap();
    assert_eq!(
        w.core.callbacks.get(moved.id).await.unwrap().state,
        CallbackState::Completed(CompletionReason::Rescheduled)
    );
    for n in ["+33666666661", "+33666666662"] {
        w.press_1_and_talk(n, 60);
    }
    // Nothing is dialled before the first desired time; at it, that callback is served.
    manual.set(start + chrono::TimeDelta::hours(2) - chrono::TimeDelta::seconds(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(w.phones.dialled().is_empty(), "{:?}", w.phones.dialled());
    manual.advance(chrono::TimeDelta::seconds(1));
    assert_eq!(w.served_by(later.id, "alice").await[0], "SCHEDULED");
    w.first_dial_not_before(later.id, start + chrono::TimeDelta::hours(2))
        .await;
    // The rescheduled one waits for its new time; a queued callback cancelled before an agent
    // frees up is withdrawn and never dialled, and a recreated copy is.
    w.until("alice is back from the call", || {
        w.state_of("alice") == StateKind::Ready
    })
    .await;
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::NotReady, None)
        .unwrap();
    let queued = w.book_api("+33666666663").await;
    let cancelled = w.core.callbacks.cancel(queued, "app", false).await.unwrap();
    assert_eq!(
        cancelled.state,
        CallbackState::Completed(CompletionReason::Cancelled)
    );
    assert_eq!(w.core.router().waiting("Sales_VQ_CB").unwrap(), 0);
    let again = w
        .core
        .callbacks
        .recreate(queued, None, "admin")
        .await
        .unwrap();
    assert_eq!(again.state, CallbackState::Queued);
    w.press_1_and_talk("+33666666663", 60);
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.served_by(again.id, "alice").await;
    w.until("alice is back from the call", || {
        w.state_of("alice") == StateKind::Ready
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.phones.dialled().len(), 2, "the rescheduled one waits");
    manual.set(start + chrono::TimeDelta::hours(3));
    w.served_by(moved_again.id, "alice").await;
    w.first_dial_not_before(moved_again.id, start + chrono::TimeDelta::hours(3))
        .await;
    assert_eq!(
        w.phones.dialled(),
        ["+33666666661", "+33666666663", "+33666666662"]
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_callback_application_the_answered_customer_goes_to_the_next_ready_agent() {
    let w = world_at(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(), |spec| {
        common::demo_queue(spec, "Sales_VQ_CB").callback_application = None;
    })
    .await;
    let number = "+33677777777";
    w.customers.script(
        number,
        Answer::Pick(vec![Action::Talk(Duration::from_secs(60))]),
    );
    let id = w.book_api(number).await;
    w.core
        .dispatch
        .set_agent_state("bob", StateKind::Ready, None)
        .unwrap();
    w.served_by(id, "bob").await;
    assert_eq!(w.phones.dialled(), [number]);
    assert_eq!(w.core.router().in_flight("Sales_VQ_CB").unwrap(), 0);
}

/// The demo configuration plus `Close_VQ_CB`, open 09:00-18:00 Paris on Sunday 29 March 2026
/// (closing is 16:00 UTC), with a purge time longer than the day.
async fn closing_world() -> World {
    world_at(
        Utc.with_ymd_and_hms(2026, 3, 29, 15, 0, 0).unwrap(),
        |spec| {
            spec.business_hours.insert(
                "dst_sunday".into(),
                common::hours_spec(
                    "Europe/Paris",
                    &[("sun", "09:00-18:00"), ("mon", "09:00-18:00")],
                ),
            );
            common::insert_queue(
                spec,
                common::queue_spec(json!({
                    "name": "Close_VQ_CB",
                    "business_hours": "dst_sunday",
                    "skill_expression": "Sales >= 5",
                    "callback_application": "outbound-callback.yaml",
                    "callback_purge_time_minutes": 1440,
                    "max_dial_attempts": 3,
                    "retry_interval_seconds": 60,
                })),
            );
        },
    )
    .await
}

impl World {
    async fn book_in(&self, queue: &str, number: &str) -> Uuid {
        self.core
            .callbacks
            .create(CreateRequest {
                callback: api_callback(queue, number, None),
                check_slot: false,
                ewt_at_offer_seconds: None,
                position_at_offer: None,
            })
            .await
            .unwrap()
            .id
    }
}

#[tokio::test(start_paused = true)]
async fn closing_purges_every_waiting_callback_even_with_one_in_processing() {
    let w = closing_world().await;
    // The first customer talks with alice across closing time (until the test hangs up).
    let talking = w.book_in("Close_VQ_CB", "+33610000001").await;
    w.customers.script(
        "+33610000001",
        Answer::Pick(vec![Action::Press("1".into())]),
    );
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.until_in(talking, CallbackState::Processing).await;
    // Three more wait for an agent; their purge falls at closing, with the one in PROCESSING.
    let mut waiting = Vec::new();
    for n in ["+33610000002", "+33610000003", "+33610000004"] {
        w.press_1_and_talk(n, 60);
        waiting.push(w.book_in("Close_VQ_CB", n).await);
    }
    for id in &waiting {
        let why = w.until_completed(*id).await;
        let rec = w.core.callbacks.get(*id).await.unwrap();
        assert_eq!(why, CompletionReason::Purged, "{:#?}", rec.history);
        let rec = w.core.callbacks.get(*id).await.unwrap();
        assert_eq!(
            rec.history.last().unwrap().at,
            Utc.with_ymd_and_hms(2026, 3, 29, 16, 0, 0).unwrap()
        );
        assert!(
            rec.metrics.attempts.is_empty(),
            "dialled: {:?}",
            rec.history
        );
    }
    // The call in progress was left alone; it ends after closing, as AGENT, and alice's
    // readiness dials nobody else.
    assert_eq!(
        w.core.callbacks.get(talking).await.unwrap().state,
        CallbackState::Processing
    );
    w.clock
        .sleep_until(Utc.with_ymd_and_hms(2026, 3, 29, 17, 0, 0).unwrap())
        .await;
    w.customers.legs()[0].remote_hang_up();
    assert_eq!(w.until_completed(talking).await, CompletionReason::Agent);
    w.let_pass(600).await;
    assert_eq!(w.phones.dialled(), vec!["+33610000001".to_string()]);
}

#[tokio::test]
async fn completed_records_are_removed_after_the_retention_period() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let w = world_manual(t0, |spec| {
        spec.store.retention_days = 3;
        spec.store.retention_sweep_minutes = 30;
    })
    .await;
    w.core.spawn_retention();
    // A: cancelled at once (desired time t0). B: booked for t0 + 5 days, still waiting.
    let a = w.book_api("+33620000001").await;
    w.core.callbacks.cancel(a, "app", false).await.unwrap();
    let b = w
        .core
        .callbacks
        .create(CreateRequest {
            callback: api_callback(
                "Sales_VQ_CB",
                "+33620000002",
                Some(t0 + chrono::TimeDelta::days(5)),
            ),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap()
        .id;
    // A minute before A's retention ends, sweeps leave it.
    w.let_pass(3 * 86400 - 60).await;
    assert!(w.core.store.callback(a).await.unwrap().is_some());
    // The next sweep (every 30 minutes) after it ends removes A, and only A.
    w.let_pass(31 * 60).await;
    for _ in 0..200 {
        if w.core.store.callback(a).await.unwrap().is_none() {
            break;
        }
        w.pause().await;
    }
    assert!(w.core.store.callback(a).await.unwrap().is_none(), "A kept");
    assert!(w.core.callbacks.get(a).await.is_err());
    assert_eq!(
        w.core.store.callback(b).await.unwrap().map(|r| r.state),
        Some(CallbackState::Scheduled)
    );
}

#[tokio::test(start_paused = true)]
async fn a_callback_due_at_night_is_dialled_only_when_the_office_opens() {
    let w = closing_world().await;
    // Booked by an app for 22:00 Paris (20:00 UTC), when the queue is closed: the API books
    // regardless of office hours, but nobody is called before Monday 09:00 Paris (07:00 UTC).
    let night = Utc.with_ymd_and_hms(2026, 3, 29, 20, 0, 0).unwrap();
    let id = w
        .core
        .callbacks
        .create(CreateRequest {
            callback: api_callback("Close_VQ_CB", "+33610000009", Some(night)),
            check_slot: false,
            ewt_at_offer_seconds: None,
            position_at_offer: None,
        })
        .await
        .unwrap()
        .id;
    w.press_1_and_talk("+33610000009", 60);
    w.core
        .dispatch
        .set_agent_state("alice", StateKind::Ready, None)
        .unwrap();
    w.clock.sleep_until(night).await;
    w.until_in(id, CallbackState::Queued).await;
    for _ in 0..500 {
        w.pause().await;
    }
    assert!(w.clock.now() < Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap());
    assert!(w.phones.dialled().is_empty(), "dialled while closed");
    w.clock
        .sleep_until(Utc.with_ymd_and_hms(2026, 3, 30, 6, 59, 0).unwrap())
        .await;
    assert!(w.phones.dialled().is_empty(), "dialled while closed");
    assert_eq!(w.until_completed(id).await, CompletionReason::Agent);
    w.first_dial_not_before(id, Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap())
        .await;
}
