//! RFC 4028 session timers as an I/O-free state machine: one per call that agreed an interval.
//! The user agent feeds it the time (`handle_timeout(now)`) and what happened to refreshes; it
//! answers with what to send next — a refresh when we are the refresher, a BYE when the session
//! has not been refreshed in time — so a dead peer cannot keep a call (and an agent) forever.

use std::time::{Duration, Instant};

/// Shortest session interval anyone may ask for (RFC 4028 §4, the Min-SE floor).
pub const MIN_SE: u32 = 90;

/// Who keeps the session alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// We send the refreshes.
    Us,
    /// The peer sends them; we only watch.
    Peer,
}

/// Which request carries our refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMethod {
    /// UPDATE without a body (RFC 4028 §7.4 prefers it: no new offer/answer).
    Update,
    /// A re-INVITE with our unchanged SDP, for peers that do not allow UPDATE.
    Invite,
}

/// What the user agent must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Send a refresh with this method and interval (we are the refresher).
    Refresh(RefreshMethod, u32),
    /// The session expired unrefreshed, or a refresh failed for good: send BYE.
    Bye,
}

/// Where the timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The peer refreshes; without one by `bye_at` we end the session.
    Watching { bye_at: Instant },
    /// We refresh at `refresh_at` (half the interval).
    Waiting {
        refresh_at: Instant,
        bye_at: Instant,
    },
    /// Our refresh is out; its answer restarts the interval.
    Refreshing { bye_at: Instant },
    /// BYE decided; nothing more happens.
    Expired,
}

/// One session's timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    interval: u32,
    refresher: Refresher,
    method: RefreshMethod,
    state: State,
}

/// How long before expiry the non-refresher sends BYE: min(32 s, interval/3) (RFC 4028 §10).
pub fn bye_guard(interval: u32) -> Duration {
    Duration::from_secs(u64::from(32.min(interval / 3)))
}

impl SessionTimer {
    /// A timer for an interval agreed at `now` (2xx to the INVITE sent or received).
    pub fn new(now: Instant, interval: u32, refresher: Refresher, method: RefreshMethod) -> Self {
        let mut t = SessionTimer {
            interval,
            refresher,
            method,
            state: State::Expired,
        };
        t.restart(now, interval, refresher);
        t
    }

    /// A refresh succeeded at `now` (ours answered 2xx, or the peer's request accepted): the
    /// interval restarts with what was agreed in it. An expired session stays expired: its BYE
    /// is already on the way.
    pub fn refreshed(&mut self, now: Instant, interval: u32, refresher: Refresher) {
        if self.state != State::Expired {
            self.restart(now, interval, refresher);
        }
    }

    fn restart(&mut self, now: Instant, interval: u32, refresher: Refresher) {
        self.interval = interval.max(1);
        self.refresher = refresher;
        let expires = now + Duration::from_secs(u64::from(self.interval));
        let bye_at = expires - bye_guard(self.interval);
        self.state = match refresher {
            Refresher::Peer => State::Watching { bye_at },
            Refresher::Us => State::Waiting {
                refresh_at: now + Duration::from_secs(u64::from(self.interval / 2)),
                bye_at,
            },
        };
    }

