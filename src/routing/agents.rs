//! Agents and their states. Each agent's state lives in one atomic word, so the claim that
//! routing depends on (Ready → Reserved) is a single compare-and-swap that no lock guards.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::skills::{SkillCatalog, SkillLevels};

/// Dense index of an agent in the registry.
pub type AgentIdx = u32;

/// What an agent is doing, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// Not logged in.
    LoggedOut,
    /// Logged in but not taking interactions (break, training…).
    NotReady,
    /// Waiting for an interaction.
    Ready,
    /// Picked for an interaction that is being connected.
    Reserved,
    /// On an interaction.
    Busy,
    /// Wrapping up after an interaction.
    AfterCallWork,
}

impl StateKind {
    fn from_u8(v: u8) -> StateKind {
        match v {
            1 => StateKind::NotReady,
            2 => StateKind::Ready,
            3 => StateKind::Reserved,
            4 => StateKind::Busy,
            5 => StateKind::AfterCallWork,
            _ => StateKind::LoggedOut,
        }
    }

    /// The state's name as the API and the cluster's view spell it (`ready`, `not_ready`…).
    pub fn name(self) -> &'static str {
        match self {
            StateKind::LoggedOut => "logged_out",
            StateKind::NotReady => "not_ready",
            StateKind::Ready => "ready",
            StateKind::Reserved => "reserved",
            StateKind::Busy => "busy",
            StateKind::AfterCallWork => "after_call_work",
        }
    }

    /// True when the transition `self → to` is allowed.
    pub fn can_become(self, to: StateKind) -> bool {
        use StateKind::*;
        match (self, to) {
            (LoggedOut, NotReady | Ready) => true,
            (_, LoggedOut) => self != LoggedOut,
            (NotReady, NotReady | Ready) => true,
            (Ready, Reserved | Busy | NotReady) => true,
            (Reserved, Ready | Busy | NotReady) => true,
            (Busy, AfterCallWork | Ready | NotReady) => true,
            (AfterCallWork, Ready | NotReady) => true,
            _ => false,
        }
    }
}

/// Why an agent operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AgentError {
    /// No such agent.
    #[error("unknown agent `{0}`")]
    Unknown(String),
    /// Not an allowed transition.
    #[error("agent `{agent}` cannot go from {from:?} to {to:?}")]
    Transition {
        /// Agent id.
        agent: String,
        /// Current state.
        from: StateKind,
        /// Requested state.
        to: StateKind,
    },
}

/// One agent: identity, skills, and the atomic state word.
#[derive(Debug)]
pub struct Agent {
    /// Configuration id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// SIP user the phone registers as.
    pub sip_user: String,
    skills: RwLock<SkillLevels>,
    /// Low 8 bits: state; the rest: a counter bumped by every change (so a CAS never succeeds
    /// on a state that left and came back).
    state: AtomicU64,
    ready_since_ns: AtomicI64,
    acw_until_ns: AtomicI64,
    not_ready_reason: RwLock<String>,
    /// The state asked for (with its reason) while the agent was on a call, applied when the
    /// call ends; `None`: Ready. Its lock also orders requests against the call's end.
    pending: Mutex<Option<(StateKind, String)>>,
    /// A phone is registered for the agent (calls can reach them).
    phone: AtomicBool,
}

/// What became of a state request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Applied now; the previous state.
    Applied(StateKind),
    /// The agent already was in that state: nothing changed.
    Unchanged,
    /// The agent is on a call: the state is applied when it ends.
    Deferred,
}

impl Agent {
    /// The current state.
    pub fn state(&self) -> StateKind {
        StateKind::from_u8((self.state.load(Ordering::Acquire) & 0xff) as u8)
    }

    /// When the agent last became ready (for longest-idle selection), as Unix nanoseconds.
    pub fn ready_since_ns(&self) -> i64 {
        self.ready_since_ns.load(Ordering::Acquire)
    }

    /// End of after-call work, when in that state.
    pub fn acw_until(&self) -> Option<DateTime<Utc>> {
        (self.state() == StateKind::AfterCallWork)
            .then(|| DateTime::from_timestamp_nanos(self.acw_until_ns.load(Ordering::Acquire)))
    }

