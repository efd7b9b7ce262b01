//! Client non-INVITE transaction (RFC 3261 §17.1.2).

use std::time::Instant;

use rsip::SipMessage;

use super::timers::{Core, Event, Timer, Timers, code_of, machine_common};

/// States of a client non-INVITE transaction (Figure 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent; Timer E retransmits with back-off up to T2.
    Trying,
    /// A provisional arrived; Timer E retransmits every T2.
    Proceeding,
    /// A final arrived; Timer K absorbs retransmitted responses.
    Completed,
    /// Over.
    Terminated,
}

/// Client non-INVITE transaction (REGISTER, BYE, OPTIONS, INFO, CANCEL…).
#[derive(Debug)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    core: Core,
    e: Timer,
    f: Timer,
    k: Timer,
}

impl ClientNonInvite {
    /// Starts the transaction and queues the request for sending.
    pub fn new(now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let mut core = Core::new(request, reliable, timers);
        core.out.send(core.request.clone());
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            core,
            e: Timer::retransmit(now, reliable, timers.t1),
            f: Timer::start(now, timers.t64()),
            k: Timer::default(),
        }
    }

    machine_common!(ClientNonInviteState, retransmit: [e], time_out: [f], end: [k]);

    /// Feeds a response matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Response(resp) = msg else {
            return;
        };
        use ClientNonInviteState::*;
        match (self.state, code_of(&resp)) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.core.out.emit(Event::Response(resp));
            }
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.e.stop();
                self.f.stop();
                self.k = Timer::absorb(now, self.core.reliable, self.core.timers.t4);
                self.core.out.emit(Event::Response(resp));
            }
            _ => {}
        }
    }

    /// Timer E fired (Trying or Proceeding, unreliable transport): the request goes again;
    /// E doubles up to T2 while Trying, and is T2 once Proceeding.
    fn retransmit(&mut self, now: Instant) {
        self.core.out.send(self.core.request.clone());
        if self.state == ClientNonInviteState::Trying {
            self.e.back_off(now, self.core.timers.t2);
        } else {
            self.e = Timer::start(now, self.core.timers.t2);
        }
    }

    /// The driver could not send: the transaction fails.
    pub fn handle_transport_error(&mut self) {
        use ClientNonInviteState::*;
        if matches!(self.state, Trying | Proceeding) {
            self.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn timer_values_are_configurable() {
        let t0 = crate::clock::monotonic_now();
        let timers = Timers {
            t1: ms(100),
            t2: ms(300),
            t4: ms(1000),
        };
        let mut t = ClientNonInvite::new(t0, register(), false, timers);
        t.poll_transmit();
        let sent = run_until!(t, t0, Duration::from_secs(10));
        assert_eq!(sent[..5], [100, 300, 600, 900, 1200]);
        assert_eq!(t.poll_event(), Some(Event::TimedOut), "F = 64 * 100 ms");
        assert!(sent.iter().all(|at| *at < 6400));
    }

    #[test]
    fn client_non_invite_caps_retransmits_at_t2_and_times_out_with_timer_f() {
        let (t0, _, mut t) = start(ClientNonInvite::new, register(), false);
        t.poll_transmit();
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert_eq!(sent, BACKED_OFF_TO_T2);
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn client_non_invite_retransmits_every_t2_when_proceeding_then_waits_timer_k() {
        let (t0, reg, mut t) = start(ClientNonInvite::new, register(), false);
        t.poll_transmit();
        t.handle_message(t0 + ms(100), resp(&reg, 100).into());
        assert_eq!(t.state(), ClientNonInviteState::Proceeding);
        // Timer E was set for 500 ms; after it fires the interval is T2.
        let sent = run_until!(t, t0, ms(9000));
        assert_eq!(sent, vec![500, 4500, 8500]);
        t.handle_message(t0 + ms(9000), resp(&reg, 200).into());
        assert_eq!(t.state(), ClientNonInviteState::Completed);
        t.handle_message(t0 + ms(9100), resp(&reg, 200).into());
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.len(), 2, "100 and the first 200 only");
        assert_ends_at!(t, t0 + ms(9000 + 5000));
    }

    #[test]
    fn client_non_invite_over_tcp_terminates_at_once_after_final() {
        let (t0, reg, mut t) = start(ClientNonInvite::new, register(), true);
        t.handle_message(t0 + ms(10), resp(&reg, 200).into());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(10)));
        t.handle_timeout(t0 + ms(10));
        assert_eq!(t.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn transport_errors_fail_the_transaction() {
        let (_, _, mut t) = start(ClientNonInvite::new, register(), false);
        t.handle_transport_error();
        assert_eq!(t.poll_event(), Some(Event::TransportError));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }
}
