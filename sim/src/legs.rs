//! The simulated parties: the caller's leg (an in-memory leg that tells the simulator when the
//! call joins a queue), the agents' phones (talk for a sampled handle time, then wrap up) and
//! the customers' phones when called back (answer, busy or no answer, as the scenario says).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use boomerang::call::memory::{Action, MemoryLeg};
use boomerang::call::{
    BridgeEnd, CallError, CallLeg, Dial, DialResult, DialTarget, Dialer, DigitOutcome, DigitSpec,
    Direction, HangupCause, LegInfo, PlayItem, PlayOptions, PlayOutcome,
};
use boomerang::clock::SharedClock;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use tokio::sync::Notify;

use crate::run::Shared;

/// Seconds as a clock delta (millisecond resolution, as tokio's timer).
pub fn delta(secs: f64) -> TimeDelta {
    TimeDelta::milliseconds((secs * 1000.0).round() as i64)
}

/// The calling number of simulated caller `idx` (valid E.164, unique up to 10⁸ callers).
pub fn ani(idx: usize) -> String {
    format!("+336{idx:08}")
}

/// The caller index behind a number made by [`ani`].
pub fn caller_of(number: &str) -> Option<usize> {
    number.strip_prefix("+336")?.parse().ok()
}

/// A caller's leg: an in-memory leg whose first hang-up watch marks the moment the call joined
/// a queue (Route Call starts watching for a hang-up as soon as it has queued the call; no
/// other block of an inbound flow does).
pub struct SimLeg {
    /// The in-memory leg doing the work.
    pub inner: Arc<MemoryLeg>,
    watched: AtomicBool,
    /// Notified once, when the call joins a queue.
    pub queued: Notify,
}

impl SimLeg {
    /// Wraps `inner`.
    pub fn new(inner: Arc<MemoryLeg>) -> Arc<Self> {
        Arc::new(SimLeg {
            inner,
            watched: AtomicBool::new(false),
            queued: Notify::new(),
        })
    }
}

#[async_trait]
impl CallLeg for SimLeg {
    fn info(&self) -> &LegInfo {
        self.inner.info()
    }
    async fn answer(&self) -> Result<(), CallError> {
        self.inner.answer().await
    }
    async fn play(&self, items: &[PlayItem], opts: &PlayOptions) -> Result<PlayOutcome, CallError> {
        self.inner.play(items, opts).await
    }
    fn stop_playing(&self) {
        self.inner.stop_playing()
    }
    async fn collect_digits(&self, spec: &DigitSpec) -> Result<DigitOutcome, CallError> {
        self.inner.collect_digits(spec).await
    }
    fn flush_digits(&self) {
        self.inner.flush_digits()
    }
    async fn send_digits(&self, digits: &str) -> Result<(), CallError> {
        self.inner.send_digits(digits).await
    }
    async fn bridge(&self, other: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
        self.inner.bridge(other).await
    }
    async fn hang_up(&self, cause: HangupCause) -> Result<(), CallError> {
        self.inner.hang_up(cause).await
    }
    async fn hung_up(&self) {
        if !self.watched.swap(true, Ordering::Relaxed) {
            self.queued.notify_one();
        }
        self.inner.hung_up().await
    }
    fn is_ended(&self) -> bool {
        self.inner.is_ended()
    }
}

/// An agent's phone on one conversation: the agent talks until `end_at`, and once the engine
/// hangs up the leg, wraps up for `acw` before the hang-up returns (the engine makes the agent
/// ready again only then).
pub struct AgentLeg {
    info: LegInfo,
    clock: SharedClock,
    end_at: DateTime<Utc>,
    acw: TimeDelta,
    ended: AtomicBool,
}

#[async_trait]
impl CallLeg for AgentLeg {
    fn info(&self) -> &LegInfo {
        &self.info
    }
    async fn answer(&self) -> Result<(), CallError> {
        Ok(())
    }
    async fn play(&self, _: &[PlayItem], _: &PlayOptions) -> Result<PlayOutcome, CallError> {
        Ok(PlayOutcome::Completed)
    }
    fn stop_playing(&self) {}
    async fn collect_digits(&self, _: &DigitSpec) -> Result<DigitOutcome, CallError> {
        Ok(DigitOutcome::NoInput)
    }
    fn flush_digits(&self) {}
    async fn send_digits(&self, _: &str) -> Result<(), CallError> {
        Ok(())
    }
    async fn bridge(&self, _: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
        self.hung_up().await;
        Ok(BridgeEnd::ThisSide)
    }
    async fn hang_up(&self, _: HangupCause) -> Result<(), CallError> {
        let talked = self.clock.now() >= self.end_at;
        if !self.ended.swap(true, Ordering::Relaxed) && talked && self.acw > TimeDelta::zero() {
            self.clock.sleep(self.acw).await;
        }
        Ok(())
    }
    async fn hung_up(&self) {
        self.clock.sleep_until(self.end_at).await
    }
    fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }
}