    /// The reason given for NotReady.
    pub fn not_ready_reason(&self) -> String {
        self.not_ready_reason.read().clone()
    }

    /// A copy of the skill levels.
    pub fn skills(&self) -> SkillLevels {
        self.skills.read().clone()
    }

    /// True while a phone is registered for the agent.
    pub fn has_phone(&self) -> bool {
        self.phone.load(Ordering::Acquire)
    }

    /// Records whether a phone is registered for the agent.
    pub fn set_phone(&self, registered: bool) {
        self.phone.store(registered, Ordering::Release);
    }

    /// The state the agent goes to when the current call ends, if not Ready.
    pub fn pending_state(&self) -> Option<StateKind> {
        self.pending.lock().as_ref().map(|(s, _)| *s)
    }

    /// Runs `f` on the skill levels without copying them.
    pub fn with_skills<R>(&self, f: impl FnOnce(&SkillLevels) -> R) -> R {
        f(&self.skills.read())
    }

    /// Moves to `to` if allowed from the current state and `allow` accepts that state (checked
    /// in the same compare-and-swap loop, so a concurrent change cannot slip between check and
    /// move); returns the previous state.
    fn transition_where(
        &self,
        to: StateKind,
        allow: impl Fn(StateKind) -> bool,
    ) -> Result<StateKind, StateKind> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let from = StateKind::from_u8((cur & 0xff) as u8);
            if !from.can_become(to) || !allow(from) {
                return Err(from);
            }
            let next = ((cur >> 8).wrapping_add(1) << 8) | to as u64;
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(from),
                Err(seen) => cur = seen,
            }
        }
    }

    /// Ready → Reserved, atomically; false if the agent was not ready (someone else won).
    /// Private: the registry's `claim` also keeps the state bits up to date.
    #[inline]
    fn try_claim(&self) -> bool {
        let cur = self.state.load(Ordering::Acquire);
        if cur & 0xff != StateKind::Ready as u64 {
            return false;
        }
        let next = ((cur >> 8).wrapping_add(1) << 8) | StateKind::Reserved as u64;
        self.state
            .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// One bit per agent for each state class routing counts, so a queue's counts are three
/// popcounts per 64 agents over its eligibility bitset instead of a load per eligible agent.
#[derive(Debug, Default)]
struct StateBits {
    logged_in: Vec<AtomicU64>,
    ready: Vec<AtomicU64>,
    busy: Vec<AtomicU64>,
}

fn put_bit(words: &[AtomicU64], idx: AgentIdx, on: bool) {
    let (w, bit) = ((idx / 64) as usize, 1u64 << (idx % 64));
    if let Some(word) = words.get(w) {
        // Always a read-modify-write (never skipped when the bit looks right): the last RMW
        // on a word then synchronises with every earlier one, which `publish_state` relies on.
        if on {
            word.fetch_or(bit, Ordering::AcqRel);
        } else {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

impl StateBits {
    fn with_room(agents: usize) -> Self {
        let words = || {
            (0..agents.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect()
        };
        StateBits {
            logged_in: words(),
            ready: words(),
            busy: words(),
        }
    }

    fn write(&self, idx: AgentIdx, state: StateKind) {
        use StateKind::*;
        put_bit(&self.logged_in, idx, state != LoggedOut);
        put_bit(&self.ready, idx, state == Ready);
        put_bit(
            &self.busy,
            idx,
            matches!(state, Reserved | Busy | AfterCallWork),
        );
    }
}

/// How many of a queue's eligible agents are logged in, ready and busy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AgentCounts {
    /// Any state but LoggedOut.
    pub logged_in: usize,
    /// Ready.
    pub ready: usize,
    /// Reserved, Busy or in after-call work.
    pub busy: usize,
}

/// Every agent, by dense index and by id.
#[derive(Debug, Default)]
pub struct AgentRegistry {
    agents: Vec<Agent>,
    bits: StateBits,
    /// Dense mirror of each agent's ready-since while Ready (`i64::MAX` otherwise), so a queue
    /// can find its longest-idle agent by reading 8 bytes per eligible agent.
    idle: Vec<AtomicI64>,
    by_id: HashMap<String, AgentIdx>,
    by_sip_user: HashMap<String, AgentIdx>,
}

/// An agent to register.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// SIP user.
    pub sip_user: String,
    /// Skill name → level.
    pub skills: Vec<(String, u8)>,
}

impl AgentRegistry {
    /// Registers agents (all LoggedOut), interning their skills in `catalog`.
    pub fn new(infos: Vec<AgentInfo>, catalog: &SkillCatalog) -> Self {
        let mut reg = AgentRegistry::default();
        for info in infos {
            let idx = reg.agents.len() as AgentIdx;
            reg.by_id.insert(info.id.clone(), idx);
            reg.by_sip_user.insert(info.sip_user.clone(), idx);
            let levels =
                SkillLevels::from_pairs(catalog, info.skills.iter().map(|(s, l)| (s.as_str(), *l)));
            reg.idle.push(AtomicI64::new(i64::MAX));
            reg.agents.push(Agent {
                id: info.id,
                name: info.name,
                sip_user: info.sip_user,
                skills: RwLock::new(levels),
                state: AtomicU64::new(StateKind::LoggedOut as u64),
                ready_since_ns: AtomicI64::new(0),
                acw_until_ns: AtomicI64::new(0),
                not_ready_reason: RwLock::new(String::new()),
                pending: Mutex::new(None),
                phone: AtomicBool::new(false),
            });
        }
        reg.bits = StateBits::with_room(reg.agents.len());
        reg
    }

    /// Publishes agent `idx`'s state in the state bits. Writes the bits for the state it reads,
    /// then reads the state again and repeats if it changed: a racing transition's stale write
    /// is always followed by that writer's own correction, so the bits settle on the state.
    fn publish_state(&self, idx: AgentIdx) {
        let a = &self.agents[idx as usize];
        let mut seen = a.state.load(Ordering::Acquire);
        loop {
            self.bits
                .write(idx, StateKind::from_u8((seen & 0xff) as u8));
            let now = a.state.load(Ordering::Acquire);
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Word `w` of the ready bits (agents `64 w` to `64 w + 63`); may lag a transition in
    /// progress, so it narrows a search but the claim decides.
    #[inline]
    pub fn ready_word(&self, w: usize) -> u64 {
        self.bits
            .ready
            .get(w)
            .map_or(0, |v| v.load(Ordering::Acquire))
    }

    /// Counts the agents of bitset `members` (one bit per agent index, as
    /// `Eligibility` keeps them) by state: three popcounts per 64 agents. A transition in
    /// progress may be off by one until its writer has published it.
    pub fn count_states(&self, members: impl Iterator<Item = u64>) -> AgentCounts {
        let mut c = AgentCounts::default();
        for (i, m) in members.enumerate() {
            if m == 0 {
                continue;
            }
            let load = |v: &[AtomicU64]| v.get(i).map_or(0, |w| w.load(Ordering::Acquire));
            c.logged_in += (m & load(&self.bits.logged_in)).count_ones() as usize;
            c.ready += (m & load(&self.bits.ready)).count_ones() as usize;
            c.busy += (m & load(&self.bits.busy)).count_ones() as usize;
        }
        c
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// An agent by index.
    #[inline]
    pub fn get(&self, idx: AgentIdx) -> &Agent {
        &self.agents[idx as usize]
    }

    /// Ready → Reserved for agent `idx`, atomically; false if it was not ready.
    #[inline]
    pub fn claim(&self, idx: AgentIdx) -> bool {
        let won = self.agents[idx as usize].try_claim();
        if won {
            self.idle[idx as usize].store(i64::MAX, Ordering::Release);
            self.publish_state(idx);
        }
        won
    }

    /// The agent's ready-since while it is Ready, `i64::MAX` otherwise (may lag a transition in
    /// progress; the claim's compare-and-swap is what decides).
    #[inline]
    pub fn idle_since(&self, idx: AgentIdx) -> i64 {
        self.idle[idx as usize].load(Ordering::Acquire)
    }

    /// Every agent with its index.
    pub fn iter(&self) -> impl Iterator<Item = (AgentIdx, &Agent)> {
        self.agents
            .iter()
            .enumerate()
            .map(|(i, a)| (i as AgentIdx, a))
    }

    /// Index of an agent id.
    pub fn index_of(&self, id: &str) -> Result<AgentIdx, AgentError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| AgentError::Unknown(id.to_string()))
    }

    /// Index of the agent whose phone registers as `user`.
    pub fn by_sip_user(&self, user: &str) -> Option<AgentIdx> {
        self.by_sip_user.get(user).copied()
    }

    /// Replaces an agent's skills (the router recomputes eligibility afterwards).
    pub fn set_skills(&self, idx: AgentIdx, levels: SkillLevels) {
        *self.agents[idx as usize].skills.write() = levels;
    }

    /// Validated state change; sets ready-since when becoming ready (unless coming back from a
    /// reservation that was not used, which keeps the agent's place in the idle order).
    pub fn set_state(
        &self,
        idx: AgentIdx,
        to: StateKind,
        now: DateTime<Utc>,
        reason: Option<&str>,
        acw_until: Option<DateTime<Utc>>,
    ) -> Result<StateKind, AgentError> {
        if to == StateKind::Busy {
            // A new call starts with no request pending from an earlier one.
            *self.agents[idx as usize].pending.lock() = None;
        }
        self.set_state_where(idx, to, now, reason, acw_until, |_| true)
    }

    /// An agent's (or administrator's) request: applied now, or — while the agent is on a
    /// call (Busy) — remembered and applied when the call ends ([`AgentRegistry::finish_call`]).
    /// Ready while on a call cancels an earlier request; asking for the current state changes
    /// nothing (and is no error).
    pub fn request_state(
        &self,
        idx: AgentIdx,
        to: StateKind,
        now: DateTime<Utc>,
        reason: Option<&str>,
    ) -> Result<Requested, AgentError> {
        let a = &self.agents[idx as usize];
        let mut pending = a.pending.lock();
        let on_call = |s: StateKind| s == StateKind::Busy;
        if a.state() == to && !to.can_become(to) {
            *pending = None;
            return Ok(Requested::Unchanged);
        }
        match self.set_state_where(idx, to, now, reason, None, |s| !on_call(s)) {
            Ok(from) => {
                *pending = None;
                Ok(Requested::Applied(from))
            }
            Err(AgentError::Transition { from, .. })
                if on_call(from)
                    && matches!(
                        to,
                        StateKind::Ready | StateKind::NotReady | StateKind::LoggedOut
                    ) =>
            {
                *pending =
                    (to != StateKind::Ready).then(|| (to, reason.unwrap_or_default().to_string()));
                Ok(Requested::Deferred)
            }
            Err(e) => Err(e),
        }
    }

    /// Ends agent `idx`'s call: Busy → the state requested during the call, else after-call
    /// work until `acw_until` when given, else Ready. Returns `(from, to)`; `None` when the
    /// agent was no longer Busy (already moved by an engine decision), which is left alone.
    pub fn finish_call(
        &self,
        idx: AgentIdx,
        now: DateTime<Utc>,
        acw_until: Option<DateTime<Utc>>,
    ) -> Option<(StateKind, StateKind)> {
        let a = &self.agents[idx as usize];
        let mut pending = a.pending.lock();
        if a.state() != StateKind::Busy {
            return None;
        }
        let (to, reason) = match pending.take() {
            Some((s, r)) => (s, Some(r)),
            None if acw_until.is_some_and(|u| u > now) => (StateKind::AfterCallWork, None),
            None => (StateKind::Ready, None),
        };
        let busy = |s: StateKind| s == StateKind::Busy;
        self.set_state_where(idx, to, now, reason.as_deref(), acw_until, busy)
            .ok()
            .map(|from| (from, to))
    }

    /// After-call work that is over at `now` ends in Ready; false when the agent is not (or
    /// no longer) in after-call work that ends by `now`.
    pub fn end_wrap_up(&self, idx: AgentIdx, now: DateTime<Utc>) -> bool {
        let a = &self.agents[idx as usize];
        let _order = a.pending.lock();
        let over = |s: StateKind| {
            s == StateKind::AfterCallWork
                && a.acw_until_ns.load(Ordering::Acquire) <= now.timestamp_nanos_opt().unwrap_or(0)
        };
        self.set_state_where(idx, StateKind::Ready, now, None, None, over)
            .is_ok()
    }

    fn set_state_where(
        &self,
        idx: AgentIdx,
        to: StateKind,
        now: DateTime<Utc>,
        reason: Option<&str>,
        acw_until: Option<DateTime<Utc>>,
        allow: impl Fn(StateKind) -> bool,
    ) -> Result<StateKind, AgentError> {
        let a = &self.agents[idx as usize];
        if to == StateKind::AfterCallWork {
            let until = acw_until.unwrap_or(now);
            a.acw_until_ns.store(
                until.timestamp_nanos_opt().unwrap_or(i64::MAX),
                Ordering::Release,
            );
        }
        let from = a
            .transition_where(to, allow)
            .map_err(|from| AgentError::Transition {
                agent: a.id.clone(),
                from,
                to,
            })?;
        if to == StateKind::Ready && from != StateKind::Reserved {
            a.ready_since_ns
                .store(now.timestamp_nanos_opt().unwrap_or(0), Ordering::Release);
        }
        let idle = if to == StateKind::Ready {
            a.ready_since_ns.load(Ordering::Acquire)
        } else {
            i64::MAX
        };
        self.idle[idx as usize].store(idle, Ordering::Release);
        self.publish_state(idx);
        if to == StateKind::NotReady {
            *a.not_ready_reason.write() = reason.unwrap_or_default().to_string();
        }
        Ok(from)
    }
}

/// `n` agents `a0`, `a1`… without skills, for tests of the routing modules.
#[cfg(test)]
pub(crate) fn registry_of_plain_agents(n: usize) -> AgentRegistry {
    AgentRegistry::new(
        (0..n)
            .map(|i| AgentInfo {
                id: format!("a{i}"),
                name: String::new(),
                sip_user: format!("{i}"),
                skills: vec![],
            })
            .collect(),
        &SkillCatalog::new(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_names_are_the_serialised_ones() {
        use super::StateKind::*;
        for k in [LoggedOut, NotReady, Ready, Reserved, Busy, AfterCallWork] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
    }

    use super::*;
    use StateKind::*;
    use chrono::{TimeDelta, TimeZone};

    fn reg() -> AgentRegistry {
        AgentRegistry::new(
            vec![AgentInfo {
                id: "a".into(),
                name: "A".into(),
                sip_user: "1001".into(),
                skills: vec![("Sales".into(), 5)],
            }],
            &SkillCatalog::new(),
        )
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
    }

    #[test]
    fn every_transition_is_checked() {
        let all = [LoggedOut, NotReady, Ready, Reserved, Busy, AfterCallWork];
        let allowed: Vec<(StateKind, StateKind)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (LoggedOut, NotReady),
                (LoggedOut, Ready),
                (NotReady, LoggedOut),
                (NotReady, NotReady),
                (NotReady, Ready),
                (Ready, LoggedOut),
                (Ready, NotReady),
                (Ready, Reserved),
                (Ready, Busy),
                (Reserved, LoggedOut),
                (Reserved, NotReady),
                (Reserved, Ready),
                (Reserved, Busy),
                (Busy, LoggedOut),
                (Busy, NotReady),
                (Busy, Ready),
                (Busy, AfterCallWork),
                (AfterCallWork, LoggedOut),
                (AfterCallWork, NotReady),
                (AfterCallWork, Ready),
            ]
        );
    }

    #[test]
    fn claim_is_exclusive_and_release_keeps_idle_order() {
        let r = reg();
        let a = r.get(0);
        assert!(!a.try_claim(), "logged out");
        assert_eq!(
            r.set_state(0, Busy, t0(), None, None),
            Err(AgentError::Transition {
                agent: "a".into(),
                from: LoggedOut,
                to: Busy
            })
        );
        r.set_state(0, Ready, t0(), None, None).unwrap();
        assert!(a.try_claim());
        assert!(!a.try_claim(), "already reserved");
        r.set_state(0, Ready, t0() + TimeDelta::seconds(30), None, None)
            .unwrap();
        assert_eq!(
            a.ready_since_ns(),
            t0().timestamp_nanos_opt().unwrap(),
            "an unused reservation keeps the place"
        );
        assert!(a.try_claim());
        r.set_state(0, Busy, t0(), None, None).unwrap();
        r.set_state(
            0,
            AfterCallWork,
            t0(),
            None,
            Some(t0() + TimeDelta::seconds(20)),
        )
        .unwrap();
        assert_eq!(a.acw_until(), Some(t0() + TimeDelta::seconds(20)));
        r.set_state(0, NotReady, t0(), Some("lunch"), None).unwrap();
        assert_eq!(
            (a.state(), a.not_ready_reason().as_str()),
            (NotReady, "lunch")
        );
        r.set_state(0, Ready, t0() + TimeDelta::seconds(90), None, None)
            .unwrap();
        assert_eq!(
            a.ready_since_ns(),
            (t0() + TimeDelta::seconds(90))
                .timestamp_nanos_opt()
                .unwrap()
        );
        assert_eq!(r.index_of("zz"), Err(AgentError::Unknown("zz".into())));
        assert_eq!(r.by_sip_user("1001"), Some(0));
    }

    #[test]
    fn a_request_during_a_call_applies_when_it_ends() {
        let r = reg();
        r.set_state(0, Ready, t0(), None, None).unwrap();
        assert!(r.claim(0));
        r.set_state(0, Busy, t0(), None, None).unwrap();
        assert_eq!(
            r.request_state(0, NotReady, t0(), Some("break")),
            Ok(Requested::Deferred)
        );
        assert_eq!(r.get(0).state(), Busy, "the call goes on");
        assert_eq!(r.get(0).pending_state(), Some(NotReady));
        assert_eq!(r.finish_call(0, t0(), None), Some((Busy, NotReady)));
        assert_eq!(r.get(0).not_ready_reason(), "break");
        assert_eq!(r.finish_call(0, t0(), None), None, "not on a call");
        // Ready during a call cancels the request; a wrap-up then ends in Ready.
        r.set_state(0, Ready, t0(), None, None).unwrap();
        r.set_state(0, Busy, t0(), None, None).unwrap();
        r.request_state(0, LoggedOut, t0(), None).unwrap();
        r.request_state(0, Ready, t0(), None).unwrap();
        let until = t0() + TimeDelta::seconds(10);
        assert_eq!(
            r.finish_call(0, t0(), Some(until)),
            Some((Busy, AfterCallWork))
        );
        assert!(!r.end_wrap_up(0, t0() + TimeDelta::seconds(9)), "not yet");
        assert!(r.end_wrap_up(0, until));
        assert_eq!(r.get(0).state(), Ready);
        // Off a call, a request applies at once.
        assert_eq!(
            r.request_state(0, LoggedOut, t0(), None),
            Ok(Requested::Applied(Ready))
        );
    }

    #[test]
    fn state_bits_count_every_class_through_a_call() {
        let r = registry_of_plain_agents(70);
        // Members: agents 0, 1 and 69 (the second word).
        let members = || [0b11u64, 1 << 5].into_iter();
        let counts = |r: &AgentRegistry| {
            let c = r.count_states(members());
            (c.logged_in, c.ready, c.busy)
        };
        assert_eq!(counts(&r), (0, 0, 0));
        r.set_state(69, Ready, t0(), None, None).unwrap();
        r.set_state(1, NotReady, t0(), None, None).unwrap();
        r.set_state(2, Ready, t0(), None, None).unwrap();
        assert_eq!(counts(&r), (2, 1, 0), "agent 2 is not a member");
        assert!(r.claim(69));
        assert_eq!(counts(&r), (2, 0, 1), "a reservation counts as busy");
        r.set_state(69, Busy, t0(), None, None).unwrap();
        r.set_state(69, AfterCallWork, t0(), None, Some(t0()))
            .unwrap();
        assert_eq!(counts(&r), (2, 0, 1));
        r.set_state(1, Ready, t0(), None, None).unwrap();
        r.set_state(69, LoggedOut, t0(), None, None).unwrap();
        assert_eq!(counts(&r), (1, 1, 0));
        assert!(!r.claim(69), "logged out");
        assert_eq!(counts(&r), (1, 1, 0));
    }
}
