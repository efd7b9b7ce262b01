//! Client INVITE transaction (RFC 3261 §17.1.1, RFC 6026 §7.2) and the ACK it sends for a
//! non-2xx final.

use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};

use super::super::message::cseq;
use super::timers::{Core, Event, Timer, Timers, code_of, machine_common};

/// States of a client INVITE transaction (Figure 5 of RFC 3261 as amended by RFC 6026).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard; Timer A retransmits.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300-699 arrived and was ACKed; Timer D absorbs retransmissions.
    Completed,
    /// A 2xx arrived; further 2xx go to the TU until Timer M.
    Accepted,
    /// Over.
    Terminated,
}

/// Client INVITE transaction: retransmits the INVITE, ACKs non-2xx finals itself.
#[derive(Debug)]
pub struct ClientInvite {
    state: ClientInviteState,
    core: Core,
    a: Timer,
    b: Timer,
    d: Timer,
    m: Timer,
    ack: Option<rsip::Request>,
}

impl ClientInvite {
    /// Starts the transaction and queues the INVITE for sending.
    pub fn new(now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let mut core = Core::new(request, reliable, timers);
        core.out.send(core.request.clone());
        ClientInvite {
            state: ClientInviteState::Calling,
            core,
            a: Timer::retransmit(now, reliable, timers.t1),
            b: Timer::start(now, timers.t64()),
            d: Timer::default(),
            m: Timer::default(),
            ack: None,
        }
    }

    machine_common!(ClientInviteState, retransmit: [a], time_out: [b], end: [d, m]);

    /// Feeds a response matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Response(resp) = msg else {
            return;
        };
        let code = code_of(&resp);
        use ClientInviteState::*;
        match (self.state, code) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                self.a.stop();
                self.b.stop();
                self.core.out.emit(Event::Response(resp));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.a.stop();
                self.b.stop();
                self.m = Timer::start(now, self.core.timers.t64());
                self.core.out.emit(Event::Response(resp));
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                self.a.stop();
                self.b.stop();
                let ack = ack_for(&self.core.request, &resp);
                self.core.out.send(ack.clone());
                self.ack = Some(ack);
                let wait = Duration::from_secs(32).max(self.core.timers.t64());
                self.d = Timer::absorb(now, self.core.reliable, wait);
                self.core.out.emit(Event::Response(resp));
            }
            (Completed, 300..=699) => self.core.out.resend(self.ack.as_ref()),
            (Accepted, 200..=299) => self.core.out.emit(Event::Response(resp)),
            _ => {}
        }
    }

    /// Timer A fired (Calling, unreliable transport): the INVITE goes again, A doubles.
    fn retransmit(&mut self, now: Instant) {
        self.core.out.send(self.core.request.clone());
        self.a.back_off(now, Duration::MAX);
    }

    /// The driver could not send: the transaction fails (RFC 3261 §17.1.4).
    pub fn handle_transport_error(&mut self) {
        use ClientInviteState::*;
        if matches!(self.state, Calling | Proceeding) {
            self.fail();
        }
    }
}

/// Builds the ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
pub fn ack_for(invite: &rsip::Request, resp: &rsip::Response) -> rsip::Request {
    let mut headers = rsip::Headers::default();
    if let Some(via) = invite
        .headers()
        .iter()
        .find(|h| matches!(h, Header::Via(_)))
    {
        headers.push(via.clone());
    }
    for h in invite.headers().iter() {
        match h {
            Header::From(_) | Header::CallId(_) | Header::Route(_) => headers.push(h.clone()),
            _ => {}
        }
    }
    match resp.headers().iter().find(|h| matches!(h, Header::To(_))) {
        Some(to) => headers.push(to.clone()),
        None => {
            if let Some(to) = invite.headers().iter().find(|h| matches!(h, Header::To(_))) {
                headers.push(to.clone());
            }
        }
    }
    let seq = cseq(invite).map(|(n, _)| n).unwrap_or(1);
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{seq} ACK"))));
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        "0",
    )));
    rsip::Request {
        method: rsip::Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn client_invite_over_udp_backs_off_and_times_out_at_64_t1() {
        let (t0, _, mut t) = start(ClientInvite::new, invite(), false);
        assert!(matches!(t.poll_transmit(), Some(SipMessage::Request(_))));
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
        assert_eq!(t.state(), ClientInviteState::Terminated);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn client_invite_over_tcp_never_retransmits() {
        let (t0, _, mut t) = start(ClientInvite::new, invite(), true);
        assert!(t.poll_transmit().is_some());
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert!(sent.is_empty());
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
    }

    #[test]
    fn client_invite_acks_non_2xx_and_absorbs_retransmissions_during_timer_d() {
        let (t0, inv, mut t) = start(ClientInvite::new, invite(), false);
        t.poll_transmit();
        t.handle_message(t0 + ms(100), resp(&inv, 180).into());
        assert_eq!(t.state(), ClientInviteState::Proceeding);
        assert!(matches!(t.poll_event(), Some(Event::Response(r)) if r.status_code.code() == 180));
        // Provisional stops Timer A.
        assert!(run_until!(t, t0, ms(5000)).is_empty());
        t.handle_message(t0 + ms(6000), resp(&inv, 486).into());
        assert_eq!(t.state(), ClientInviteState::Completed);
        let Some(SipMessage::Request(ack)) = t.poll_transmit() else {
            panic!("ACK expected")
        };
        assert_eq!(ack.method, rsip::Method::Ack);
        assert_eq!(ack.uri, inv.uri);
        assert_eq!(cseq(&ack), Some((314159, "ACK".into())));
        assert_eq!(message::branch(&ack), message::branch(&inv));
        assert_eq!(
            tag_of(&header_value(&ack, "To").unwrap()).as_deref(),
            Some("totag")
        );
        assert_eq!(
            header_value(&ack, "Route").as_deref(),
            Some("<sip:p1.example.com;lr>")
        );
        assert!(matches!(t.poll_event(), Some(Event::Response(r)) if r.status_code.code() == 486));
        // A retransmitted 486 gets the same ACK again, and no new event.
        t.handle_message(t0 + ms(6500), resp(&inv, 486).into());
        assert!(matches!(t.poll_transmit(), Some(SipMessage::Request(a)) if a == ack));
        assert_eq!(t.poll_event(), None);
        assert_ends_at!(t, t0 + ms(6000 + 32_000));
    }

    #[test]
    fn client_invite_passes_every_2xx_in_accepted_until_timer_m() {
        let (t0, inv, mut t) = start(ClientInvite::new, invite(), false);
        t.handle_message(t0 + ms(200), resp(&inv, 200).into());
        assert_eq!(t.state(), ClientInviteState::Accepted);
        t.handle_message(t0 + ms(700), resp(&inv, 200).into());
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.len(), 2, "both 2xx go to the TU, which ACKs them");
        assert_eq!(drain(&mut || t.poll_transmit()).len(), 1, "no ACK from us");
        assert_ends_at!(t, t0 + ms(200) + Timers::default().t64());
    }
}
