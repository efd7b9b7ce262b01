//! The engine's side of a simulated SIP call: a `CallLeg` on the real user agent's signalling
//! (answer, BYE, rejection, key presses from SIP INFO, the hang-up signal) with prompts taking
//! the scenario's virtual lengths instead of RTP. It is what `SipLeg` is without its media
//! session, so flows, the router and the dialler run unchanged on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::call::memory::Timing;
use boomerang::call::{
    BridgeEnd, CallError, CallLeg, DigitOutcome, DigitSpec, Direction, HangupCause, LegInfo,
    PlayItem, PlayOptions, PlayOutcome,
};
use boomerang::sip::ua::{LegShared, UaHandle};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::run::Shared;

/// What a leg does when the engine hangs it up.
pub enum Ending {
    /// An inbound caller's leg: its first hang-up watch marks when it joined a queue.
    Caller {
        /// The caller's index.
        idx: Option<usize>,
        /// Told once the call is queued (the caller hears the queue and starts its patience).
        queued: Arc<Notify>,
    },
    /// An agent's leg: after a conversation that ran to `end_at`, the agent wraps up for `acw`
    /// before the hang-up returns (the engine makes the agent ready only then).
    Agent {
        /// When the agent's talk ends.
        end_at: DateTime<Utc>,
        /// Wrap-up.
        acw: chrono::TimeDelta,
    },
}

/// A leg of a call through the in-process user agent.
pub struct SignalLeg {
    info: LegInfo,
    ua: UaHandle,
    shared: Arc<LegShared>,
    sh: Arc<Shared>,
    timing: Timing,
    answered: AtomicBool,
    answer_sdp: String,
    stop: Notify,
    watched: AtomicBool,
    ending: Ending,
}

impl SignalLeg {
    /// A leg for the call the user agent knows as `info.call_id`.
    pub fn new(
        info: LegInfo,
        ua: UaHandle,
        shared: Arc<LegShared>,
        sh: Arc<Shared>,
        answer_sdp: String,
        ending: Ending,
    ) -> Arc<Self> {
        let answered = info.direction == Direction::Outbound;
        Arc::new(SignalLeg {
            info,
            ua,
            shared,
            timing: sh.timing.clone(),
            sh,
            answered: AtomicBool::new(answered),
            answer_sdp,
            stop: Notify::new(),
            watched: AtomicBool::new(false),
            ending,
        })
    }

    /// How long `items` take to play.
    fn length(&self, items: &[PlayItem]) -> Duration {
        items
            .iter()
            .map(|i| match i {
                PlayItem::Prompt(p) => self
                    .timing
                    .prompt_lengths
                    .get(p)
                    .copied()
                    .unwrap_or(self.timing.default_prompt),
                PlayItem::Digits(d) => Duration::from_millis(500) * d.len() as u32,
                PlayItem::Silence(d) => *d,
            })
            .sum()
    }

    async fn wait_digit(&self, timeout: Duration) -> Option<char> {
        let until = self.sh.clock.now() + chrono::TimeDelta::from_std(timeout).unwrap_or_default();
        loop {
            let n = self.shared.digits.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if let Some(d) = self.shared.digits.pop() {
                return Some(d);
            }
            if self.is_ended() {
                return None;
            }
            tokio::select! {
                _ = n => {}
                _ = self.sh.clock.sleep_until(until) => return self.shared.digits.pop(),
                _ = self.ended() => return None,
            }
        }
    }

    async fn ended(&self) {
        let mut rx = self.shared.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }
}

#[async_trait]
impl CallLeg for SignalLeg {
    fn info(&self) -> &LegInfo {
        &self.info
    }

    async fn answer(&self) -> Result<(), CallError> {
        self.ua
            .answer_once(&self.info.call_id, &self.answer_sdp, &self.answered)
            .await
    }

    async fn play(&self, items: &[PlayItem], opts: &PlayOptions) -> Result<PlayOutcome, CallError> {
        if self.is_ended() {
            return Ok(PlayOutcome::HungUp);
        }
        self.answer().await?;
        let length = self.length(items);
        let until = self.sh.clock.now() + chrono::TimeDelta::from_std(length).unwrap_or_default();
        let digits = &self.shared.digits;
        loop {
            let n = digits.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if opts.barge_in
                && let Some(k) = digits.peek()
            {
                return Ok(PlayOutcome::Interrupted(k));
            }
            let done = async {
                if opts.looped {
                    std::future::pending::<()>().await
                } else {
                    self.sh.clock.sleep_until(until).await
                }
            };
            tokio::select! {
                _ = done => return Ok(PlayOutcome::Completed),
                _ = self.stop.notified() => return Ok(PlayOutcome::Completed),
                _ = self.ended() => return Ok(PlayOutcome::HungUp),
                _ = n, if opts.barge_in => {}
            }
        }
    }

    fn stop_playing(&self) {
        self.stop.notify_waiters();
    }

    async fn collect_digits(&self, spec: &DigitSpec) -> Result<DigitOutcome, CallError> {
        if self.is_ended() {
            return Ok(DigitOutcome::HungUp);
        }
        self.answer().await?;
        Ok(boomerang::call::collect_keys(spec, || self.is_ended(), |t| self.wait_digit(t)).await)
    }

    fn flush_digits(&self) {
        self.shared.digits.clear();
    }

    async fn send_digits(&self, _digits: &str) -> Result<(), CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        Ok(())
    }

    async fn bridge(&self, other: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        self.answer().await?;
        Ok(tokio::select! {
            _ = self.hung_up() => BridgeEnd::ThisSide,
            _ = other.hung_up() => BridgeEnd::OtherSide,
        })
    }

    async fn hang_up(&self, cause: HangupCause) -> Result<(), CallError> {
        let was_ended = self.is_ended();
        if !was_ended {
            if self.answered.load(Ordering::Acquire) {
                self.ua.hang_up(&self.info.call_id);
            } else {
                let (code, reason) = match cause {
                    HangupCause::Busy => (486, "Busy Here"),
                    HangupCause::NotFound => (404, "Not Found"),
                    HangupCause::Unavailable | HangupCause::Normal => {
                        (480, "Temporarily Unavailable")
                    }
                };
                self.ua.reject(&self.info.call_id, code, reason);
            }
            self.shared.end();
        }
        if let Ending::Agent { end_at, acw } = &self.ending
            && !self.watched.swap(true, Ordering::Relaxed)
            && self.sh.clock.now() >= *end_at
            && *acw > chrono::TimeDelta::zero()
        {
            self.sh.clock.sleep(*acw).await;
        }
        Ok(())
    }

    async fn hung_up(&self) {
        if let Ending::Caller { idx, queued } = &self.ending
            && !self.watched.swap(true, Ordering::Relaxed)
        {
            // Route Call watches for a hang-up right after queueing the call.
            let t = self.sh.t();
            if let Some(i) = idx
                && let Some(c) = self.sh.lock_calls().get_mut(*i)
            {
                c.queued.get_or_insert(t);
            }
            queued.notify_one();
        }
        self.ended().await
    }

    fn is_ended(&self) -> bool {
        *self.shared.ended.borrow()
    }
}