/// Agent `a`'s next conversation: talk and wrap-up drawn from its profile, its busy time
/// recorded; `None` when the agent is leaving (a break or the end of the shift is due) and
/// does not answer.
pub fn draw_talk(sh: &Shared, a: usize) -> Option<(f64, f64)> {
    let (talk, acw) = {
        let mut agents = sh.lock_agents();
        let ag = agents.get_mut(a)?;
        if ag.leaving {
            return None;
        }
        let talk = ag.handle.sample(&mut ag.rng).unwrap_or(0.0);
        let acw = ag.acw.sample(&mut ag.rng).unwrap_or(0.0);
        (talk, acw)
    };
    let t = sh.t();
    sh.lock_busy().push((t, talk + acw));
    Some((talk, acw))
}

/// An agent's phone was offered a call presenting `caller_id`: the caller was answered, or
/// (when the engine had dialled this customer back) the callback reached an agent.
pub fn note_agent_call(sh: &Shared, caller_id: &str) {
    let t = sh.t();
    if let Some(i) = caller_of(caller_id) {
        let mut calls = sh.lock_calls();
        if let Some(c) = calls.get_mut(i) {
            if c.dial_attempts > 0 {
                // We called this customer back: this is the callback's conversation.
                c.callback_connected = Some(t);
            } else if c.answered.is_none() {
                // Assigned as it joined the queue: Route Call may not have watched yet.
                c.queued.get_or_insert(t);
                c.answered = Some(t);
            }
        }
    }
}

/// The agent a dial is for, with its index: `Failed` for a target that is not an agent,
/// `Unreachable` for an agent the run does not know.
pub(crate) fn agent_of<'a>(
    sh: &Shared,
    call: &Dial<'a>,
) -> Result<(&'a String, usize), DialResult> {
    let DialTarget::Agent { agent_id } = call.target else {
        return Err(DialResult::Failed);
    };
    let a = sh
        .agent_index
        .get(agent_id)
        .ok_or(DialResult::Unreachable)?;
    Ok((agent_id, *a))
}

/// Rings agents: each answers at once and talks for a handle time drawn from its profile.
pub struct AgentDialer {
    /// Run state.
    pub shared: Arc<Shared>,
}

#[async_trait]
impl Dialer for AgentDialer {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        let sh = &self.shared;
        let (agent_id, a) = agent_of(sh, &call)?;
        let caller_id = call.caller_id;
        let (talk, acw) = draw_talk(sh, a).ok_or(DialResult::NoAnswer)?;
        let now = sh.clock.now();
        let t = sh.t();
        note_agent_call(sh, caller_id);
        Ok(Arc::new(AgentLeg {
            info: LegInfo {
                call_id: format!("agent-{agent_id}-{t}"),
                ani: agent_id.clone(),
                dnis: caller_id.to_string(),
                direction: Direction::Outbound,
            },
            clock: sh.clock.clone(),
            end_at: now + delta(talk),
            acw: delta(acw),
            ended: AtomicBool::new(false),
        }))
    }
}

/// Calls customers back: each attempt answers, is busy or rings out with the scenario's
/// probabilities; an answering customer presses the confirm key.
pub struct CustomerDialer {
    /// Run state.
    pub shared: Arc<Shared>,
}

#[async_trait]
impl Dialer for CustomerDialer {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        let Dial {
            target,
            caller_id,
            ring_timeout: ring,
            ..
        } = call;
        let DialTarget::Customer { number, .. } = target else {
            return Err(DialResult::Failed);
        };
        let sh = &self.shared;
        let idx = caller_of(number);
        let attempt = match idx {
            Some(i) => {
                let mut calls = sh.lock_calls();
                match calls.get_mut(i) {
                    Some(c) => {
                        c.dial_attempts += 1;
                        c.dial_attempts
                    }
                    None => 1,
                }
            }
            None => 1,
        };
        let mut rng = crate::run::rng_for(
            sh.seed ^ 0xC411_BAC5,
            idx.unwrap_or(usize::MAX) as u64 * 64 + attempt as u64,
        );
        let u: f64 = rng.random();
        let p = &sh.callback_answer;
        if u < p.answer {
            let info = LegInfo {
                call_id: format!("cb-{number}-{attempt}"),
                ani: number.clone(),
                dnis: caller_id.to_string(),
                direction: Direction::Outbound,
            };
            // A machine greets at length and presses nothing; with machines in the scenario,
            // a person says a short hello before pressing the confirm key.
            let machine = p.machine > 0.0 && rng.random::<f64>() < p.machine;
            let script = if machine {
                vec![Action::Speak(std::time::Duration::from_secs(6))]
            } else if p.machine > 0.0 {
                vec![
                    Action::Speak(std::time::Duration::from_millis(700)),
                    Action::Press(sh.confirm_digit.clone()),
                ]
            } else {
                vec![Action::Press(sh.confirm_digit.clone())]
            };
            let leg: Arc<dyn CallLeg> = MemoryLeg::timed(info, script, sh.timing.clone());
            Ok(leg)
        } else if u < p.answer + p.busy {
            Err(DialResult::Busy)
        } else {
            sh.clock
                .sleep(TimeDelta::from_std(ring).unwrap_or_default())
                .await;
            Err(DialResult::NoAnswer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_numbers_round_trip_and_are_valid_e164() {
        assert_eq!(ani(42), "+33600000042");
        assert_eq!(caller_of(&ani(12_345_678)), Some(12_345_678));
        assert_eq!(caller_of("+441234"), None);
        assert!(boomerang::rules::number::parse_e164(&ani(7)).is_ok());
    }
}
