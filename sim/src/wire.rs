//! Wire mode: callers, agents' phones and called-back customers are SIP user agents (the
//! engine's own SIP stack, used as a client) talking to a running engine over the network, in
//! real time. One user agent on its own port serves every simulated party: callers dial the
//! scenario's route points from it; agents REGISTER with a Contact pointing at it and answer the
//! engine's INVITEs there; the engine's trunk must point at it so that callbacks reach the
//! simulated customers.
//!
//! What the simulator cannot see over the wire (the flow's variables) is inferred from what the
//! parties observe: a caller connected to an agent is one whose number the engine presented on
//! an INVITE to an agent's phone while the caller's call was up; a callback is counted as booked
//! when a caller who pressed the keys of a callback choice was hung up by the engine without
//! being connected to an agent.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use boomerang::call::{CallLeg, Direction, HangupCause, LegInfo};
use boomerang::clock::{self, SharedClock, SystemClock};
use boomerang::config::Config;
use boomerang::media::prompts::PromptLibrary;
use boomerang::media::sdp;
use boomerang::media::session::MediaSession;
use boomerang::sip::leg::{LegParts, SipLeg};
use boomerang::sip::registrar::RegistrarConfig;
use boomerang::sip::transport::{Peer, Transport};
use boomerang::sip::ua::{
    self, CallHandler, DialRequest, IncomingCall, LegShared, UaConfig, UaHandle, UacEvent,
};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::dist::Dist;
use crate::legs::{ani, caller_of};
use crate::report::{Report, RunFacts};
use crate::run::{
    CallRecord, ChoiceKind, SimError, agent_plan, arrivals, initial_records, rng_for,
};
use crate::scenario::{CallbackAnswer, Scenario};

mod answer;
mod register;
mod stats;
use answer::incoming;
use register::register;
pub use stats::{Millis, WireStats};

/// Settings of a wire run.
#[derive(Debug, Clone)]
pub struct WireOptions {
    /// The engine's SIP address (UDP).
    pub target: Option<SocketAddr>,
    /// The simulator's user agent (UDP); port 0 picks one. The engine's trunk must point here
    /// for callbacks to reach the simulated customers.
    pub local: SocketAddr,
    /// REGISTER the scenario's agents that the engine configuration gives a `sip_user`.
    pub register: bool,
    /// Arrivals happen `speed` times faster than the scenario says.
    pub speed: f64,
    /// Calls up at once at most (callers wait for a free slot).
    pub max_concurrent: usize,
    /// New calls per second at most.
    pub max_rate: Option<f64>,
    /// Only the first N callers of the scenario.
    pub max_calls: Option<usize>,
    /// Seconds from the engine's 200 OK to the first key.
    pub digit_delay: f64,
    /// Seconds between keys.
    pub digit_gap: f64,
    /// Seconds without a final response before the caller CANCELs and counts a failure.
    pub setup_timeout: f64,
    /// Seconds agents' phones and customers' phones ring before answering.
    pub ring: f64,
    /// Longest call: the simulator hangs up after this many seconds.
    pub max_call: f64,
    /// After the last caller has gone, seconds to keep answering agents' and customers'
    /// calls (callbacks) while any is in progress.
    pub drain: f64,
    /// RTP ports of the simulator's calls.
    pub rtp_ports: (u16, u16),
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            target: None,
            local: SocketAddr::from(([127, 0, 0, 1], 0)),
            register: false,
            speed: 1.0,
            max_concurrent: 1000,
            max_rate: None,
            max_calls: None,
            digit_delay: 2.5,
            digit_gap: 2.5,
            setup_timeout: 32.0,
            ring: 0.5,
            max_call: 3600.0,
            drain: 60.0,
            rtp_ports: (40000, 50000),
        }
    }
}

#[derive(Default)]
struct Tally {
    attempted: usize,
    ok: usize,
    failures: BTreeMap<String, usize>,
    setup: Vec<f64>,
    pdd: Vec<f64>,
    ended_by_engine: usize,
    ended_by_caller: usize,
    max_concurrent: usize,
    delayed: usize,
    first_dial: Option<Instant>,
    last_dial: Option<Instant>,
    agent_calls: usize,
    customer_calls: usize,
    customer_answered: usize,
    unknown_calls: usize,
}

struct Phone {
    agent: usize,
    /// The agent's SIP password, to answer the engine's digest challenge.
    password: Option<String>,
    handle: Dist,
    /// Registered from, until (scenario seconds).
    shift: (f64, f64),
}

