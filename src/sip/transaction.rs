//! RFC 3261 §17 transactions (with the RFC 6026 Accepted states) as sans-I/O state machines.
//!
//! Each machine is fed messages and the time (`handle_message`, `handle_timeout`) and asked
//! what to do (`poll_transmit`, `poll_timeout`, `poll_event`). A driver owns sockets and
//! sleeps; tests and the simulator drive the same code in virtual time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};
use thiserror::Error;

use super::message::{self, cseq, header_value, is_rfc3261_branch, tag_of, vias};

/// RFC 3261 timer base values; configurable so tests and odd networks can change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H, J, L and M.
    pub fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// What a transaction tells its transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A response for the TU (client transactions; 2xx retransmissions included in Accepted).
    Response(rsip::Response),
    /// An ACK arrived for our final response (server INVITE).
    AckReceived,
    /// Timer B, F or H fired: the peer never answered (or never ACKed).
    TimedOut,
    /// The driver reported that sending failed.
    TransportError,
    /// The transaction is over and may be dropped.
    Terminated,
}

/// Misuse of a transaction by its TU.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransactionError {
    /// The TU sent a response the current state does not allow.
    #[error("cannot send a {code} response in state {state}")]
    InvalidResponse {
        /// The status code the TU tried to send.
        code: u16,
        /// The state the transaction was in.
        state: &'static str,
    },
    /// The request lacks what a transaction needs (Via branch, CSeq).
    #[error("request unusable for a transaction: {0}")]
    BadRequest(&'static str),
}

/// One named RFC 3261 timer: when it fires next and its current interval.
#[derive(Debug, Clone, Copy, Default)]
struct Timer {
    at: Option<Instant>,
    interval: Duration,
}

impl Timer {
    fn start(now: Instant, interval: Duration) -> Timer {
        Timer {
            at: Some(now + interval),
            interval,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.at.is_some_and(|at| at <= now)
    }

    fn stop(&mut self) {
        self.at = None;
    }
}

/// Queues and timers shared by every machine.
#[derive(Debug, Default)]
struct Outbox {
    transmits: VecDeque<SipMessage>,
    events: VecDeque<Event>,
}

impl Outbox {
    fn send(&mut self, msg: impl Into<SipMessage>) {
        self.transmits.push_back(msg.into());
    }
    fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }
}

fn earliest(timers: &[&Timer]) -> Option<Instant> {
    timers.iter().filter_map(|t| t.at).min()
}

fn code_of(r: &rsip::Response) -> u16 {
    r.status_code.code()
}

