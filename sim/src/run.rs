//! Virtual mode: the engine core (router, flows, callbacks, dialer) on one tokio current-thread
//! runtime with paused time. Tokio jumps to the next timer whenever every task is idle, so the
//! simulated hours pass in moments and the same seed replays the same run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use boomerang::call::memory::{Action, MemoryLeg, Timing};
use boomerang::call::{CallLeg, Direction, LegInfo};
use boomerang::callback::model::CallbackState;
use boomerang::clock::{self, SharedClock, TokioClock};
use boomerang::config::Config;
use boomerang::engine::Core;
use boomerang::engine::callbacks::CallbackRunner;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, FlowServices, FlowSet};
use boomerang::push::LogNotifier;
use boomerang::routing::StateKind;
use boomerang::store::Store;
use boomerang::yaml;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use thiserror::Error;
use uuid::Uuid;

use crate::dist::{self, Dist};
use crate::legs::{AgentDialer, CustomerDialer, SimLeg, ani, delta};
use crate::report::{Report, RunFacts};
use crate::scenario::{CallbackAnswer, Scenario, StoreKind};

mod setup;
pub use setup::{AgentPlan, agent_plan, arrivals, build_config, check_against};

/// Why a run could not be made.
#[derive(Debug, Error)]
pub enum SimError {
    /// The engine configuration is invalid (rendered diagnostics).
    #[error("engine configuration: {0}")]
    Config(String),
    /// The flows do not load (rendered diagnostics).
    #[error("flows: {0}")]
    Flows(String),
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// File.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A CSV of arrivals is invalid.
    #[error("{file}:{line}: {message}")]
    Csv {
        /// File.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The scenario names something the configuration lacks.
    #[error("{0}")]
    Mismatch(String),
    /// The engine could not be started.
    #[error("engine: {0}")]
    Engine(String),
    /// The runtime or a temporary directory could not be created.
    #[error("runtime: {0}")]
    Io(#[from] std::io::Error),
}

/// How the simulator talks to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The engine's code in-process, on virtual time.
    #[default]
    Virtual,
    /// SIP against a running `boomerang serve`, in real time.
    Wire,
    /// Virtual time, with callers and agents as SIP user agents talking to the engine's real
    /// user agent in-process, without sockets (`crate::sip_mode`).
    Sip,
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Seed replacing the scenario's.
    pub seed: Option<u64>,
    /// Show a progress bar on simulated time.
    pub progress: bool,
    /// Mode.
    pub mode: Mode,
    /// Wire-mode settings.
    pub wire: crate::wire::WireOptions,
}

/// What the caller decided to do if offered a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    /// Accept an immediate callback.
    Immediate,
    /// Choose a scheduled callback.
    Scheduled,
    /// Keep waiting.
    Wait,
}

/// Everything recorded about one simulated caller; times are seconds from the start.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// Arrival stream.
    pub stream: usize,
    /// Arrival.
    pub arrival: f64,
    /// Decision if offered a callback.
    pub choice: ChoiceKind,
    /// Patience in queue (none: waits forever).
    pub patience: Option<f64>,
    /// EWT of the stream's queue at arrival (router `ewt_for_new`); none when no agent is in.
    pub ewt_predicted: Option<f64>,
    /// Joined the queue.
    pub queued: Option<f64>,
    /// Connected to an agent.
    pub answered: Option<f64>,
    /// Hung up in queue.
    pub abandoned: Option<f64>,
    /// Left the queue for a callback keeping their place (Route Call's in-queue offer).
    pub left_for_callback: Option<f64>,
    /// `route.result` at the end of the flow.
    pub route_result: Option<String>,
    /// A callback was offered.
    pub callback_offered: bool,
    /// Kind of callback booked (`immediate`, `scheduled`).
    pub callback_kind: Option<String>,
    /// The callback booked.
    pub callback_id: Option<Uuid>,
    /// The customer was connected to an agent on the callback.
    pub callback_connected: Option<f64>,
    /// How the callback ended (GES completion reason), or its state if not ended.
    pub callback_reason: Option<String>,
    /// Calls placed to the customer.
    pub dial_attempts: u32,
    /// The flow has ended.
    pub ended: bool,
}

pub(crate) struct AgentSim {
    pub rng: StdRng,
    pub handle: Dist,
    pub acw: Dist,
    /// A break or the end of the shift is due: the phone is not answered, so the engine
    /// makes the agent Not Ready (and requeues the caller at their place).
    pub leaving: bool,
}

