//! Server INVITE transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).

use std::time::Instant;

use rsip::SipMessage;

use super::super::message;
use super::timers::{
    Core, Event, Timer, Timers, TransactionError, code_of, machine_common, server_common,
};

/// States of a server INVITE transaction (Figure 7 as amended by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE received, 100 Trying sent; the TU may send provisionals.
    Proceeding,
    /// A 300-699 was sent; Timer G retransmits it until ACK or Timer H.
    Completed,
    /// The ACK arrived; Timer I absorbs further ACKs.
    Confirmed,
    /// A 2xx was sent; the TU retransmits it (see [`TwoXxRetransmitter`]) until Timer L.
    Accepted,
    /// Over.
    Terminated,
}

/// Server INVITE transaction: answers retransmitted INVITEs, retransmits non-2xx finals.
#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    core: Core,
    last_response: Option<rsip::Response>,
    g: Timer,
    h: Timer,
    i: Timer,
    l: Timer,
}

impl ServerInvite {
    /// Starts the transaction for a received INVITE and queues a 100 Trying at once.
    pub fn new(_now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let trying = message::response_for(&request, 100, "Trying");
        let mut core = Core::new(request, reliable, timers);
        core.out.send(trying.clone());
        ServerInvite {
            state: ServerInviteState::Proceeding,
            core,
            last_response: Some(trying),
            g: Timer::default(),
            h: Timer::default(),
            i: Timer::default(),
            l: Timer::default(),
        }
    }

    machine_common!(ServerInviteState, retransmit: [g], time_out: [h], end: [i, l]);

    /// Feeds a retransmitted INVITE or an ACK matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Request(req) = msg else {
            return;
        };
        use ServerInviteState::*;
        match (self.state, req.method == rsip::Method::Ack) {
            (Proceeding | Completed, false) => self.core.out.resend(self.last_response.as_ref()),
            (Completed, true) => {
                self.state = Confirmed;
                self.g.stop();
                self.h.stop();
                self.i = Timer::absorb(now, self.core.reliable, self.core.timers.t4);
                self.core.out.emit(Event::AckReceived);
            }
            // RFC 6026 §7.1: an ACK for the 2xx that reaches us here goes to the TU.
            (Accepted, true) => self.core.out.emit(Event::AckReceived),
            // Retransmitted INVITEs in Accepted and ACKs in Confirmed are absorbed.
            _ => {}
        }
    }

    server_common!();

    /// Moves for a TU response: 2xx to Accepted (the TU retransmits them), 300-699 to
    /// Completed; provisionals and non-2xx finals are what retransmitted INVITEs get again.
    fn respond(&mut self, now: Instant, code: u16) -> Result<bool, &'static str> {
        use ServerInviteState::*;
        match (self.state, code) {
            (Proceeding, 101..=199) => Ok(true),
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.l = Timer::start(now, self.core.timers.t64());
                Ok(false)
            }
            (Accepted, 200..=299) => Ok(false),
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.g = Timer::retransmit(now, self.core.reliable, self.core.timers.t1);
                self.h = Timer::start(now, self.core.timers.t64());
                Ok(true)
            }
            (state, _) => Err(server_invite_name(state)),
        }
    }

    /// Timer G fired (Completed, unreliable transport): the final goes again, G doubles up
    /// to T2.
    fn retransmit(&mut self, now: Instant) {
        self.core.out.resend(self.last_response.as_ref());
        self.g.back_off(now, self.core.timers.t2);
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self) {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => self.fail(),
            // RFC 6026: in Accepted the TU is told, the transaction lives on until Timer L.
            ServerInviteState::Accepted => self.core.out.emit(Event::TransportError),
            _ => {}
        }
    }
}

fn server_invite_name(s: ServerInviteState) -> &'static str {
    match s {
        ServerInviteState::Proceeding => "Proceeding",
        ServerInviteState::Completed => "Completed",
        ServerInviteState::Confirmed => "Confirmed",
        ServerInviteState::Accepted => "Accepted",
        ServerInviteState::Terminated => "Terminated",
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn server_invite_retransmits_4xx_until_ack_then_absorbs_acks_during_timer_i() {
        let (t0, inv, mut t) = start(ServerInvite::new, invite(), false);
        assert!(
            matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 100)
        );
        // A retransmitted INVITE in Proceeding gets the last provisional again.
        t.handle_message(t0 + ms(500), inv.clone().into());
        assert!(
            matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 100)
        );
        t.send_response(t0 + ms(1000), resp(&inv, 486)).unwrap();
        assert_eq!(t.state(), ServerInviteState::Completed);
        assert!(t.poll_transmit().is_some());
        let sent = run_until!(t, t0 + ms(1000), ms(10_000));
        assert_eq!(sent, vec![500, 1500, 3500, 7500]);
        t.handle_message(t0 + ms(11_100), ack_of(&inv).into());
        assert_eq!(t.state(), ServerInviteState::Confirmed);
        assert_eq!(t.poll_event(), Some(Event::AckReceived));
        t.handle_message(t0 + ms(11_200), ack_of(&inv).into());
        t.handle_message(t0 + ms(11_300), inv.clone().into());
        assert_eq!(
            t.poll_transmit(),
            None,
            "Confirmed absorbs ACKs and INVITEs"
        );
        assert_eq!(t.poll_event(), None);
        assert_ends_at!(t, t0 + ms(11_100 + 5000));
    }

    #[test]
    fn server_invite_gives_up_with_timer_h_when_no_ack() {
        let (t0, inv, mut t) = start(ServerInvite::new, invite(), false);
        t.send_response(t0, resp(&inv, 404)).unwrap();
        assert_eq!(drain(&mut || t.poll_transmit()).len(), 2, "100 and 404");
        let sent = run_until!(t, t0, Duration::from_secs(40));
        // G: 0.5, 1.5, 3.5, 7.5 then every T2 until H at 32 s.
        assert_eq!(sent, BACKED_OFF_TO_T2);
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn server_invite_2xx_goes_to_accepted_and_absorbs_invite_retransmissions() {
        let (t0, inv, mut t) = start(ServerInvite::new, invite(), true);
        t.poll_transmit();
        t.send_response(t0 + ms(10), resp(&inv, 180)).unwrap();
        t.send_response(t0 + ms(20), resp(&inv, 200)).unwrap();
        assert_eq!(t.state(), ServerInviteState::Accepted);
        assert_eq!(drain(&mut || t.poll_transmit()).len(), 2);
        t.handle_message(t0 + ms(30), inv.clone().into());
        assert_eq!(t.poll_transmit(), None);
        // The TU's own 2xx retransmissions pass through.
        t.send_response(t0 + ms(520), resp(&inv, 200)).unwrap();
        assert!(t.poll_transmit().is_some());
        assert!(t.send_response(t0 + ms(530), resp(&inv, 486)).is_err());
        t.handle_message(t0 + ms(600), ack_of(&inv).into());
        assert_eq!(t.poll_event(), Some(Event::AckReceived));
        assert_ends_at!(t, t0 + ms(20) + Timers::default().t64());
    }

    #[test]
    fn server_invite_over_tcp_sends_the_final_once_and_timer_i_is_zero() {
        let (t0, inv, mut t) = start(ServerInvite::new, invite(), true);
        t.poll_transmit();
        t.send_response(t0, resp(&inv, 603)).unwrap();
        t.poll_transmit();
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Timers::default().t64()),
            "H only"
        );
        t.handle_message(t0 + ms(50), ack_of(&inv).into());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(50)));
        t.handle_timeout(t0 + ms(50));
        assert_eq!(t.state(), ServerInviteState::Terminated);
    }
}