// ---------------------------------------------------------------------------------------------
// Client INVITE (RFC 3261 §17.1.1, RFC 6026 §7.2)
// ---------------------------------------------------------------------------------------------

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
    request: rsip::Request,
    reliable: bool,
    timers: Timers,
    a: Timer,
    b: Timer,
    d: Timer,
    m: Timer,
    ack: Option<rsip::Request>,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction and queues the INVITE for sending.
    pub fn new(now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let mut out = Outbox::default();
        out.send(request.clone());
        ClientInvite {
            state: ClientInviteState::Calling,
            request,
            reliable,
            timers,
            a: if reliable {
                Timer::default()
            } else {
                Timer::start(now, timers.t1)
            },
            b: Timer::start(now, timers.t64()),
            d: Timer::default(),
            m: Timer::default(),
            ack: None,
            out,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction carries (the TU builds CANCEL from it).
    pub fn request(&self) -> &rsip::Request {
        &self.request
    }

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
                self.out.emit(Event::Response(resp));
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                self.a.stop();
                self.b.stop();
                self.m = Timer::start(now, self.timers.t64());
                self.out.emit(Event::Response(resp));
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                self.a.stop();
                self.b.stop();
                let ack = ack_for(&self.request, &resp);
                self.out.send(ack.clone());
                self.ack = Some(ack);
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32).max(self.timers.t64())
                };
                self.d = Timer::start(now, wait);
                self.out.emit(Event::Response(resp));
            }
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.out.send(ack.clone());
                }
            }
            (Accepted, 200..=299) => self.out.emit(Event::Response(resp)),
            _ => {}
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ClientInviteState::*;
        if self.state == Calling && self.a.due(now) {
            self.out.send(self.request.clone());
            self.a = Timer::start(now, self.a.interval * 2);
        }
        if self.state == Calling && self.b.due(now) {
            self.out.emit(Event::TimedOut);
            self.terminate();
        }
        if self.state == Completed && self.d.due(now) {
            self.terminate();
        }
        if self.state == Accepted && self.m.due(now) {
            self.terminate();
        }
    }

    /// The driver could not send: the transaction fails (RFC 3261 §17.1.4).
    pub fn handle_transport_error(&mut self) {
        if matches!(
            self.state,
            ClientInviteState::Calling | ClientInviteState::Proceeding
        ) {
            self.out.emit(Event::TransportError);
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        for t in [&mut self.a, &mut self.b, &mut self.d, &mut self.m] {
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
        earliest(&[&self.a, &self.b, &self.d, &self.m])
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
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

// ---------------------------------------------------------------------------------------------
// Client non-INVITE (RFC 3261 §17.1.2)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Server INVITE (RFC 3261 §17.2.1, RFC 6026 §7.1)
// ---------------------------------------------------------------------------------------------

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
    request: rsip::Request,
    reliable: bool,
    timers: Timers,
    last_response: Option<rsip::Response>,
    g: Timer,
    h: Timer,
    i: Timer,
    l: Timer,
    out: Outbox,
}

impl ServerInvite {
    /// Starts the transaction for a received INVITE and queues a 100 Trying at once.
    pub fn new(_now: Instant, request: rsip::Request, reliable: bool, timers: Timers) -> Self {
        let trying = message::response_for(&request, 100, "Trying");
        let mut out = Outbox::default();
        out.send(trying.clone());
        ServerInvite {
            state: ServerInviteState::Proceeding,
            request,
            reliable,
            timers,
            last_response: Some(trying),
            g: Timer::default(),
            h: Timer::default(),
            i: Timer::default(),
            l: Timer::default(),
            out,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The INVITE this transaction answers.
    pub fn request(&self) -> &rsip::Request {
        &self.request
    }

    /// Feeds a retransmitted INVITE or an ACK matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        let SipMessage::Request(req) = msg else {
            return;
        };
        use ServerInviteState::*;
        match (self.state, req.method == rsip::Method::Ack) {
            (Proceeding | Completed, false) => {
                if let Some(r) = &self.last_response {
                    self.out.send(r.clone());
                }
            }
            (Completed, true) => {
                self.state = Confirmed;
                self.g.stop();
                self.h.stop();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t4
                };
                self.i = Timer::start(now, wait);
                self.out.emit(Event::AckReceived);
            }
            // RFC 6026 §7.1: an ACK for the 2xx that reaches us here goes to the TU.
            (Accepted, true) => self.out.emit(Event::AckReceived),
            // Retransmitted INVITEs in Accepted and ACKs in Confirmed are absorbed.
            _ => {}
        }
    }

    /// Sends a response from the TU; 2xx move to Accepted, 300-699 to Completed.
    pub fn send_response(
        &mut self,
        now: Instant,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        use ServerInviteState::*;
        let code = code_of(&resp);
        match (self.state, code) {
            (Proceeding, 101..=199) => {
                self.last_response = Some(resp.clone());
                self.out.send(resp);
            }
            (Proceeding, 200..=299) => {
                self.state = Accepted;
                self.l = Timer::start(now, self.timers.t64());
                self.out.send(resp);
            }
            (Accepted, 200..=299) => self.out.send(resp),
            (Proceeding, 300..=699) => {
                self.state = Completed;
                self.last_response = Some(resp.clone());
                self.out.send(resp);
                if !self.reliable {
                    self.g = Timer::start(now, self.timers.t1);
                }
                self.h = Timer::start(now, self.timers.t64());
            }
            (state, code) => {
                return Err(TransactionError::InvalidResponse {
                    code,
                    state: server_invite_name(state),
                });
            }
        }
        Ok(())
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        use ServerInviteState::*;
        if self.state == Completed && self.g.due(now) {
            if let Some(r) = &self.last_response {
                self.out.send(r.clone());
            }
            self.g = Timer::start(now, (self.g.interval * 2).min(self.timers.t2));
        }
        if self.state == Completed && self.h.due(now) {
            self.out.emit(Event::TimedOut);
            self.terminate();
        }
        if self.state == Confirmed && self.i.due(now) {
            self.terminate();
        }
        if self.state == Accepted && self.l.due(now) {
            self.terminate();
        }
    }

    /// The driver could not send a response.
    pub fn handle_transport_error(&mut self) {
        match self.state {
            ServerInviteState::Proceeding | ServerInviteState::Completed => {
                self.out.emit(Event::TransportError);
                self.terminate();
            }
            // RFC 6026: in Accepted the TU is told, the transaction lives on until Timer L.
            ServerInviteState::Accepted => self.out.emit(Event::TransportError),
            _ => {}
        }
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        for t in [&mut self.g, &mut self.h, &mut self.i, &mut self.l] {
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
        earliest(&[&self.g, &self.h, &self.i, &self.l])
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
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

// ---------------------------------------------------------------------------------------------
// Server non-INVITE (RFC 3261 §17.2.2)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 2xx retransmission by the UAS core (RFC 3261 §13.3.1.4)
// ---------------------------------------------------------------------------------------------

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
            let next = (self.retransmit.interval * 2).min(self.timers.t2);
            self.retransmit = Timer::start(now, next);
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        self.out.transmits.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[&self.retransmit, &self.give_up])
    }

    /// `TimedOut` when no ACK came within 64*T1.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }
}

// ---------------------------------------------------------------------------------------------
// Matching and the transaction table
// ---------------------------------------------------------------------------------------------

/// Names a transaction (RFC 3261 §17.1.3 and §17.2.3): top Via branch and sent-by, plus the
/// method, where ACK maps to INVITE and CANCEL stays its own transaction.
///
/// For pre-RFC 3261 branches (no magic cookie) the branch is replaced by Call-ID, From tag
/// and CSeq number, which is how RFC 2543 peers' retransmissions still match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Which end we are: a request that loops back to us must not hit our client transaction.
    pub side: Side,
    /// The branch (or the RFC 2543 substitute).
    pub branch: String,
    /// host[:port] of the top Via.
    pub sent_by: String,
    /// INVITE, CANCEL, BYE…; ACK is stored as INVITE.
    pub method: String,
}

