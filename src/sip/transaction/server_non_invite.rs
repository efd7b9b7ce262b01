//! Server non-INVITE transaction (RFC 3261 §17.2.2).

use std::time::Instant;

use rsip::SipMessage;

use super::timers::{
    Core, Event, Timer, Timers, TransactionError, code_of, machine_common, server_common,
};

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
    core: Core,
    last_response: Option<rsip::Response>,
    j: Timer,
}

impl ServerNonInvite {
    /// Starts the transaction for a received request.
    pub fn new(_now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            core: Core::new(request, reliable, timers),
            last_response: None,
            j: Timer::default(),
        }
    }

    machine_common!(ServerNonInviteState, retransmit: [], time_out: [], end: [j]);

    /// Feeds a retransmitted request: answered with the last response, if any.
    pub fn handle_message(&mut self, _now: Instant, msg: SipMessage) {
        if !msg.is_request() {
            return;
        }
        if matches!(
            self.state,
            ServerNonInviteState::Proceeding | ServerNonInviteState::Completed
        ) {
            self.core.out.resend(self.last_response.as_ref());
        }
    }

    server_common!();

    /// Moves for a TU response; every response is what retransmitted requests get again.
    fn respond(&mut self, now: Instant, code: u16) -> Result<bool, &'static str> {
        use ServerNonInviteState::*;
        match (self.state, code) {
            (Trying | Proceeding, 100..=199) => self.state = Proceeding,
            (Trying | Proceeding, 200..=699) => {
                self.state = Completed;
                self.j = Timer::absorb(now, self.core.reliable, self.core.timers.t64());
            }
            (Completed, _) => return Err("Completed"),
            _ => return Err("Terminated"),
        }
        Ok(true)
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn server_non_invite_resends_last_response_on_retransmission_until_timer_j() {
        let (t0, reg, mut t) = start(ServerNonInvite::new, register(), false);
        t.handle_message(t0 + ms(500), reg.clone().into());
        assert!(t.poll_transmit().is_none(), "Trying absorbs");
        t.send_response(t0 + ms(600), resp(&reg, 200)).unwrap();
        assert!(t.poll_transmit().is_some());
        t.handle_message(t0 + ms(1500), reg.clone().into());
        assert!(
            matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 200)
        );
        assert!(t.send_response(t0 + ms(1600), resp(&reg, 500)).is_err());
        assert_ends_at!(t, t0 + ms(600) + Timers::default().t64());
        assert_eq!(t.state(), ServerNonInviteState::Terminated);
    }
}