/// State shared by the simulated parties of a run.
pub struct Shared {
    pub(crate) clock: SharedClock,
    pub(crate) start: DateTime<Utc>,
    pub(crate) seed: u64,
    pub(crate) calls: Mutex<Vec<CallRecord>>,
    pub(crate) agents: Mutex<Vec<AgentSim>>,
    pub(crate) agent_index: HashMap<String, usize>,
    pub(crate) busy: Mutex<Vec<(f64, f64)>>,
    /// Intervals agents were on duty (logged in, not on a break).
    pub(crate) on_duty: Mutex<Vec<(f64, f64)>>,
    pub(crate) callback_answer: CallbackAnswer,
    pub(crate) confirm_digit: String,
    pub(crate) timing: Timing,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

impl Shared {
    /// Seconds since the start.
    pub fn t(&self) -> f64 {
        (self.clock.now() - self.start)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6
    }
    pub(crate) fn lock_calls(&self) -> MutexGuard<'_, Vec<CallRecord>> {
        lock(&self.calls)
    }
    pub(crate) fn lock_agents(&self) -> MutexGuard<'_, Vec<AgentSim>> {
        lock(&self.agents)
    }
    pub(crate) fn lock_busy(&self) -> MutexGuard<'_, Vec<(f64, f64)>> {
        lock(&self.busy)
    }
}