impl TransactionKey {
    /// The key of a request or response; None when it has no usable Via or CSeq.
    pub fn of(msg: &SipMessage) -> Option<TransactionKey> {
        let top = vias(msg).into_iter().next()?;
        let method = match msg {
            SipMessage::Request(r) => r.method.to_string(),
            SipMessage::Response(_) => cseq(msg)?.1,
        };
        let method = if method.eq_ignore_ascii_case("ACK") {
            "INVITE".to_string()
        } else {
            method.to_ascii_uppercase()
        };
        let branch = match top.branch() {
            Some(b) if is_rfc3261_branch(b) => b.to_string(),
            _ => {
                let call_id = header_value(msg, "Call-ID")?;
                let from_tag = header_value(msg, "From")
                    .and_then(|f| tag_of(&f))
                    .unwrap_or_default();
                let (n, _) = cseq(msg)?;
                format!("2543:{call_id}:{from_tag}:{n}")
            }
        };
        let side = if msg.is_request() {
            Side::Server
        } else {
            Side::Client
        };
        Some(TransactionKey {
            side,
            branch,
            sent_by: top.sent_by.to_ascii_lowercase(),
            method,
        })
    }

    /// For a CANCEL's key, the key of the INVITE transaction it cancels (RFC 3261 §9.2).
    pub fn cancelled_invite(&self) -> Option<TransactionKey> {
        (self.method == "CANCEL").then(|| TransactionKey {
            method: "INVITE".to_string(),
            ..self.clone()
        })
    }
}

/// Whether a transaction was started by us (client) or by a received request (server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the request; responses match it.
    Client,
    /// We received the request; retransmissions and ACKs match it.
    Server,
}