struct Ctx {
    ua: OnceLock<UaHandle>,
    opts: WireOptions,
    clock: SharedClock,
    prompts: Arc<PromptLibrary>,
    seed: u64,
    calls: Mutex<Vec<CallRecord>>,
    /// When each caller's INVITE left (to put later events on the scenario's time line).
    dialled: Mutex<Vec<Option<Instant>>>,
    tally: Mutex<Tally>,
    phones: HashMap<String, Phone>,
    agent_rngs: Mutex<Vec<StdRng>>,
    busy: Mutex<Vec<(f64, f64)>>,
    callback_answer: CallbackAnswer,
    confirm: String,
    in_progress: AtomicUsize,
    incoming_in_progress: AtomicUsize,
    customer_seq: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Ctx {
    /// Caller `idx`'s current time on the scenario's time line: its arrival plus the real
    /// seconds since its INVITE.
    fn t(&self, idx: usize) -> Option<f64> {
        let d = lock(&self.dialled).get(idx).copied().flatten()?;
        let arrival = lock(&self.calls).get(idx)?.arrival;
        Some(arrival + d.elapsed().as_secs_f64())
    }

    fn fail(&self, why: String) {
        *lock(&self.tally).failures.entry(why).or_default() += 1;
    }
}

/// The simulator's side of the user agent: every number is served (agents' phones and
/// customers); calls are answered by [`incoming`].
struct Phones(OnceLock<Weak<Ctx>>);

impl CallHandler for Phones {
    fn serves(&self, _number: &str) -> bool {
        true
    }

    fn incoming(&self, call: IncomingCall) {
        match self.0.get().and_then(Weak::upgrade) {
            Some(ctx) => {
                tokio::spawn(incoming(ctx, call));
            }
            None => call.shared.end(),
        }
    }

    fn registration(&self, _user: &str, _registered: bool) {}
}

/// Runs a scenario in wire mode against the engine at `opts.target`.
pub async fn run(
    s: &Scenario,
    seed: u64,
    progress: bool,
    opts: &WireOptions,
) -> Result<Report, SimError> {
    let target = opts.target.ok_or_else(|| {
        SimError::Mismatch(
            "wire mode needs --target HOST:PORT, the SIP address of a running `boomerang serve`"
                .into(),
        )
    })?;
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(SimError::Mismatch(
            "--speed must be a positive number".into(),
        ));
    }
    let mut arr = arrivals(s, seed)?;
    if let Some(n) = opts.max_calls {
        arr.truncate(n);
    }
    let records = initial_records(s, seed, &arr);
    let plan = agent_plan(s);
    // Agents the engine knows with a SIP user: their phones are ours.
    let mut phones = HashMap::new();
    if opts.register {
        let config = Config::load(&s.engine_path()).map_err(|e| SimError::Config(e.to_string()))?;
        for (i, a) in plan.iter().enumerate() {
            if let Some(c) = config.agent(&a.id)
                && let Some(user) = c.sip_user.clone()
            {
                phones.insert(
                    user,
                    Phone {
                        agent: i,
                        password: c.password.clone(),
                        handle: s.spec.agents[a.profile].handle_time,
                        shift: a.shift,
                    },
                );
            }
        }
    }
    let handler = Arc::new(Phones(OnceLock::new()));
    let ua = ua::start(
        UaConfig {
            udp: vec![opts.local],
            tcp: Vec::new(),
            public_ip: None,
            public_name: None,
            registrar: RegistrarConfig::default(),
            register_auth: None,
            authenticate_register: false,
            authenticate_invite: false,
            session_expires: 1800,
            limits: Default::default(),
        },
        handler.clone(),
    )
    .await?;
    let local = ua.local_addrs().0.first().copied().unwrap_or(opts.local);
    let n = records.len();
    let ctx = Arc::new(Ctx {
        ua: OnceLock::new(),
        opts: opts.clone(),
        clock: SystemClock::shared(),
        prompts: Arc::new(PromptLibrary::default()),
        seed,
        calls: Mutex::new(records),
        dialled: Mutex::new(vec![None; n]),
        tally: Mutex::new(Tally::default()),
        phones,
        agent_rngs: Mutex::new(
            (0..plan.len())
                .map(|i| rng_for(seed ^ 0x000A_6E17, i as u64))
                .collect(),
        ),
        busy: Mutex::new(Vec::new()),
        callback_answer: s.spec.caller.callback_answer.clone(),
        confirm: s.spec.caller.digits.callback_confirm.clone(),
        in_progress: AtomicUsize::new(0),
        incoming_in_progress: AtomicUsize::new(0),
        customer_seq: AtomicUsize::new(0),
    });
    let _ = ctx.ua.set(ua.clone());
    let _ = handler.0.set(Arc::downgrade(&ctx));
    let wall = clock::monotonic_now();

