//! Client non-INVITE transaction (RFC 3261 §17.1.2).

use std::time::Instant;

use rsip::SipMessage;

use super::timers::{Event, Outbox, Timer, Timers, code_of, machine_common};

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
            e: Timer::retransmit(now, reliable, timers.t1),
            f: Timer::start(now, timers.t64()),
            k: Timer::default(),
            out,
        }
    }

    machine_common!(ClientNonInviteState, [e, f, k]);

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
                self.k = Timer::absorb(now, self.reliable, self.timers.t4);
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
            if self.state == Trying {
                self.e.back_off(now, self.timers.t2);
            } else {
                self.e = Timer::start(now, self.timers.t2);
            }
        }
        if matches!(self.state, Trying | Proceeding) && self.f.due(now) {
            self.time_out();
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
            self.fail();
        }
    }
}