/// Any of the four transaction kinds, so one table can hold them.
#[derive(Debug)]
pub enum Transaction {
    /// Client INVITE.
    ClientInvite(ClientInvite),
    /// Client non-INVITE.
    ClientNonInvite(ClientNonInvite),
    /// Server INVITE.
    ServerInvite(ServerInvite),
    /// Server non-INVITE.
    ServerNonInvite(ServerNonInvite),
}

macro_rules! each {
    ($self:expr, $t:ident => $body:expr) => {
        match $self {
            Transaction::ClientInvite($t) => $body,
            Transaction::ClientNonInvite($t) => $body,
            Transaction::ServerInvite($t) => $body,
            Transaction::ServerNonInvite($t) => $body,
        }
    };
}

impl Transaction {
    /// Feeds a message matched to this transaction.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage) {
        each!(self, t => t.handle_message(now, msg))
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        each!(self, t => t.handle_timeout(now))
    }

    /// Reports a failed send.
    pub fn handle_transport_error(&mut self) {
        each!(self, t => t.handle_transport_error())
    }

    /// Sends a TU response through a server transaction.
    pub fn send_response(
        &mut self,
        now: Instant,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        match self {
            Transaction::ServerInvite(t) => t.send_response(now, resp),
            Transaction::ServerNonInvite(t) => t.send_response(now, resp),
            _ => Err(TransactionError::InvalidResponse {
                code: code_of(&resp),
                state: "client transaction",
            }),
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<SipMessage> {
        each!(self, t => t.poll_transmit())
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        each!(self, t => t.poll_timeout())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        each!(self, t => t.poll_event())
    }

    /// True once the machine reached Terminated.
    pub fn is_terminated(&self) -> bool {
        match self {
            Transaction::ClientInvite(t) => t.state == ClientInviteState::Terminated,
            Transaction::ClientNonInvite(t) => t.state == ClientNonInviteState::Terminated,
            Transaction::ServerInvite(t) => t.state == ServerInviteState::Terminated,
            Transaction::ServerNonInvite(t) => t.state == ServerNonInviteState::Terminated,
        }
    }
}

/// What the table did with an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Given to an existing transaction (a retransmission is absorbed there).
    Matched(TransactionKey),
    /// A new request: a server transaction was created under this key; the TU handles it.
    NewServer(TransactionKey, rsip::Request),
    /// An ACK with no transaction: the ACK for a 2xx, which belongs to the dialog.
    AckForDialog(rsip::Request),
    /// A response no client transaction expects (e.g. a late 2xx retransmission).
    Stray(rsip::Response),
    /// No usable Via/CSeq to key the message on; drop it.
    Unkeyed,
}

/// The transaction table: routes incoming messages and drives every transaction's timers.
/// Work is proportional to what changed, not to the table's size: transactions touched since
/// the last poll sit in a dirty list, and deadlines in an ordered timer map, so tens of
/// thousands of transactions lingering in their absorb states (Timers J and K) cost nothing.
#[derive(Debug, Default)]
pub struct Transactions {
    timers: Timers,
    map: HashMap<TransactionKey, Transaction>,
    /// Deadline of each transaction that has one, with the sequence number of its timer entry.
    deadlines: HashMap<TransactionKey, (Instant, u64)>,
    /// Every pending deadline, ordered.
    wheel: std::collections::BTreeMap<(Instant, u64), TransactionKey>,
    seq: u64,
    /// Transactions that may have output or events.
    dirty: VecDeque<TransactionKey>,
    in_dirty: std::collections::HashSet<TransactionKey>,
    /// Handed out by `get_mut`: re-examined at the next poll.
    touched: Vec<TransactionKey>,
}

