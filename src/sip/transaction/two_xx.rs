//! 2xx retransmission by the UAS core (RFC 3261 §13.3.1.4).

use std::time::Instant;

use rsip::SipMessage;

use super::timers::{Event, Outbox, Timer, Timers, earliest};

/// Retransmits a 2xx to INVITE from the TU until the ACK arrives, even over TCP, since the
/// 2xx crosses proxies end to end; gives up after 64*T1 (the TU should then send BYE).
#[derive(Debug)]
pub struct TwoXxRetransmitter {
    response: rsip::Response,
    timers: Timers,
    retransmit: Timer,
    give_up: Timer,
    out: Outbox,
    done: bool,
}

impl TwoXxRetransmitter {
    /// Starts retransmitting `response`, which the caller has already sent once.
    pub fn new(now: Instant, response: rsip::Response, timers: Timers) -> Self {
        TwoXxRetransmitter {
            response,
            timers,
            retransmit: Timer::start(now, timers.t1),
            give_up: Timer::start(now, timers.t64()),
            out: Outbox::default(),
            done: false,
        }
    }

    /// The ACK arrived: stop.
    pub fn ack_received(&mut self) {
        self.stop();
    }

    /// True once ACKed or given up.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn stop(&mut self) {
        self.done = true;
        self.retransmit.stop();
        self.give_up.stop();
    }

    /// Fires the retransmit and give-up timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.give_up.due(now) {
            self.stop();
            self.out.emit(Event::TimedOut);
            return;
        }
        if self.retransmit.due(now) {
            self.out.send(self.response.clone());
            self.retransmit.back_off(now, self.timers.t2);
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        self.out.next_transmit()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[&self.retransmit, &self.give_up])
    }

    /// `TimedOut` when no ACK came within 64*T1.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.next_event()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn two_xx_retransmitter_doubles_to_t2_and_stops_on_ack_or_gives_up() {
        let t0 = crate::clock::monotonic_now();
        let inv = invite();
        let mut r = TwoXxRetransmitter::new(t0, resp(&inv, 200), Timers::default());
        let sent = run_until!(r, t0, ms(12_000));
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 11500]);
        r.ack_received();
        assert!(r.is_done());
        assert_eq!(r.poll_timeout(), None);

        let mut r = TwoXxRetransmitter::new(t0, resp(&inv, 200), Timers::default());
        run_until!(r, t0, Duration::from_secs(40));
        assert_eq!(r.poll_event(), Some(Event::TimedOut));
        assert!(r.is_done());
    }
}
