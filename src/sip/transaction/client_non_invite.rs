//! Client non-INVITE transaction (RFC 3261 §17.1.2).

use std::time::{Duration, Instant};

use rsip::SipMessage;

use super::timers::{Event, Outbox, Timer, Timers, code_of, earliest};

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
    request: rsip::Request,
    reliable: bool,
    timers: Timers,
    e: Timer,
    f: Timer,
    k: Timer,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction and queues the request for sending.
    pub fn new(now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let mut out = Outbox::default();
        out.send(request.clone());
        ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request,
            reliable,
            timers,
            e: if reliable {
                Timer::default()
            } else {
                Timer::start(now, timers.t1)
            },
            f: Timer::start(now, timers.t64()),
            k: Timer::default(),
            out,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    /// Feeds a response matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Response(resp) = msg else {
            return;
        };
        use ClientNonInviteState::*;
        match (self.state, code_of(&resp)) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.out.emit(Event::Response(resp));
            }
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.e.stop();
                self.f.stop();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.k = Timer::start(now, wait);
                self.out.emit(Event::Response(resp));
            }
            _ => {}
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientNonInviteState::*;
        if matches!(self.state, Trying | Proceeding) && self.e.due(now) {
            self.out.send(self.request.clone());
            let next = if self.state == Trying {
                (self.e.interval * 2).min(self.timers.t2)
            } else {
                self.timers.t2
            };
            self.e = Timer::start(now, next);
        }
        if matches!(self.state, Trying | Proceeding) && self.f.due(now) {
            self.out.emit(Event::TimedOut);
            self.terminate();
        }
        if self.state == Completed && self.k.due(now) {
            self.terminate();
        }
    }

    /// The driver could not send: the transaction fails.
    pub fn handle_transport_error(&mut self) {
        if matches!(
            self.state,
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding
        ) {
            self.out.emit(Event::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        for t in [&mut self.e, &mut self.f, &mut self.k] {
            t.stop();
        }
        self.out.emit(Event::Terminated);
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        self.out.transmits.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[&self.e, &self.f, &self.k])
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }
}