/// A generator for stream `n` of `seed` (SplitMix64 of both), so that every caller, agent and
/// dial attempt draws from its own sequence whatever the order events happen in.
pub fn rng_for(seed: u64, n: u64) -> StdRng {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// Runs a scenario and returns its report.
pub fn run(s: &Scenario, opts: &RunOptions) -> Result<Report, SimError> {
    let seed = opts.seed.unwrap_or(s.spec.seed);
    if opts.mode == Mode::Wire {
        if opts.wire.target.is_none() {
            return Err(SimError::Mismatch(
                "wire mode needs --target HOST:PORT, the SIP address of a running `boomerang serve`"
                    .into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(crate::wire::run(s, seed, opts.progress, &opts.wire));
    }
    let tmp = tempfile::tempdir()?;
    let config = Arc::new(build_config(s, tmp.path())?);
    let plan = agent_plan(s);
    let arr = arrivals(s, seed)?;
    let flows = Arc::new(check_against(s, &config)?);
    // Timers only: no I/O driver to poll between events.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let wall = clock::monotonic_now();
    let out = rt.block_on(simulate(
        s,
        seed,
        config,
        flows,
        plan,
        arr,
        tmp.path(),
        opts,
    ))?;
    drop(rt);
    let (records, samples, busy, on_duty, sip) = out;
    let wall_seconds = wall.elapsed().as_secs_f64();
    let mut report = Report::build(
        s,
        RunFacts {
            seed,
            records,
            samples,
            busy: &busy,
            on_duty: &on_duty,
            agents: &agent_plan(s),
            wall_seconds,
        },
    );
    report.sip = sip.map(|mut st| {
        st.calls_per_wall_second = st.invites as f64 / wall_seconds.max(1e-9);
        st.speed_up = st.simulated_seconds / wall_seconds.max(1e-9);
        st
    });
    Ok(report)
}

/// The callers of a run before anything happens to them: arrival, stream, choice and patience,
/// each drawn from the caller's own generator (the same in both modes).
pub(crate) fn initial_records(s: &Scenario, seed: u64, arr: &[(f64, usize)]) -> Vec<CallRecord> {
    let spec = &s.spec;
    arr.iter()
        .enumerate()
        .map(|(i, &(t, stream))| {
            let mut rng = rng_for(seed, i as u64);
            let c = &spec.caller.callback;
            let u: f64 = rng.random();
            let choice = if u < c.immediate {
                ChoiceKind::Immediate
            } else if u < c.immediate + c.scheduled {
                ChoiceKind::Scheduled
            } else {
                ChoiceKind::Wait
            };
            CallRecord {
                stream,
                arrival: t,
                choice,
                patience: spec.caller.patience.sample(&mut rng),
                ewt_predicted: None,
                queued: None,
                answered: None,
                abandoned: None,
                left_for_callback: None,
                route_result: None,
                callback_offered: false,
                callback_kind: None,
                callback_id: None,
                callback_connected: None,
                callback_reason: None,
                dial_attempts: 0,
                ended: false,
            }
        })
        .collect()
}

/// Queue-length samples: time, then one length per stream queue (in the order of
/// [`crate::report::queue_names`]).
pub type Samples = Vec<(f64, Vec<usize>)>;

type Outcome = (
    Vec<CallRecord>,
    Samples,
    Vec<(f64, f64)>,
    Vec<(f64, f64)>,
    Option<crate::sip_mode::SipStats>,
);

#[allow(clippy::too_many_arguments)]
async fn simulate(
    s: &Scenario,
    seed: u64,
    config: Arc<Config>,
    flows: Arc<FlowSet>,
    plan: Vec<AgentPlan>,
    arr: Vec<(f64, usize)>,
    data_dir: &Path,
    opts: &RunOptions,
) -> Result<Outcome, SimError> {
    let spec = &s.spec;
    let clock: SharedClock = Arc::new(TokioClock::starting_at(spec.start));
    let store: Arc<dyn Store> = match spec.store {
        StoreKind::Memory => Arc::new(boomerang::store::MemoryStore::new()),
        StoreKind::Sqlite => Arc::new(
            crate::store::BlockingStore::open(data_dir)
                .map_err(|e| SimError::Engine(e.to_string()))?,
        ),
    };
    let core = Core::build(config.clone(), clock.clone(), store, Arc::new(LogNotifier))
        .await
        .map_err(|e| SimError::Engine(e.to_string()))?;
    let records = initial_records(s, seed, &arr);
    let agents: Vec<AgentSim> = plan
        .iter()
        .enumerate()
        .map(|(i, a)| AgentSim {
            rng: rng_for(seed ^ 0x000A_6E17, i as u64),
            handle: spec.agents[a.profile].handle_time,
            acw: spec.agents[a.profile].after_call_work,
            leaving: false,
        })
        .collect();
    let shared = Arc::new(Shared {
        clock: clock.clone(),
        start: spec.start,
        seed,
        calls: Mutex::new(records),
        agents: Mutex::new(agents),
        agent_index: plan
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect(),
        busy: Mutex::new(Vec::new()),
        on_duty: Mutex::new(Vec::new()),
        callback_answer: spec.caller.callback_answer.clone(),
        confirm_digit: spec.caller.digits.callback_confirm.clone(),
        timing: Timing {
            clock: clock.clone(),
            prompt_lengths: Arc::new(HashMap::new()),
            default_prompt: Duration::from_secs_f64(spec.ivr.prompt.0),
            key_delay: Duration::from_secs_f64(spec.ivr.key.0),
        },
    });
    let active = Arc::new(AtomicUsize::new(0));
    let world = (opts.mode == Mode::Sip).then(|| {
        crate::sip_mode::World::start(
            config.clone(),
            flows.clone(),
            core.dispatch.clone(),
            shared.clone(),
            active.clone(),
            spec.arrivals.iter().map(|a| a.queue.clone()).collect(),
        )
    });
    let agent_dialer: Arc<dyn boomerang::call::Dialer> = match &world {
        Some(w) => Arc::new(crate::sip_mode::AgentDialer { world: w.clone() }),
        None => Arc::new(AgentDialer {
            shared: shared.clone(),
        }),
    };
    let services = Arc::new(core.flow_services(agent_dialer));
    if let Some(w) = &world {
        w.set_services(services.clone());
    }
    let runner = Arc::new(CallbackRunner {
        services: services.clone(),
        flows: flows.clone(),
        customers: Arc::new(CustomerDialer {
            shared: shared.clone(),
        }),
    });
    runner.install();
    let scheduler = core.spawn_scheduler();

    // Agents log in for their shifts and take their breaks.
    for (i, a) in plan.iter().enumerate() {
        let (from, to) = a.shift;
        if from <= 0.0 && to.is_infinite() && a.breaks.is_none() {
            match &world {
                Some(w) => w.login(i, &a.id),
                None => {
                    let _ = core.dispatch.set_agent_state(&a.id, StateKind::Ready, None);
                }
            }
            lock(&shared.on_duty).push((0.0, f64::INFINITY));
            continue;
        }
        tokio::spawn(agent_duty(
            shared.clone(),
            core.dispatch.clone(),
            i,
            a.clone(),
            world.clone(),
        ));
    }

    // Queue lengths, sampled.
    let queues = crate::report::queue_names(s);
    let samples = Arc::new(Mutex::new(Samples::new()));
    let sampler = {
        let samples = samples.clone();
        let router = core.router().clone();
        let sh = shared.clone();
        let every = delta(spec.sample_every.0);
        let end = spec.duration.0;
        let queues = queues.clone();
        tokio::spawn(async move {
            loop {
                let t = sh.t();
                if t > end {
                    return;
                }
                let lens = queues
                    .iter()
                    .map(|q| router.waiting(q).unwrap_or(0))
                    .collect();
                lock(&samples).push((t, lens));
                sh.clock.sleep(every).await;
            }
        })
    };

    // Callers arrive.
    let streams: Vec<(String, String, Arc<flow::Flow>)> = spec
        .arrivals
        .iter()
        .map(|a| {
            flows
                .for_number(&config, &a.route_point)
                .map(|f| (a.route_point.clone(), a.queue.clone(), f))
                .ok_or_else(|| {
                    SimError::Mismatch(format!("route point {} has no flow", a.route_point))
                })
        })
        .collect::<Result<_, _>>()?;
    let streams = Arc::new(streams);
    let generator = {
        let sh = shared.clone();
        let services = services.clone();
        let active = active.clone();
        let digits = Arc::new(spec.caller.digits.clone());
        let world = world.clone();
        tokio::spawn(async move {
            for (idx, (t, stream)) in arr.into_iter().enumerate() {
                sh.clock.sleep_until(sh.start + delta(t)).await;
                active.fetch_add(1, Ordering::Relaxed);
                let (sh, services, active, streams) = (
                    sh.clone(),
                    services.clone(),
                    active.clone(),
                    streams.clone(),
                );
                let digits = digits.clone();
                let world = world.clone();
                tokio::spawn(async move {
                    match world {
                        Some(w) => sip_caller(w, &sh, idx, stream, &streams, &digits).await,
                        None => caller(&sh, idx, stream, &streams, &services, &digits).await,
                    }
                    active.fetch_sub(1, Ordering::Relaxed);
                });
            }
        })
    };

    // Watch simulated time until the arrivals stop and the work drains.
    let end = spec.duration.0;
    let limit = end + spec.drain_limit.0;
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(end.ceil() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulated {msg} [{bar:40}] {percent}% ({elapsed} real)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let step = delta((end / 200.0).max(1.0));
    let mut pending: Vec<(usize, Uuid)> = Vec::new();
    let mut checked = 0usize;
    loop {
        clock.sleep(step).await;
        let t = shared.t();
        if let Some(b) = &bar {
            b.set_position(t.min(end) as u64);
            b.set_message(format!("{}", clock.now().format("%Y-%m-%d %H:%M")));
        }
        if t < end || !generator.is_finished() {
            continue;
        }
        // Collect callbacks not yet known to be over.
        {
            let calls = shared.lock_calls();
            for (i, c) in calls.iter().enumerate().skip(checked) {
                if let Some(id) = c.callback_id {
                    pending.push((i, id));
                }
            }
            checked = calls.len();
        }
        let mut still = Vec::new();
        for (i, id) in pending.drain(..) {
            if let Ok(rec) = core.callbacks.get(id).await
                && !rec.state.is_completed()
            {
                still.push((i, id));
            }
        }
        pending = still;
        let callers = active.load(Ordering::Relaxed);
        if (callers == 0 && pending.is_empty()) || t >= limit {
            break;
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    scheduler.abort();
    sampler.abort();
    // What became of each callback.
    let ids: Vec<(usize, Uuid)> = shared
        .lock_calls()
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.callback_id.map(|id| (i, id)))
        .collect();
    let mut outcomes = BTreeMap::new();
    for (i, id) in ids {
        if let Ok(rec) = core.callbacks.get(id).await {
            let reason = match rec.state {
                CallbackState::Completed(r) => serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{r:?}")),
                other => format!("NOT_DONE_{}", other.name()),
            };
            outcomes.insert(i, (reason, rec.metrics.attempts.len() as u32));
        }
    }
    let mut records = std::mem::take(&mut *shared.lock_calls());
    for (i, (reason, attempts)) in outcomes {
        if let Some(c) = records.get_mut(i) {
            c.callback_reason = Some(reason);
            c.dial_attempts = attempts;
        }
    }
    let samples = std::mem::take(&mut *lock(&samples));
    let busy = std::mem::take(&mut *shared.lock_busy());
    let on_duty = std::mem::take(&mut *lock(&shared.on_duty));
    let sip = world.map(|w| {
        let mut st = w.stats.lock().clone();
        st.simulated_seconds = shared.t();
        st
    });
    Ok((records, samples, busy, on_duty, sip))
}

/// One agent's working day: log in at the start of the shift, take breaks after the call in
/// progress, log out at the end of the shift after the call in progress.
async fn agent_duty(
    sh: Arc<Shared>,
    dispatch: Arc<boomerang::routing::Dispatch>,
    i: usize,
    a: AgentPlan,
    world: Option<Arc<crate::sip_mode::World>>,
) {
    let (from, to) = a.shift;
    sh.clock.sleep_until(sh.start + delta(from)).await;
    match &world {
        // The phone's registration logs the agent in.
        Some(w) => w.login(i, &a.id),
        None => {
            let _ = dispatch.set_agent_state(&a.id, StateKind::Ready, None);
        }
    }
    let router = dispatch.router().clone();
    let Ok(idx) = router.agents().index_of(&a.id) else {
        return;
    };
    let mut on_since = sh.t();
    loop {
        let next_break = a.breaks.map(|(every, _)| on_since + every);
        let until = next_break.unwrap_or(f64::INFINITY).min(to);
        if until.is_infinite() {
            lock(&sh.on_duty).push((on_since, f64::INFINITY));
            return;
        }
        sh.clock.sleep_until(sh.start + delta(until)).await;
        // Leave after the call in progress: a Ready agent leaves at once; a busy one stops
        // answering, which makes the engine set it Not Ready when it is next offered a call.
        sh.lock_agents()[i].leaving = true;
        loop {
            match router.agents().get(idx).state() {
                StateKind::Ready => {
                    let _ = dispatch.set_agent_state(&a.id, StateKind::NotReady, Some("break"));
                    break;
                }
                StateKind::NotReady | StateKind::LoggedOut => break,
                _ => sh.clock.sleep(chrono::TimeDelta::seconds(1)).await,
            }
        }
        sh.lock_agents()[i].leaving = false;
        let off = sh.t();
        lock(&sh.on_duty).push((on_since, off));
        if until >= to {
            let _ = dispatch.set_agent_state(&a.id, StateKind::LoggedOut, None);
            if let Some(w) = &world {
                w.logout(i);
            }
            return;
        }
        let length = a.breaks.map(|(_, l)| l).unwrap_or(0.0);
        sh.clock.sleep(delta(length)).await;
        let _ = dispatch.set_agent_state(&a.id, StateKind::Ready, None);
        on_since = sh.t();
    }
}

async fn caller(
    sh: &Arc<Shared>,
    idx: usize,
    stream: usize,
    streams: &[(String, String, Arc<flow::Flow>)],
    services: &Arc<FlowServices>,
    digits: &crate::scenario::Digits,
) {
    let Some((rp, queue, flow)) = streams.get(stream) else {
        return;
    };
    let (choice, patience) = {
        let calls = sh.lock_calls();
        match calls.get(idx) {
            Some(c) => (c.choice, c.patience),
            None => return,
        }
    };
    let ewt = services
        .dispatch
        .router()
        .ewt_for_new(queue)
        .ok()
        .flatten()
        .map(|e| e.num_milliseconds() as f64 / 1000.0);
    let keys = match choice {
        ChoiceKind::Immediate => &digits.immediate,
        ChoiceKind::Scheduled => &digits.scheduled,
        ChoiceKind::Wait => &digits.wait,
    };
    let script: Vec<Action> = keys.iter().map(|k| Action::Press(k.clone())).collect();
    let info = LegInfo {
        call_id: format!("sim-{idx}"),
        ani: ani(idx),
        dnis: rp.clone(),
        direction: Direction::Inbound,
    };
    let mem = MemoryLeg::timed(info, script, sh.timing.clone());
    let leg = SimLeg::new(mem.clone());
    let vars = system_variables(leg.as_ref(), rp);
    let dyn_leg: Arc<dyn CallLeg> = leg.clone();
    let watcher = async {
        leg.queued.notified().await;
        let q = sh.t();
        if let Some(c) = sh.lock_calls().get_mut(idx) {
            c.queued.get_or_insert(q);
        }
        if let Some(p) = patience {
            sh.clock.sleep(delta(p)).await;
            let answered = sh
                .lock_calls()
                .get(idx)
                .is_some_and(|c| c.answered.is_some());
            if !answered && !mem.is_ended() {
                mem.remote_hang_up();
                if let Some(c) = sh.lock_calls().get_mut(idx) {
                    c.abandoned = Some(sh.t());
                }
            }
        }
        std::future::pending::<()>().await
    };
    let report = tokio::select! {
        biased;
        r = flow::run(flow, dyn_leg, services, vars) => r,
        _ = watcher => return,
    };
    record_outcome(sh, idx, ewt, &report);
}

/// What the flow's report says about caller `idx` (and the EWT predicted at arrival), in its
/// record: the route result, the callback offered and booked.
pub(crate) fn record_outcome(
    sh: &Shared,
    idx: usize,
    ewt: Option<f64>,
    report: &boomerang::flow::interpreter::RunReport,
) {
    let v = &report.variables;
    let text = |k: &str| v.get(k).map(|x| x.to_string());
    let yes = |k: &str| text(k).is_some_and(|x| x == "true");
    let mut calls = sh.lock_calls();
    let Some(c) = calls.get_mut(idx) else {
        return;
    };
    c.ewt_predicted = ewt;
    c.ended = true;
    c.route_result = text("route.result");
    if c.route_result.as_deref() == Some("callback") {
        c.left_for_callback = Some(sh.t());
    }
    c.callback_offered = yes("callback.offered_immediate")
        || yes("callback.offered_scheduled")
        || yes("callback.offered_in_queue");
    if yes("callback.accepted") {
        c.callback_kind = text("callback.type");
        c.callback_id = text("callback.id").and_then(|s| s.parse().ok());
    }
    if c.route_result.as_deref() != Some("abandoned") {
        c.abandoned = None;
    }
}

/// SIP mode's caller: the SIP user agent of [`crate::sip_mode::parties::caller`] with the
/// caller's keys and patience; the engine side records the flow's outcome.
async fn sip_caller(
    w: Arc<crate::sip_mode::World>,
    sh: &Arc<Shared>,
    idx: usize,
    stream: usize,
    streams: &[(String, String, Arc<flow::Flow>)],
    digits: &crate::scenario::Digits,
) {
    let Some((rp, _, _)) = streams.get(stream) else {
        return;
    };
    let Some((choice, patience)) = sh.lock_calls().get(idx).map(|c| (c.choice, c.patience)) else {
        return;
    };
    let keys = match choice {
        ChoiceKind::Immediate => &digits.immediate,
        ChoiceKind::Scheduled => &digits.scheduled,
        ChoiceKind::Wait => &digits.wait,
    };
    crate::sip_mode::parties::caller(w, idx, rp.clone(), keys.clone(), patience).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(arrivals: &str, dir: &Path) -> Scenario {
        let text = format!(
            "start: 2026-03-02T09:00:00Z
duration: 10h
arrivals:
{arrivals}
agents:
  - profile: a
    count: 1
    skills: {{Sales: 5}}
    handle_time: {{fixed: 60}}
"
        );
        Scenario::from_str_in(&text, &dir.join("s.yaml"), dir).unwrap()
    }

    #[test]
    fn poisson_arrivals_follow_the_rate_and_the_hourly_table() {
        let dir = Path::new(".");
        let s = scenario("  - {route_point: 1, queue: Q, rate_per_hour: 360}", dir);
        let a = arrivals(&s, 3).unwrap();
        // 3600 expected; 5 standard deviations is 300.
        assert!((a.len() as f64 - 3600.0).abs() < 300.0, "{}", a.len());
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.iter().all(|(t, _)| *t < 36000.0));
        let s = scenario("  - {route_point: 1, queue: Q, hourly: [0, 1000]}", dir);
        let a = arrivals(&s, 3).unwrap();
        let even = a
            .iter()
            .filter(|(t, _)| ((*t / 3600.0) as usize).is_multiple_of(2))
            .count();
        assert_eq!(even, 0, "no calls in the hours with rate 0");
        assert!((a.len() as f64 - 5000.0).abs() < 400.0, "{}", a.len());
        assert_eq!(arrivals(&s, 3).unwrap(), a, "same seed, same arrivals");
        assert_ne!(arrivals(&s, 4).unwrap(), a);
    }

    #[test]
    fn csv_arrivals_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "offset\n10\n5.5,x\n99999\n").unwrap();
        let s = scenario("  - {route_point: 1, queue: Q, csv: a.csv}", dir.path());
        assert_eq!(arrivals(&s, 0).unwrap(), vec![(5.5, 0), (10.0, 0)]);
        std::fs::write(dir.path().join("a.csv"), "1\n2\nsoon\n").unwrap();
        let e = arrivals(&s, 0).unwrap_err().to_string();
        assert!(e.contains("a.csv:3") && e.contains("`soon`"), "{e}");
    }
}