impl Transactions {
    /// An empty table with the given timer values.
    pub fn new(timers: Timers) -> Self {
        Transactions {
            timers,
            ..Default::default()
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `key` names a live transaction (a retransmission, not a new request).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.map.contains_key(key)
    }

    /// Gives back the table's room beyond what it holds (hash tables keep the capacity of
    /// their peak: a flood's tens of thousands of transactions).
    pub fn shrink_to_fit(&mut self) {
        self.map.shrink_to_fit();
        self.deadlines.shrink_to_fit();
        self.dirty.shrink_to_fit();
        self.in_dirty.shrink_to_fit();
        self.touched.shrink_to_fit();
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A transaction by key (it is re-examined at the next poll).
    pub fn get_mut(&mut self, key: &TransactionKey) -> Option<&mut Transaction> {
        if self.map.contains_key(key) {
            self.touched.push(key.clone());
        }
        self.map.get_mut(key)
    }

    /// Records that `key` changed: its deadline is re-read and it may have output.
    fn touch(&mut self, key: &TransactionKey) {
        let next = self.map.get(key).and_then(Transaction::poll_timeout);
        let old = self.deadlines.get(key).copied();
        if old.map(|(at, _)| at) != next {
            if let Some(entry) = old {
                self.wheel.remove(&entry);
                self.deadlines.remove(key);
            }
            if let Some(at) = next {
                self.seq += 1;
                self.wheel.insert((at, self.seq), key.clone());
                self.deadlines.insert(key.clone(), (at, self.seq));
            }
        }
        if self.in_dirty.insert(key.clone()) {
            self.dirty.push_back(key.clone());
        }
    }

    fn sync(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            self.touch(&key);
        }
    }

    fn remove(&mut self, key: &TransactionKey) {
        self.map.remove(key);
        if let Some(entry) = self.deadlines.remove(key) {
            self.wheel.remove(&entry);
        }
    }

    /// Routes a parsed incoming message; `reliable` is true when it came over TCP.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage, reliable: bool) -> Routed {
        let Some(key) = TransactionKey::of(&msg) else {
            return Routed::Unkeyed;
        };
        if let Some(t) = self.map.get_mut(&key) {
            t.handle_message(now, msg);
            self.touch(&key);
            return Routed::Matched(key);
        }
        match msg {
            SipMessage::Response(r) => Routed::Stray(r),
            SipMessage::Request(r) if r.method == rsip::Method::Ack => Routed::AckForDialog(r),
            SipMessage::Request(r) => {
                let t = if r.method == rsip::Method::Invite {
                    Transaction::ServerInvite(ServerInvite::new(
                        now,
                        r.clone(),
                        reliable,
                        self.timers,
                    ))
                } else {
                    Transaction::ServerNonInvite(ServerNonInvite::new(
                        now,
                        r.clone(),
                        reliable,
                        self.timers,
                    ))
                };
                self.map.insert(key.clone(), t);
                self.touch(&key);
                Routed::NewServer(key, r)
            }
        }
    }

    /// Starts a client transaction for `request` (which must carry a Via with a branch).
    pub fn start_client(
        &mut self,
        now: Instant,
        request: rsip::Request,
        reliable: bool,
    ) -> Result<TransactionKey, TransactionError> {
        let key = TransactionKey {
            side: Side::Client,
            ..TransactionKey::of(&SipMessage::Request(request.clone()))
                .ok_or(TransactionError::BadRequest("no Via or CSeq"))?
        };
        let t = if request.method == rsip::Method::Invite {
            Transaction::ClientInvite(ClientInvite::new(now, request, reliable, self.timers))
        } else {
            Transaction::ClientNonInvite(ClientNonInvite::new(now, request, reliable, self.timers))
        };
        self.map.insert(key.clone(), t);
        self.touch(&key);
        Ok(key)
    }

