//! Server non-INVITE transaction (RFC 3261 §17.2.2).

use std::time::{Duration, Instant};

use rsip::SipMessage;

use super::timers::{Event, Outbox, Timer, Timers, TransactionError, code_of};

/// States of a server non-INVITE transaction (Figure 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding,
    /// A final was sent; retransmissions get it again until Timer J.
    Completed,
    /// Over.
    Terminated,
}

/// Server non-INVITE transaction.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    request: rsip::Request,
    reliable: bool,
    timers: Timers,
    last_response: Option<rsip::Response>,
    j: Timer,
    out: Outbox,
}

impl ServerNonInvite {
    /// Starts the transaction for a received request.
    pub fn new(_now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            request,
            reliable,
            timers,
            last_response: None,
            j: Timer::default(),
            out: Outbox::default(),
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The request this transaction answers.
    pub fn request(&self) -> &rsip::Request {
        &self.request
    }

    /// Feeds a retransmitted request: answered with the last response, if any.
    pub fn handle_message(&mut self, _now: Instant, msg: SipMessage) {
        if !msg.is_request() {
            return;
        }
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) && let Some(r) = &self.last_response
        {
            self.out.send(r.clone());
        }
    }

    /// Sends a response from the TU.
    pub fn send_response(
        &mut self,
        now: Instant,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        use ServerNonInviteState::*;
        let code = code_of(&resp);
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => self.state = Proceeding,
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t64()
                };
                self.j = Timer::start(now, wait);
            }
            (state, code) => {
                return Err(TransactionError::InvalidResponse {
                    code,
                    state: match state {
                        Completed => "Completed",
                        _ => "Terminated",
                    },
                });
            }
        }
        self.last_response = Some(resp.clone());
        self.out.send(resp);
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ServerNonInviteState::Completed && self.j.due(now) {
            self.terminate();
        }
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.out.emit(Event::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.j.stop();
        self.out.emit(Event::Terminated);
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        self.out.transmits.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.j.at
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }
}
