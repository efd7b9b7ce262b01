//! SIP mode: the virtual-time run with every caller and agent a SIP user agent talking to the
//! engine's real user agent in the same process ([`boomerang::sip::in_process`]): INVITE, 100,
//! 200, ACK, INFO for keys, BYE or CANCEL, REGISTER for agents' phones — parsed, validated,
//! put through transactions and dialogs, timed by the endpoint's own timers on tokio's paused
//! clock. No socket is opened and no real time is waited for.
//!
//! Engine side, each inbound call runs its flow on a [`leg::SignalLeg`] (the SIP leg without
//! RTP: prompts take their scenario length), and Route Call rings agents through the same
//! user agent ([`AgentDialer`]). Customers called back keep the virtual mode's dialler.

mod leg;
pub mod parties;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::call::{CallLeg, Dial, DialResult, Dialer, Direction, HangupCause, LegInfo};
use boomerang::config::Config;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, FlowServices, FlowSet};
use boomerang::routing::{Dispatch, StateKind};
use boomerang::sip::in_process::{self, Network};
use boomerang::sip::registrar::RegistrarConfig;
use boomerang::sip::ua::{
    CallHandler, DialRequest, IncomingCall, LegShared, UaConfig, UaHandle, UaLimits, UacEvent,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::legs::caller_of;
use crate::run::Shared;
use text::Msg;

/// What the SIP user agents saw during a run (the report's `sip` section).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SipStats {
    /// INVITEs the callers sent.
    pub invites: usize,
    /// Callers' INVITEs answered 200 OK.
    pub answered_200: usize,
    /// Callers' INVITEs answered with a final failure, by status.
    pub failures: BTreeMap<String, usize>,
    /// Callers who gave up before the 200 (CANCEL, then 487).
    pub cancelled: usize,
    /// Calls the engine ended with a BYE to the caller.
    pub byes_from_engine: usize,
    /// Callers who hung up at their patience (BYE or CANCEL).
    pub byes_from_callers: usize,
    /// Keys sent as SIP INFO.
    pub infos: usize,
    /// Agents' phones registered (200 to REGISTER).
    pub registered: usize,
    /// INVITEs the engine sent to agents' phones and they answered.
    pub agent_invites: usize,
    /// INVITEs agents leaving for a break or the end of their shift refused (480).
    pub agent_refused: usize,
    /// Calls the agents ended with a BYE.
    pub agent_byes: usize,
    /// SIP messages exchanged with the engine (both ways).
    pub messages: usize,
    /// Messages for an address nobody holds any more (late retransmissions).
    pub undelivered: usize,
    /// Simulated seconds the run covered.
    pub simulated_seconds: f64,
    /// Callers' INVITEs per real second of the run.
    pub calls_per_wall_second: f64,
    /// Simulated seconds per real second.
    pub speed_up: f64,
}

impl SipStats {
    /// The "SIP (in process)" block of the run's table.
    pub fn write_table(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "SIP (in process): {} INVITEs, {} answered 200, {} cancelled, failures {:?}; BYE from \
             engine {}, from callers {}; {} INFO keys; {} phones registered, {} agent calls ({} \
             refused, {} ended by the agent); {} messages ({} undelivered); {:.0} calls per real \
             second, {:.0}x real time",
            self.invites,
            self.answered_200,
            self.cancelled,
            self.failures,
            self.byes_from_engine,
            self.byes_from_callers,
            self.infos,
            self.registered,
            self.agent_invites,
            self.agent_refused,
            self.agent_byes,
            self.messages,
            self.undelivered,
            self.calls_per_wall_second,
            self.speed_up,
        );
    }
}

/// The in-process network and the engine's user agent, shared by every party.
pub struct World {
    /// The engine's user agent.
    pub ua: UaHandle,
    pub(crate) net: Network,
    pub(crate) sh: Arc<Shared>,
    boxes: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Msg>>>,
    /// Figures so far.
    pub stats: Mutex<SipStats>,
    queued: Mutex<HashMap<usize, Arc<Notify>>>,
    talk: Mutex<HashMap<usize, Option<f64>>>,
    logout: Mutex<HashMap<usize, Arc<Notify>>>,
    front: Arc<Front>,
}