    /// When [`SessionTimer::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Watching { bye_at } | State::Refreshing { bye_at } => Some(bye_at),
            State::Waiting { refresh_at, .. } => Some(refresh_at),
            State::Expired => None,
        }
    }

    /// Fires what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<TimerAction> {
        match self.state {
            State::Waiting { refresh_at, bye_at } if now >= refresh_at => {
                self.state = State::Refreshing { bye_at };
                Some(TimerAction::Refresh(self.method, self.interval))
            }
            State::Watching { bye_at } | State::Refreshing { bye_at } if now >= bye_at => {
                self.state = State::Expired;
                Some(TimerAction::Bye)
            }
            _ => None,
        }
    }

    /// Our refresh got the final status `code` (not 2xx; a 2xx goes to
    /// [`SessionTimer::refreshed`]); `min_se` is a 422's Min-SE.
    pub fn refresh_failed(&mut self, code: u16, min_se: Option<u32>) -> Option<TimerAction> {
        let State::Refreshing { .. } = self.state else {
            return None;
        };
        match code {
            // §10: a refresh that times out or finds no dialog ends the session.
            408 | 481 => {
                self.state = State::Expired;
                Some(TimerAction::Bye)
            }
            // §7.4: a peer that does not know UPDATE is refreshed with re-INVITE.
            405 | 501 if self.method == RefreshMethod::Update => {
                self.method = RefreshMethod::Invite;
                Some(TimerAction::Refresh(self.method, self.interval))
            }
            // §7.3: too short for the peer: retry with its minimum.
            422 => {
                let wanted = min_se.unwrap_or(MIN_SE).max(MIN_SE);
                (wanted > self.interval).then(|| {
                    self.interval = wanted;
                    TimerAction::Refresh(self.method, wanted)
                })
            }
            // Anything else leaves the session as it was; the BYE deadline still stands.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_peer_that_never_refreshes_gets_bye_32_seconds_before_expiry() {
        let t0 = crate::clock::monotonic_now();
        let mut t = SessionTimer::new(t0, 1800, Refresher::Peer, RefreshMethod::Update);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(1800 - 32)));
        assert_eq!(t.handle_timeout(t0 + secs(1767)), None);
        assert_eq!(t.handle_timeout(t0 + secs(1768)), Some(TimerAction::Bye));
        assert!((t.state == State::Expired));
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.handle_timeout(t0 + secs(5000)), None);
    }

    #[test]
    fn a_short_interval_uses_a_third_of_it_as_the_guard() {
        let t0 = crate::clock::monotonic_now();
        let t = SessionTimer::new(t0, 90, Refresher::Peer, RefreshMethod::Update);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(60)));
        assert_eq!(bye_guard(90), secs(30));
        assert_eq!(bye_guard(96), secs(32));
        assert_eq!(bye_guard(300), secs(32));
    }

    #[test]
    fn the_peers_refresh_restarts_the_interval() {
        let t0 = crate::clock::monotonic_now();
        let mut t = SessionTimer::new(t0, 90, Refresher::Peer, RefreshMethod::Update);
        t.refreshed(t0 + secs(45), 120, Refresher::Peer);
        assert_eq!(t.handle_timeout(t0 + secs(60)), None);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(45 + 120 - 32)));
        // The peer hands refreshing over to us.
        t.refreshed(t0 + secs(100), 120, Refresher::Us);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(160)));
    }

    #[test]
    fn we_refresh_at_half_the_interval_and_again_after_each_answer() {
        let t0 = crate::clock::monotonic_now();
        let mut t = SessionTimer::new(t0, 90, Refresher::Us, RefreshMethod::Update);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(45)));
        assert_eq!(t.handle_timeout(t0 + secs(44)), None);
        assert_eq!(
            t.handle_timeout(t0 + secs(45)),
            Some(TimerAction::Refresh(RefreshMethod::Update, 90))
        );
        // Waiting for the answer: the BYE deadline of the old interval applies.
        assert_eq!(t.poll_timeout(), Some(t0 + secs(60)));
        t.refreshed(t0 + secs(46), 90, Refresher::Us);
        assert_eq!(t.poll_timeout(), Some(t0 + secs(46 + 45)));
    }

    #[test]
    fn an_unanswered_refresh_ends_the_session_at_the_deadline() {
        let t0 = crate::clock::monotonic_now();
        let mut t = SessionTimer::new(t0, 90, Refresher::Us, RefreshMethod::Update);
        t.handle_timeout(t0 + secs(45));
        assert_eq!(t.handle_timeout(t0 + secs(59)), None);
        assert_eq!(t.handle_timeout(t0 + secs(60)), Some(TimerAction::Bye));
    }

    #[test]
    fn refresh_failures_follow_rfc_4028() {
        let t0 = crate::clock::monotonic_now();
        let mut t = SessionTimer::new(t0, 90, Refresher::Us, RefreshMethod::Update);
        t.handle_timeout(t0 + secs(45));
        // UPDATE unknown to the peer: re-INVITE instead.
        assert_eq!(
            t.refresh_failed(501, None),
            Some(TimerAction::Refresh(RefreshMethod::Invite, 90))
        );
        // Too small for the peer: its Min-SE.
        assert_eq!(
            t.refresh_failed(422, Some(300)),
            Some(TimerAction::Refresh(RefreshMethod::Invite, 300))
        );
        // A 422 that asks for nothing larger does not loop.
        assert_eq!(t.refresh_failed(422, Some(120)), None);
        // A server error leaves the deadline in place.
        assert_eq!(t.refresh_failed(500, None), None);
        assert_eq!(t.refresh_failed(481, None), Some(TimerAction::Bye));
        assert!((t.state == State::Expired));
        // Nothing revives an expired session.
        t.refreshed(t0 + secs(50), 90, Refresher::Us);
        assert!((t.state == State::Expired));
        // Failures outside a refresh are ignored.
        let mut idle = SessionTimer::new(t0, 90, Refresher::Peer, RefreshMethod::Update);
        assert_eq!(idle.refresh_failed(408, None), None);
    }
}