    // Agents' phones register at the start of their shift and unregister at its end.
    let start = clock::tokio_now();
    let registered: Arc<Mutex<Vec<String>>> = Arc::default();
    let reg_failures = Arc::new(AtomicUsize::new(0));
    let reg_ok = Arc::new(AtomicUsize::new(0));
    let mut duty = Vec::new();
    for (user, phone) in &ctx.phones {
        let (from, to) = phone.shift;
        let (user, password, registered, reg_failures, reg_ok, speed) = (
            user.clone(),
            phone.password.clone(),
            registered.clone(),
            reg_failures.clone(),
            reg_ok.clone(),
            opts.speed,
        );
        let first = from <= 0.0;
        let task = async move {
            tokio::time::sleep_until(start + secs(from / speed)).await;
            let password = password.as_deref();
            match register(target, &user, password, local, 3600).await {
                Ok(200..=299) => {
                    reg_ok.fetch_add(1, Ordering::Relaxed);
                    lock(&registered).push(user.clone());
                }
                Ok(code) => {
                    tracing::warn!(user, code, "REGISTER refused");
                    reg_failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::warn!(user, error = %e, "REGISTER failed");
                    reg_failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            if to.is_finite() {
                tokio::time::sleep_until(start + secs(to / speed)).await;
                if register(target, &user, password, local, 0).await.is_ok() {
                    lock(&registered).retain(|u| u != &user);
                }
            }
        };
        if first {
            // Agents on duty from the start are in before the first caller.
            task.await;
        } else {
            duty.push(tokio::spawn(task));
        }
    }

    // Callers arrive.
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(n as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} calls {pos}/{len} [{bar:40}] {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let limit = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let mut next_allowed = 0.0f64;
    let mut tasks = Vec::with_capacity(n);
    let digits = &s.spec.caller.digits;
    for (idx, (t, stream)) in arr.iter().copied().enumerate() {
        let mut at = t / opts.speed;
        if let Some(rate) = opts.max_rate.filter(|r| *r > 0.0) {
            at = at.max(next_allowed);
            next_allowed = at + 1.0 / rate;
        }
        tokio::time::sleep_until(start + secs(at)).await;
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                lock(&ctx.tally).delayed += 1;
                match limit.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        let Some(a) = s.spec.arrivals.get(stream) else {
            continue;
        };
        let (choice, patience) = match lock(&ctx.calls).get(idx) {
            Some(c) => (c.choice, c.patience),
            None => continue,
        };
        let keys = match choice {
            ChoiceKind::Immediate => digits.immediate.clone(),
            ChoiceKind::Scheduled => digits.scheduled.clone(),
            ChoiceKind::Wait => digits.wait.clone(),
        };
        let (ctx2, rp) = (ctx.clone(), a.route_point.clone());
        tasks.push(tokio::spawn(async move {
            caller(&ctx2, idx, rp, keys, patience, target).await;
            drop(permit);
        }));
        if let Some(b) = &bar {
            b.set_position(idx as u64 + 1);
            b.set_message(format!("{} up", ctx.in_progress.load(Ordering::Relaxed)));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    // Callbacks booked but not yet connected, and agents' calls, still in progress.
    let drain_until = clock::monotonic_now() + secs(opts.drain);
    loop {
        let waiting = lock(&ctx.calls)
            .iter()
            .filter(|c| c.callback_kind.is_some() && c.callback_connected.is_none())
            .count();
        let busy = ctx.incoming_in_progress.load(Ordering::Relaxed);
        if (waiting == 0 && busy == 0) || clock::monotonic_now() >= drain_until {
            break;
        }
        if let Some(b) = &bar {
            b.set_message(format!(
                "draining: {waiting} callbacks to connect, {busy} calls up"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    for d in duty {
        d.abort();
    }
    let registered_at_end = std::mem::take(&mut *lock(&registered));
    for user in &registered_at_end {
        let password = ctx.phones.get(user).and_then(|p| p.password.as_deref());
        let _ = register(target, user, password, local, 0).await;
    }
    let reg_failures = reg_failures.load(Ordering::Relaxed);

    let t = std::mem::take(&mut *lock(&ctx.tally));
    let failed: usize = t.failures.values().sum();
    let span = match (t.first_dial, t.last_dial) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let stats = WireStats {
        target: target.to_string(),
        local: local.to_string(),
        attempted: t.attempted,
        ok: t.ok,
        failed,
        failures: t.failures,
        setup_ms: Millis::of(t.setup),
        pdd_ms: Millis::of(t.pdd),
        ended_by_engine: t.ended_by_engine,
        ended_by_caller: t.ended_by_caller,
        max_concurrent: t.max_concurrent,
        delayed_by_limit: t.delayed,
        dial_span_seconds: span,
        calls_per_second: if span > 0.0 {
            (t.attempted.saturating_sub(1)) as f64 / span
        } else {
            0.0
        },
        agents_registered: reg_ok.load(Ordering::Relaxed),
        agent_registration_failures: reg_failures,
        agent_calls: t.agent_calls,
        customer_calls: t.customer_calls,
        customer_answered: t.customer_answered,
        unknown_calls: t.unknown_calls,
    };
    let records = std::mem::take(&mut *lock(&ctx.calls));
    let busy = std::mem::take(&mut *lock(&ctx.busy));
    // Agents' phones are on duty over their shifts.
    let end = records
        .iter()
        .map(|c| c.arrival)
        .fold(s.spec.duration.0, f64::max);
    let on_duty: Vec<(f64, f64)> = ctx
        .phones
        .values()
        .map(|p| (p.shift.0.min(end), p.shift.1.min(end)))
        .collect();
    let mut report = Report::build(
        s,
        RunFacts {
            seed,
            records,
            samples: Vec::new(),
            busy: &busy,
            on_duty: &on_duty,
            agents: &plan,
            wall_seconds: wall.elapsed().as_secs_f64(),
        },
    );
    report.wire = Some(stats);
    Ok(report)
}

/// One caller: INVITE, timings, keys, then wait for the engine to hang up or run out of
/// patience.
async fn caller(
    ctx: &Arc<Ctx>,
    idx: usize,
    rp: String,
    keys: Vec<String>,
    patience: Option<f64>,
    target: SocketAddr,
) {
    let Some(ua) = ctx.ua.get().cloned() else {
        return;
    };
    let up = ctx.in_progress.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut t = lock(&ctx.tally);
        t.max_concurrent = t.max_concurrent.max(up);
    }
    caller_call(ctx, &ua, idx, rp, keys, patience, target).await;
    ctx.in_progress.fetch_sub(1, Ordering::Relaxed);
    if let Some(c) = lock(&ctx.calls).get_mut(idx) {
        c.ended = true;
    }
}

#[allow(clippy::too_many_arguments)]
async fn caller_call(
    ctx: &Arc<Ctx>,
    ua: &UaHandle,
    idx: usize,
    rp: String,
    keys: Vec<String>,
    patience: Option<f64>,
    target: SocketAddr,
) {
    let shared = LegShared::new();
    let media =
        match MediaSession::open(ua.public_ip, ctx.opts.rtp_ports, shared.digits.clone()).await {
            Ok(m) => m,
            Err(e) => {
                lock(&ctx.tally).attempted += 1;
                ctx.fail(format!("no RTP port: {e}"));
                return;
            }
        };
    let offer = sdp::offer(
        ua.public_ip,
        media.local_addr().port(),
        rand::random::<u32>() as u64,
        1,
    );
    let dialled = clock::monotonic_now();
    if let Some(d) = lock(&ctx.dialled).get_mut(idx) {
        *d = Some(dialled);
    }
    {
        let mut t = lock(&ctx.tally);
        t.attempted += 1;
        t.first_dial.get_or_insert(dialled);
        t.last_dial = Some(dialled);
    }
    let Some((call_id, mut events)) = ua
        .dial(
            DialRequest {
                uri: format!("sip:{rp}@{target}"),
                peer: Peer {
                    addr: target,
                    transport: Transport::Udp,
                },
                from_user: ani(idx),
                sdp: offer,
                credentials: None,
                extra_headers: Vec::new(),
            },
            shared.clone(),
            false,
        )
        .await
    else {
        ctx.fail("user agent stopped".into());
        media.close();
        return;
    };
    let deadline = clock::tokio_now() + secs(ctx.opts.setup_timeout);
    let mut pdd = None;
    let outcome = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(UacEvent::Progress(_)) => {
                    pdd.get_or_insert_with(|| dialled.elapsed());
                }
                Some(UacEvent::Answered(answer)) => break Ok(answer),
                Some(UacEvent::Failed(code)) => break Err(code.to_string()),
                None => break Err("no final response".to_string()),
            },
            _ = tokio::time::sleep_until(deadline) => {
                ua.cancel(&call_id);
                break Err("timeout".to_string());
            }
        }
    };
    let answer = match outcome {
        Ok(a) => a,
        Err(why) => {
            ctx.fail(why);
            media.close();
            return;
        }
    };
    {
        let mut t = lock(&ctx.tally);
        t.ok += 1;
        t.setup.push(dialled.elapsed().as_secs_f64() * 1000.0);
        if let Some(p) = pdd {
            t.pdd.push(p.as_secs_f64() * 1000.0);
        }
    }
    if let Ok(n) = sdp::parse_answer(&answer) {
        media.configure(&n);
    }
    let parts = LegParts {
        info: LegInfo {
            call_id,
            ani: ani(idx),
            dnis: rp,
            direction: Direction::Outbound,
        },
        ua: ua.clone(),
        shared,
        media,
        prompts: ctx.prompts.clone(),
        clock: ctx.clock.clone(),
    };
    let leg = SipLeg::new(parts, String::new(), true);
    // Keys, at the scripted moments, unless the engine hangs up first.
    let mut engine_ended = false;
    for (i, k) in keys.iter().enumerate() {
        let wait = if i == 0 {
            ctx.opts.digit_delay
        } else {
            ctx.opts.digit_gap
        };
        tokio::select! {
            _ = tokio::time::sleep(secs(wait)) => {}
            _ = leg.hung_up() => { engine_ended = true; break; }
        }
        if leg.send_digits(k).await.is_err() {
            engine_ended = true;
            break;
        }
    }
    // In queue (or on the way to it) from here; patience runs from now.
    let queued_at = ctx.t(idx);
    if let Some(c) = lock(&ctx.calls).get_mut(idx) {
        c.queued = queued_at;
    }
    let limit = clock::tokio_now() + secs(ctx.opts.max_call);
    let mut by_caller = false;
    if !engine_ended {
        let patience_timer = async {
            match patience {
                Some(p) => tokio::time::sleep(secs(p)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = leg.hung_up() => {}
            _ = patience_timer => {
                let answered = lock(&ctx.calls).get(idx).is_some_and(|c| c.answered.is_some());
                if answered {
                    tokio::select! {
                        _ = leg.hung_up() => {}
                        _ = tokio::time::sleep_until(limit) => by_caller = true,
                    }
                } else {
                    let t = ctx.t(idx);
                    if let Some(c) = lock(&ctx.calls).get_mut(idx) {
                        c.abandoned = t;
                    }
                    by_caller = true;
                }
            }
            _ = tokio::time::sleep_until(limit) => by_caller = true,
        }
    }
    if by_caller {
        let _ = leg.hang_up(HangupCause::Normal).await;
        lock(&ctx.tally).ended_by_caller += 1;
    } else {
        lock(&ctx.tally).ended_by_engine += 1;
    }
    // What the caller's observations imply.
    let mut calls = lock(&ctx.calls);
    let Some(c) = calls.get_mut(idx) else {
        return;
    };
    if c.answered.is_none() && c.abandoned.is_none() {
        c.queued = None;
        if !by_caller && c.choice != ChoiceKind::Wait {
            // Pressed a callback choice and was let go without an agent: booked.
            c.callback_offered = true;
            c.callback_kind = Some(
                match c.choice {
                    ChoiceKind::Scheduled => "scheduled",
                    _ => "immediate",
                }
                .to_string(),
            );
            c.route_result = Some("callback".into());
        } else {
            c.route_result = Some(
                if by_caller {
                    "caller_hung_up"
                } else {
                    "engine_hung_up"
                }
                .into(),
            );
        }
    } else if c.answered.is_some() {
        c.route_result = Some("agent".into());
    } else {
        c.route_result = Some("abandoned".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let m = Millis::of((1..=100).map(f64::from).collect());
        assert_eq!(m.p50, Some(50.0));
        assert_eq!(m.p95, Some(95.0));
        assert_eq!(m.p99, Some(99.0));
        assert_eq!(m.max, Some(100.0));
        assert_eq!(Millis::of(Vec::new()).p50, None);
        assert_eq!(Millis::of(vec![7.0]).p99, Some(7.0));
    }
}