impl World {
    /// Starts the engine's user agent with no socket (one worker, no overload limits: the
    /// simulation decides the load), its handler running flows on `config`'s route points.
    pub fn start(
        config: Arc<Config>,
        flows: Arc<FlowSet>,
        dispatch: Arc<Dispatch>,
        sh: Arc<Shared>,
        active: Arc<AtomicUsize>,
        stream_queues: Vec<String>,
    ) -> Arc<World> {
        let front = Arc::new(Front {
            config,
            flows,
            dispatch,
            sh: sh.clone(),
            active,
            stream_queues,
            services: OnceLock::new(),
            world: OnceLock::new(),
        });
        let ua_config = UaConfig {
            udp: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            tcp: Vec::new(),
            public_ip: None,
            public_name: None,
            registrar: RegistrarConfig::default(),
            register_auth: None,
            authenticate_register: false,
            authenticate_invite: false,
            session_expires: 1800,
            limits: UaLimits {
                max_calls: usize::MAX / 2,
                max_setup_calls: usize::MAX / 2,
                max_queue_delay: Duration::ZERO,
                workers: 1,
                ..UaLimits::default()
            },
        };
        let handler: Arc<dyn CallHandler> = Arc::new(Handler(front.clone()));
        let (ua, net, mut sent) = in_process::start(ua_config, handler, sh.clock.clone());
        let world = Arc::new(World {
            ua,
            net,
            sh,
            boxes: Mutex::new(HashMap::new()),
            stats: Mutex::new(SipStats::default()),
            queued: Mutex::new(HashMap::new()),
            talk: Mutex::new(HashMap::new()),
            logout: Mutex::new(HashMap::new()),
            front,
        });
        let _ = world.front.world.set(Arc::downgrade(&world));
        // What the engine sends, to the party at the address (as the network would).
        let w = Arc::downgrade(&world);
        tokio::spawn(async move {
            while let Some(d) = sent.recv().await {
                let Some(w) = w.upgrade() else { return };
                let tx = w.boxes.lock().get(&d.to).cloned();
                let delivered = match (tx, Msg::read(&d.bytes)) {
                    (Some(tx), Some(m)) => tx.send(m).is_ok(),
                    _ => false,
                };
                let mut s = w.stats.lock();
                s.messages += 1;
                if !delivered {
                    s.undelivered += 1;
                }
            }
        });
        world
    }

    /// Gives the engine side its flow services (built with [`AgentDialer`] on this world).
    pub fn set_services(&self, services: Arc<FlowServices>) {
        let _ = self.front.services.set(services);
    }

    /// Sends a party's message to the engine.
    pub(crate) fn send(&self, from: SocketAddr, bytes: Vec<u8>) {
        self.stats.lock().messages += 1;
        self.net.deliver(from, bytes);
    }

    /// The mailbox of the party at `addr`.
    pub(crate) fn attach(&self, addr: SocketAddr) -> mpsc::UnboundedReceiver<Msg> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.boxes.lock().insert(addr, tx);
        rx
    }

    /// The party at `addr` is gone.
    pub(crate) fn detach(&self, addr: SocketAddr) {
        self.boxes.lock().remove(&addr);
    }

    /// Told when caller `idx`'s call joins a queue (what the caller hears).
    pub(crate) fn queued_notify(&self, idx: usize) -> Arc<Notify> {
        self.queued.lock().entry(idx).or_default().clone()
    }

    /// Caller `idx` is gone.
    pub(crate) fn forget_caller(&self, idx: usize) {
        self.queued.lock().remove(&idx);
    }

    fn logout_notify(&self, i: usize) -> Arc<Notify> {
        self.logout.lock().entry(i).or_default().clone()
    }

    /// The talk time of agent `i`'s next call (seconds), `None` when the agent does not answer.
    fn take_talk(&self, i: usize) -> Option<f64> {
        self.talk.lock().remove(&i).flatten()
    }

    /// Agent `i`'s phone (SIP user `id`) registers, which logs the agent in.
    pub fn login(self: &Arc<Self>, i: usize, id: &str) {
        tokio::spawn(parties::agent(self.clone(), i, id.to_string()));
    }

    /// Agent `i`'s phone unregisters and goes.
    pub fn logout(&self, i: usize) {
        self.logout_notify(i).notify_one();
    }
}

/// The engine's side: what the user agent hands over.
struct Front {
    config: Arc<Config>,
    flows: Arc<FlowSet>,
    dispatch: Arc<Dispatch>,
    sh: Arc<Shared>,
    active: Arc<AtomicUsize>,
    /// Each arrival stream's queue (for the EWT a caller is predicted at arrival).
    stream_queues: Vec<String>,
    services: OnceLock<Arc<FlowServices>>,
    world: OnceLock<Weak<World>>,
}

/// The user agent's [`CallHandler`]: route points run their flow, registrations log agents in
/// and out (SIP user = agent id).
struct Handler(Arc<Front>);

impl CallHandler for Handler {
    fn serves(&self, number: &str) -> bool {
        self.0.config.route_point(number).is_some()
    }