    /// Sends a TU response through the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        let result = self
            .map
            .get_mut(key)
            .ok_or(TransactionError::BadRequest("no such transaction"))?
            .send_response(now, resp);
        self.touch(key);
        result
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sync();
        while let Some((&(at, seq), _)) = self.wheel.first_key_value() {
            if at > now {
                break;
            }
            let Some(key) = self.wheel.remove(&(at, seq)) else {
                break;
            };
            self.deadlines.remove(&key);
            if let Some(t) = self.map.get_mut(&key) {
                t.handle_timeout(now);
            }
            self.touch(&key);
        }
    }

    /// The earliest deadline over all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let touched = self
            .touched
            .iter()
            .filter_map(|k| self.map.get(k))
            .filter_map(Transaction::poll_timeout);
        self.wheel
            .first_key_value()
            .map(|((at, _), _)| *at)
            .into_iter()
            .chain(touched)
            .min()
    }

    /// The next message to send, from any transaction. Drain it before `poll_event`.
    pub fn poll_transmit(&mut self) -> Option<(TransactionKey, SipMessage)> {
        self.sync();
        for key in &self.dirty {
            if let Some(t) = self.map.get_mut(key)
                && let Some(m) = t.poll_transmit()
            {
                return Some((key.clone(), m));
            }
        }
        None
    }

    /// The next event from any transaction; terminated transactions leave the table once
    /// their last event has been taken.
    pub fn poll_event(&mut self) -> Option<(TransactionKey, Event)> {
        self.sync();
        while let Some(key) = self.dirty.front().cloned() {
            let event = self.map.get_mut(&key).and_then(Transaction::poll_event);
            match event {
                Some(Event::Terminated) => {
                    self.remove(&key);
                    return Some((key, Event::Terminated));
                }
                Some(e) => {
                    // Its timer may have changed with the event (e.g. a final response).
                    self.touch(&key);
                    return Some((key, e));
                }
                None => {
                    self.dirty.pop_front();
                    self.in_dirty.remove(&key);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::{parse, response_with_tag};

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 70\r\n\
        To: Bob <sip:bob@example.com>\r\n\
        From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\
        Route: <sip:p1.example.com;lr>\r\n\
        Content-Length: 0\r\n\r\n";

    fn req(text: &str) -> rsip::Request {
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("request expected"),
        }
    }

    fn invite() -> rsip::Request {
        req(INVITE)
    }

    fn register() -> rsip::Request {
        req(&INVITE
            .replace("INVITE sip:bob", "REGISTER sip:bob")
            .replace("314159 INVITE", "1 REGISTER"))
    }

    fn ack_of(r: &rsip::Request) -> rsip::Request {
        let text = r
            .to_string()
            .replacen("INVITE sip:", "ACK sip:", 1)
            .replace("314159 INVITE", "314159 ACK");
        req(&text)
    }

    fn resp(r: &rsip::Request, code: u16) -> rsip::Response {
        response_with_tag(r, code, "Reason", "totag")
    }

    fn drain(t: &mut impl FnMut() -> Option<SipMessage>) -> Vec<SipMessage> {
        std::iter::from_fn(t).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs a machine's timers up to `until`, returning the instants (ms after t0) of transmits.
    macro_rules! run_until {
        ($t:expr, $t0:expr, $until:expr) => {{
            let mut sent = Vec::new();
            while let Some(at) = $t.poll_timeout() {
                if at > $t0 + $until {
                    break;
                }
                $t.handle_timeout(at);
                while $t.poll_transmit().is_some() {
                    sent.push((at - $t0).as_millis() as u64);
                }
            }
            sent
        }};
    }

    #[test]
    fn client_invite_over_udp_backs_off_and_times_out_at_64_t1() {
        let t0 = Instant::now();
        let mut t = ClientInvite::new(t0, invite(), false, Timers::default());
        assert!(matches!(t.poll_transmit(), Some(SipMessage::Request(_))));
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
        assert_eq!(t.state(), ClientInviteState::Terminated);
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn timer_values_are_configurable() {
        let t0 = Instant::now();
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
    fn client_invite_over_tcp_never_retransmits() {
        let t0 = Instant::now();
        let mut t = ClientInvite::new(t0, invite(), true, Timers::default());
        assert!(t.poll_transmit().is_some());
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert!(sent.is_empty());
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
    }

    #[test]
    fn client_invite_acks_non_2xx_and_absorbs_retransmissions_during_timer_d() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ClientInvite::new(t0, inv.clone(), false, Timers::default());
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
        assert_eq!(t.poll_timeout(), Some(t0 + ms(6000 + 32_000)));
        t.handle_timeout(t0 + ms(38_000));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn client_invite_passes_every_2xx_in_accepted_until_timer_m() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ClientInvite::new(t0, inv.clone(), false, Timers::default());
        t.handle_message(t0 + ms(200), resp(&inv, 200).into());
        assert_eq!(t.state(), ClientInviteState::Accepted);
        t.handle_message(t0 + ms(700), resp(&inv, 200).into());
        let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
        assert_eq!(events.len(), 2, "both 2xx go to the TU, which ACKs them");
        assert_eq!(drain(&mut || t.poll_transmit()).len(), 1, "no ACK from us");
        t.handle_timeout(t0 + ms(200) + Timers::default().t64());
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn client_non_invite_caps_retransmits_at_t2_and_times_out_with_timer_f() {
        let t0 = Instant::now();
        let mut t = ClientNonInvite::new(t0, register(), false, Timers::default());
        t.poll_transmit();
        let sent = run_until!(t, t0, Duration::from_secs(40));
        assert_eq!(
            sent,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn client_non_invite_retransmits_every_t2_when_proceeding_then_waits_timer_k() {
        let t0 = Instant::now();
        let reg = register();
        let mut t = ClientNonInvite::new(t0, reg.clone(), false, Timers::default());
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
        assert_eq!(t.poll_timeout(), Some(t0 + ms(9000 + 5000)));
        t.handle_timeout(t0 + ms(14_000));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn client_non_invite_over_tcp_terminates_at_once_after_final() {
        let t0 = Instant::now();
        let reg = register();
        let mut t = ClientNonInvite::new(t0, reg.clone(), true, Timers::default());
        t.handle_message(t0 + ms(10), resp(&reg, 200).into());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(10)));
        t.handle_timeout(t0 + ms(10));
        assert_eq!(t.state(), ClientNonInviteState::Terminated);
    }

    #[test]
    fn server_non_invite_resends_last_response_on_retransmission_until_timer_j() {
        let t0 = Instant::now();
        let reg = register();
        let mut t = ServerNonInvite::new(t0, reg.clone(), false, Timers::default());
        t.handle_message(t0 + ms(500), reg.clone().into());
        assert!(t.poll_transmit().is_none(), "Trying absorbs");
        t.send_response(t0 + ms(600), resp(&reg, 200)).unwrap();
        assert!(t.poll_transmit().is_some());
        t.handle_message(t0 + ms(1500), reg.clone().into());
        assert!(
            matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 200)
        );
        assert!(t.send_response(t0 + ms(1600), resp(&reg, 500)).is_err());
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + ms(600) + Timers::default().t64())
        );
        t.handle_timeout(t0 + ms(600) + Timers::default().t64());
        assert_eq!(t.state(), ServerNonInviteState::Terminated);
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn server_invite_retransmits_4xx_until_ack_then_absorbs_acks_during_timer_i() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ServerInvite::new(t0, inv.clone(), false, Timers::default());
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
        assert_eq!(t.poll_timeout(), Some(t0 + ms(11_100 + 5000)));
        t.handle_timeout(t0 + ms(16_100));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn server_invite_gives_up_with_timer_h_when_no_ack() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ServerInvite::new(t0, inv.clone(), false, Timers::default());
        t.send_response(t0, resp(&inv, 404)).unwrap();
        assert_eq!(drain(&mut || t.poll_transmit()).len(), 2, "100 and 404");
        let sent = run_until!(t, t0, Duration::from_secs(40));
        // G: 0.5, 1.5, 3.5, 7.5 then every T2 until H at 32 s.
        assert_eq!(
            sent,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(t.poll_event(), Some(Event::TimedOut));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn server_invite_2xx_goes_to_accepted_and_absorbs_invite_retransmissions() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ServerInvite::new(t0, inv.clone(), true, Timers::default());
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
        t.handle_timeout(t0 + ms(20) + Timers::default().t64());
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn server_invite_over_tcp_sends_the_final_once_and_timer_i_is_zero() {
        let t0 = Instant::now();
        let inv = invite();
        let mut t = ServerInvite::new(t0, inv.clone(), true, Timers::default());
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

    #[test]
    fn two_xx_retransmitter_doubles_to_t2_and_stops_on_ack_or_gives_up() {
        let t0 = Instant::now();
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

    #[test]
    fn transport_errors_fail_the_transaction() {
        let t0 = Instant::now();
        let mut t = ClientNonInvite::new(t0, register(), false, Timers::default());
        t.handle_transport_error();
        assert_eq!(t.poll_event(), Some(Event::TransportError));
        assert_eq!(t.poll_event(), Some(Event::Terminated));
    }

    #[test]
    fn keys_map_ack_to_invite_and_keep_cancel_apart() {
        let inv = invite();
        let k = TransactionKey::of(&inv.clone().into()).unwrap();
        assert_eq!(k.method, "INVITE");
        assert_eq!(k.branch, "z9hG4bK776asdhds");
        assert_eq!(k.sent_by, "pc33.example.com");
        assert_eq!(TransactionKey::of(&ack_of(&inv).into()), Some(k.clone()));
        let cancel = req(&INVITE
            .replacen("INVITE sip:", "CANCEL sip:", 1)
            .replace("314159 INVITE", "314159 CANCEL"));
        let cancel_key = TransactionKey::of(&cancel.into()).unwrap();
        assert_eq!(cancel_key.method, "CANCEL");
        assert_eq!(cancel_key.cancelled_invite(), Some(k.clone()));
        assert_eq!(k.cancelled_invite(), None);
        let resp_key = TransactionKey::of(&resp(&inv, 180).into()).unwrap();
        assert_eq!(resp_key.side, Side::Client);
        assert_eq!(
            resp_key,
            TransactionKey {
                side: Side::Client,
                ..k
            }
        );
        // RFC 2543 branch: keyed on Call-ID, From tag and CSeq instead.
        let old = req(&INVITE.replace("branch=z9hG4bK776asdhds", "branch=1"));
        let k = TransactionKey::of(&old.into()).unwrap();
        assert!(
            k.branch
                .starts_with("2543:a84b4c76e66710@pc33.example.com:1928301774:314159")
        );
    }

    #[test]
    fn table_creates_server_transactions_and_absorbs_retransmissions() {
        let t0 = Instant::now();
        let mut table = Transactions::new(Timers::default());
        let inv = invite();
        let Routed::NewServer(key, _) = table.handle_message(t0, inv.clone().into(), false) else {
            panic!("new server transaction expected")
        };
        assert!(
            matches!(table.poll_transmit(), Some((k, _)) if k == key),
            "100 Trying"
        );
        assert_eq!(
            table.handle_message(t0 + ms(500), inv.clone().into(), false),
            Routed::Matched(key.clone())
        );
        assert!(table.poll_transmit().is_some(), "100 Trying again");
        table
            .send_response(t0 + ms(600), &key, resp(&inv, 486))
            .unwrap();
        table.poll_transmit();
        assert_eq!(
            table.handle_message(t0 + ms(700), ack_of(&inv).into(), false),
            Routed::Matched(key.clone())
        );
        assert_eq!(table.poll_event(), Some((key.clone(), Event::AckReceived)));
        // An ACK for a 2xx carries its own branch: it belongs to the dialog.
        let other_ack = req(&ack_of(&inv)
            .to_string()
            .replace("z9hG4bK776asdhds", "z9hG4bKother"));
        assert!(matches!(
            table.handle_message(t0, other_ack.into(), false),
            Routed::AckForDialog(_)
        ));
        let at = table.poll_timeout().unwrap();
        table.handle_timeout(at);
        assert_eq!(table.poll_event(), Some((key, Event::Terminated)));
        assert!(table.is_empty());
    }

    #[test]
    fn table_routes_responses_to_client_transactions() {
        let t0 = Instant::now();
        let mut table = Transactions::new(Timers::default());
        let reg = register();
        let key = table.start_client(t0, reg.clone(), false).unwrap();
        assert!(table.poll_transmit().is_some());
        assert_eq!(
            table.handle_message(t0 + ms(50), resp(&reg, 200).into(), false),
            Routed::Matched(key.clone())
        );
        assert!(matches!(table.poll_event(), Some((k, Event::Response(_))) if k == key));
        // Our own request looping back is a new server transaction, not a match.
        assert!(matches!(
            table.handle_message(t0, reg.clone().into(), false),
            Routed::NewServer(k, _) if k.side == Side::Server
        ));
        assert_eq!(table.len(), 2);
        let stray = resp(&invite(), 200);
        assert!(matches!(
            table.handle_message(t0, stray.into(), false),
            Routed::Stray(_)
        ));
    }
}