    fn incoming(&self, call: IncomingCall) {
        let front = self.0.clone();
        front.active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            front.run_call(call).await;
            front.active.fetch_sub(1, Ordering::Relaxed);
        });
    }

    fn registration(&self, user: &str, registered: bool) {
        let router = self.0.dispatch.router().clone();
        let Ok(i) = router.agents().index_of(user) else {
            return;
        };
        let state = router.agents().get(i).state();
        if registered && state == StateKind::LoggedOut {
            let _ = self
                .0
                .dispatch
                .set_agent_state(user, StateKind::Ready, None);
        } else if !registered {
            let _ = self.0.dispatch.request_agent_state(
                user,
                StateKind::LoggedOut,
                Some("SIP registration"),
            );
        }
    }

    fn knows_user(&self, user: &str) -> bool {
        self.0.sh.agent_index.contains_key(user)
    }
}

impl Front {
    async fn run_call(&self, call: IncomingCall) {
        let (Some(services), Some(w)) = (
            self.services.get().cloned(),
            self.world.get().and_then(Weak::upgrade),
        ) else {
            return;
        };
        let idx = caller_of(&call.ani);
        let ewt = idx
            .and_then(|i| self.sh.lock_calls().get(i).map(|c| c.stream))
            .and_then(|s| self.stream_queues.get(s))
            .and_then(|q| self.dispatch.router().ewt_for_new(q).ok().flatten())
            .map(|e| e.num_milliseconds() as f64 / 1000.0);
        let local = w.net.local_addr();
        let answer = match boomerang::media::sdp::answer(&call.offer, local.ip(), 4000) {
            Ok((a, _)) => a,
            Err(_) => {
                w.ua.reject(&call.call_id, 488, "Not Acceptable Here");
                return;
            }
        };
        let queued = idx.map(|i| w.queued_notify(i)).unwrap_or_default();
        let leg = leg::SignalLeg::new(
            LegInfo {
                call_id: call.call_id.clone(),
                ani: call.ani.clone(),
                dnis: call.dnis.clone(),
                direction: Direction::Inbound,
            },
            w.ua.clone(),
            call.shared.clone(),
            self.sh.clone(),
            answer,
            leg::Ending::Caller { idx, queued },
        );
        let Some(flow) = self.flows.for_number(&self.config, &call.dnis) else {
            let _ = leg.hang_up(HangupCause::NotFound).await;
            return;
        };
        let vars = system_variables(leg.as_ref(), &call.dnis);
        let dyn_leg: Arc<dyn CallLeg> = leg;
        let report = flow::run(&flow, dyn_leg, &services, vars).await;
        if let Some(i) = idx {
            crate::run::record_outcome(&self.sh, i, ewt, &report);
        }
    }
}

/// Rings agents' registered phones through the engine's user agent: the agent's next talk
/// and wrap-up are drawn from its profile as in virtual mode, the phone answers (or refuses
/// when the agent is leaving) and ends the call by BYE when the talk is over.
pub struct AgentDialer {
    /// The world.
    pub world: Arc<World>,
}

#[async_trait]
impl Dialer for AgentDialer {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        let w = &self.world;
        let sh = &w.sh;
        let (agent_id, a) = crate::legs::agent_of(sh, &call)?;
        let (caller_id, ring) = (call.caller_id, call.ring_timeout);
        let drawn = crate::legs::draw_talk(sh, a);
        w.talk.lock().insert(a, drawn.map(|(talk, _)| talk));
        let (uri, peer) = w.ua.lookup(agent_id).await.ok_or(DialResult::Unreachable)?;
        let shared = LegShared::new();
        let local = w.net.local_addr();
        let request = DialRequest {
            uri,
            peer,
            from_user: caller_id.to_string(),
            sdp: boomerang::media::sdp::offer(local.ip(), 4000, 1, 1),
            credentials: None,
            extra_headers: Vec::new(),
        };
        let (call_id, mut events) =
            w.ua.dial(request, shared.clone(), false)
                .await
                .ok_or(DialResult::Failed)?;
        let deadline = sh.clock.now() + chrono::TimeDelta::from_std(ring).unwrap_or_default();
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(UacEvent::Progress(_)) => {}
                    Some(UacEvent::Answered(_)) => break,
                    Some(UacEvent::Failed(code)) => {
                        return Err(boomerang::sip::leg::map_failure(code, true));
                    }
                    None => return Err(DialResult::Unreachable),
                },
                _ = sh.clock.sleep_until(deadline) => {
                    w.ua.cancel(&call_id);
                    return Err(DialResult::NoAnswer);
                }
            }
        }
        let (talk, acw) = drawn.unwrap_or_default();
        Ok(leg::SignalLeg::new(
            LegInfo {
                call_id,
                ani: agent_id.clone(),
                dnis: caller_id.to_string(),
                direction: Direction::Outbound,
            },
            w.ua.clone(),
            shared,
            sh.clone(),
            String::new(),
            leg::Ending::Agent {
                end_at: sh.clock.now() + crate::legs::delta(talk),
                acw: crate::legs::delta(acw),
            },
        ))
    }
}
