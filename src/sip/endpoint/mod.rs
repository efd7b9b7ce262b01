//! The user agent's endpoint: the transaction table, the calls' dialogs and the registrar, fed
//! messages, commands and the time; its parts (UAS, UAC, in-dialog requests and refreshes,
//! authentication, registration) have files of their own.

mod auth;
mod refer;
mod refresh;
mod register;
mod route;
#[cfg(test)]
mod sans_io_tests;
mod uac;
mod uas;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};
use tokio::sync::mpsc;

use super::auth_guard::NonceRefusal;
use super::deadlines::Deadlines;
use super::dialog::Dialog;
use super::digest;
use super::message::{self, header_value, header_values, random_token, response_with_tag};
use super::overload::{HeapTrim, ShedMemory};
use super::registrar::{Binding, ContactLease, Registrar};
use super::session_timer::{MIN_SE, RefreshMethod, Refresher, SessionTimer, TimerAction};
use super::shard::Shared;
use super::transaction::{Event, Routed, Timers, TransactionKey, Transactions, TwoXxRetransmitter};
use super::transport::{Peer, Received, Transport, error_response};
use crate::media::dtmf::parse_info;
use crate::media::sdp;

use super::ua::*;
use refresh::*;
use route::next_hop;

/// Methods we know but do not serve: 405 rather than 501.
const KNOWN_UNSERVED: &[&str] = &[
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "UPDATE",
    "PRACK",
];

enum Role {
    Uas {
        invite: rsip::Request,
        key: TransactionKey,
        to_tag: String,
        answered: bool,
        answer_sdp: String,
        /// RFC 4028 session timer agreed with the caller, started when we answer.
        session_timer: TimerAsk,
    },
    Uac {
        invite: rsip::Request,
        key: TransactionKey,
        events: mpsc::UnboundedSender<UacEvent>,
        credentials: Option<(String, String)>,
        auth_tried: bool,
        answered: bool,
        /// Our ACK of its 2xx, sent again for a retransmitted 2xx (boxed: most calls never need it).
        ack: Option<Box<rsip::Request>>,
        /// Our SDP, kept to answer the callee's offer when the INVITE went without one.
        late_offer: Option<String>,
    },
}

struct Call {
    peer: Peer,
    role: Role,
    dialog: Option<Dialog>,
    shared: Arc<LegShared>,
    /// RFC 4028 session timer, once an interval is agreed and the call answered.
    timer: Option<SessionTimer>,
    /// Our SDP once an offer inside the call changed it (hold, resume).
    local_sdp: Option<String>,
    /// Our 2xx to the peer's INVITE (the first or a re-INVITE), retransmitted over UDP until
    /// its ACK (RFC 3261 §13.3.1.4, §14.2).
    twoxx: Option<TwoXxRetransmitter>,
    /// We offered in our 2xx (the INVITE or re-INVITE had no SDP): its ACK brings the answer.
    awaiting_answer: Option<AnswerDue>,
}

/// Which of our offers in a 2xx waits for its answer in the ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerDue {
    /// The first: without a usable answer there is no media, the call ends.
    First,
    /// A re-INVITE's: without a usable answer the session stays as it was.
    Again,
}

/// Reason phrase of the statuses a refused offer inside a call gets.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        481 => "Call/Transaction Does Not Exist",
        _ => "Not Acceptable Here",
    }
}

/// What the endpoint tells the application, handed to its [`CallHandler`] by the driver.
pub(crate) enum Notice {
    /// A new inbound call for a number the handler serves.
    Incoming(IncomingCall),
    /// A user's phone registered (true) or lost its last binding (false).
    Registration {
        /// The user.
        user: String,
        /// Whether the user has a binding now.
        registered: bool,
    },
    /// A user's bindings changed, to be kept across restarts.
    RegistrationChanged(PhoneRegistration),
}

impl Notice {
    /// Hands the notice to `handler`.
    pub(crate) fn deliver(self, handler: &dyn CallHandler) {
        match self {
            Notice::Incoming(call) => handler.incoming(call),
            Notice::Registration { user, registered } => handler.registration(&user, registered),
            Notice::RegistrationChanged(r) => handler.registration_changed(r),
        }
    }
}

/// A message for the driver to send.
#[derive(Debug)]
pub(crate) struct Transmit {
    /// Where to.
    pub peer: Peer,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

/// The I/O-free user agent: fed commands, received messages and the time
/// ([`Endpoint::handle_command`], [`Endpoint::handle_timeout`]), asked what to send, what to tell
/// the application and when to wake ([`Endpoint::poll_transmit`], [`Endpoint::poll_event`],
/// [`Endpoint::poll_timeout`]). The handler is only asked questions (`serves`, `knows_user`).
pub(crate) struct Endpoint {
    /// Our INVITE client transactions → their call, so responses find the call directly.
    uac_keys: HashMap<TransactionKey, String>,
    /// Our session refreshes (UPDATE / re-INVITE) in flight → their call; true once answered.
    refresh_keys: HashMap<TransactionKey, (String, bool)>,
    /// Our REFERs in flight → their call.
    refer_keys: HashMap<TransactionKey, String>,
    /// Session-timer deadlines (RFC 4028) by call.
    session_timers: Deadlines<String>,
    /// Next retransmission of each call's 200 OK until its ACK (the other per-call timer).
    unacked: Deadlines<String>,
    register_auth: Option<RegisterAuth>,
    authenticate_invite: bool,
    authenticate_register: bool,
    session_expires: u32,
    /// Overload limits.
    limits: UaLimits,
    /// What every worker shares: call and setup counts, the drain flag, digest state.
    shared: Arc<Shared>,
    metrics: Arc<crate::ops::metrics::SipMetrics>,
    /// Inbound calls not yet answered (possibly stale: see `overloaded`).
    setting_up: std::collections::HashSet<String>,
    /// INVITEs lately refused for overload, so their retransmissions get the same 503.
    shed: ShedMemory,
    /// When to give the heap back after a flood.
    trim: HeapTrim,
    /// At most 10 "malformed SIP message" lines per 10 s, then a count.
    malformed_log: crate::throttle::LogThrottle,
    /// At most one overload line per 10 s, then a count.
    shed_log: crate::throttle::LogThrottle,
    /// `sip.public_host` when it is a name: used in Contact and Via.
    public_name: Option<String>,
    txns: Transactions,
    timers: Timers,
    peers: HashMap<TransactionKey, Peer>,
    calls: HashMap<String, Call>,
    registrar: Registrar,
    /// Where each registered user's REGISTER came from (we send its calls there: NAT-safe).
    sources: HashMap<String, Peer>,
    /// Our UDP and TCP listening addresses (for Via and Contact).
    local: (Option<SocketAddr>, Option<SocketAddr>),
    /// Messages to send, taken by the driver through [`Endpoint::poll_transmit`].
    outbox: VecDeque<Transmit>,
    /// Notices for the application, taken through [`Endpoint::poll_event`].
    notices: VecDeque<Notice>,
    /// The time given with the latest input: the endpoint reads no clock.
    now: Instant,
    handler: Arc<dyn CallHandler>,
    public_ip: IpAddr,
}

fn user_of_uri(uri: &str) -> String {
    let s = uri.trim().trim_start_matches('<');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let end = s.find(['@', ';', '>', '?']).unwrap_or(s.len());
    if s[end..].starts_with('@') || !s.contains('@') {
        s[..end].to_string()
    } else {
        String::new()
    }
}

/// The socket address of a contact URI with a literal IP host (default port 5060).
fn contact_addr(uri: &str) -> Option<SocketAddr> {
    let s = uri.trim().trim_start_matches('<');
    let s = s.strip_prefix("sip:").unwrap_or(s);
    let hostport = s.rsplit_once('@').map(|(_, h)| h).unwrap_or(s);
    let hostport = hostport.split([';', '>', '?']).next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    hostport
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 5060))
}

/// Our answer to a callee's offer in a 200 (late offer), on the address of `ours`, the SDP we
/// would have offered.
fn answer_late_offer(ours: &str, offer: &str) -> Result<String, sdp::SdpError> {
    let local = sdp::parse_answer(ours)?.remote;
    sdp::answer(offer, local.ip(), local.port()).map(|(answer, _)| answer)
}

fn from_user(req: &rsip::Request) -> String {
    header_value(req, "From")
        .and_then(|f| message::name_addr_parts(&f).map(|(uri, _)| user_of_uri(&uri)))
        .unwrap_or_default()
}

/// Replaces the body, setting Content-Type and Content-Length.
fn set_body(headers: &mut rsip::Headers, body: &mut Vec<u8>, ctype: &str, data: Vec<u8>) {
    headers.retain(|h| !matches!(h, Header::ContentLength(_) | Header::ContentType(_)));
    headers.push(Header::ContentType(rsip::headers::ContentType::new(ctype)));
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        data.len().to_string(),
    )));
    *body = data;
}

impl Endpoint {
    /// An endpoint for `config`, listening on `local` (UDP, TCP), calling `handler`.
    pub(crate) fn new(
        config: UaConfig,
        local: (Option<SocketAddr>, Option<SocketAddr>),
        handler: Arc<dyn CallHandler>,
        metrics: Arc<crate::ops::metrics::SipMetrics>,
        now: Instant,
        public_ip: IpAddr,
        shared: Arc<Shared>,
    ) -> Self {
        Endpoint {
            uac_keys: HashMap::new(),
            refresh_keys: HashMap::new(),
            refer_keys: HashMap::new(),
            session_timers: Deadlines::default(),
            unacked: Deadlines::default(),
            register_auth: config.register_auth.clone(),
            authenticate_invite: config.authenticate_invite,
            authenticate_register: config.authenticate_register,
            session_expires: config.session_expires.max(MIN_SE),
            limits: config.limits.clone(),
            shared,
            metrics: metrics.clone(),
            setting_up: std::collections::HashSet::new(),
            shed: ShedMemory::default(),
            trim: HeapTrim::default(),
            malformed_log: crate::throttle::LogThrottle::new(
                10,
                std::time::Duration::from_secs(10),
            ),
            shed_log: crate::throttle::LogThrottle::new(1, std::time::Duration::from_secs(10)),
            public_name: config.public_name.clone(),
            txns: Transactions::new(Timers::default()),
            timers: Timers::default(),
            peers: HashMap::new(),
            calls: HashMap::new(),
            registrar: Registrar::new(config.registrar),
            sources: HashMap::new(),
            local,
            outbox: VecDeque::new(),
            notices: VecDeque::new(),
            handler,
            public_ip,
            now,
        }
    }

    /// A command from the handle, or a message from the transports (`Cmd::Received`).
    pub(crate) fn handle_command(&mut self, now: Instant, cmd: Cmd) {
        self.now = self.now.max(now);
        self.on_cmd(cmd);
        self.pump();
    }

    /// Fires every timer due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.on_timeout();
        self.pump();
    }

    /// The next message to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next notice for the application (incoming calls, registrations).
    pub(crate) fn poll_event(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Queues a notice for the application.
    fn notify(&mut self, notice: Notice) {
        self.notices.push_back(notice);
    }

    /// When [`Endpoint::handle_timeout`] must next be called.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_wake()
    }

    /// After a flood: true when the tables were just shrunk and the driver should give the
    /// heap back to the system.
    pub(crate) fn poll_trim(&mut self, now: Instant) -> bool {
        let due = self.trim.due(now, self.txns.len() + self.calls.len());
        if due {
            self.shrink_to_fit();
        }
        due
    }

    /// Queues `bytes` for `peer`.
    fn transmit(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.outbox.push_back(Transmit { peer, bytes });
    }

    /// Our listening address for `transport`.
    fn local_for(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.local.0,
            Transport::Tcp => self.local.1,
        }
    }

    /// Gives back the room of the tables sized for a flood's peak.
    fn shrink_to_fit(&mut self) {
        self.txns.shrink_to_fit();
        self.calls.shrink_to_fit();
        self.peers.shrink_to_fit();
        self.uac_keys.shrink_to_fit();
        self.unacked.shrink_to_fit();
        self.setting_up.shrink_to_fit();
    }

    /// The earliest deadline of any timer: each kind keeps its own ordered index.
    fn next_wake(&mut self) -> Option<Instant> {
        self.txns
            .poll_timeout()
            .into_iter()
            .chain(self.unacked.earliest())
            .chain(self.registrar.next_expiry())
            .chain(self.session_timers.earliest())
            .chain(self.trim.wake())
            .min()
    }

    fn on_timeout(&mut self) {
        let now = self.now;
        self.txns.handle_timeout(now);
        let mut dead = Vec::new();
        while let Some(id) = self.unacked.pop_due(now) {
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            let Some(t) = c.twoxx.as_mut() else {
                continue;
            };
            t.handle_timeout(now);
            while let Some(m) = t.poll_transmit() {
                self.outbox.push_back(Transmit {
                    peer: c.peer,
                    bytes: message::to_bytes(&m),
                });
            }
            while let Some(ev) = t.poll_event() {
                if ev == Event::TimedOut {
                    // No ACK for our 200 within 64*T1: the call is dead (RFC 3261 §13.3.1.4).
                    dead.push(id.clone());
                }
            }
            let next = t.poll_timeout();
            self.unacked.set(&id, next);
        }
        for id in dead {
            // No ACK for our 2xx: the session is ended with a BYE (RFC 3261 §13.3.1.4).
            tracing::info!(call = %id, "no ACK for our 2xx: BYE");
            self.hang_up(&id);
        }
        self.on_session_timers(now);
        for aor in self.registrar.expire(now) {
            let user = user_of_uri(&aor);
            if let Some(source) = self.sources.remove(&user) {
                self.notify(Notice::RegistrationChanged(PhoneRegistration {
                    user: user.clone(),
                    aor,
                    source,
                    contacts: Vec::new(),
                }));
            }
            self.notify(Notice::Registration {
                user: user.clone(),
                registered: false,
            });
        }
    }

    fn send(&mut self, peer: Peer, msg: &SipMessage) {
        self.transmit(peer, message::to_bytes(msg));
    }

    fn pump(&mut self) {
        while let Some((key, msg)) = self.txns.poll_transmit() {
            if let Some(peer) = self.peers.get(&key).copied() {
                self.send(peer, &msg);
            }
        }
        while let Some((key, ev)) = self.txns.poll_event() {
            if ev == Event::Terminated {
                self.peers.remove(&key);
                self.uac_keys.remove(&key);
                self.refresh_keys.remove(&key);
                self.refer_keys.remove(&key);
                continue;
            }
            if self.refresh_keys.contains_key(&key) {
                self.on_refresh_event(&key, ev);
            } else if let Some(call) = self.refer_keys.get(&key).cloned() {
                self.on_refer_event(&call, ev);
            } else {
                self.on_client_event(&key, ev);
            }
            while let Some((key, msg)) = self.txns.poll_transmit() {
                if let Some(peer) = self.peers.get(&key).copied() {
                    self.send(peer, &msg);
                }
            }
        }
    }

    fn via(&self, transport: Transport) -> String {
        let port = self.local_for(transport).map(|a| a.port()).unwrap_or(5060);
        format!("SIP/2.0/{} {}:{port}", transport.via_name(), self.host())
    }

    /// The host in our Contact, Via and Call-IDs: `public_name`, else the public address.
    pub(crate) fn host(&self) -> String {
        if let Some(name) = &self.public_name {
            return name.clone();
        }
        match self.public_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    }

    fn contact(&self, transport: Transport) -> String {
        let port = self.local_for(transport).map(|a| a.port()).unwrap_or(5060);
        let t = if transport == Transport::Tcp {
            ";transport=tcp"
        } else {
            ""
        };
        format!("<sip:boomerang@{}:{port}{t}>", self.host())
    }

    fn respond(&mut self, key: &TransactionKey, req: &rsip::Request, code: u16, reason: &str) {
        let resp = message::response_for(req, code, reason);
        self.respond_with(key, resp);
    }

    fn respond_with(&mut self, key: &TransactionKey, resp: rsip::Response) {
        self.metrics.response_sent(resp.status_code.code());
        if let Err(e) = self.txns.send_response(self.now, key, resp) {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Received(r) => self.on_received(r),
            Cmd::Answer { call, sdp, done } => {
                let _ = done.send(self.answer(&call, sdp));
            }
            Cmd::Reject { call, code, reason } => self.end_call(&call, code, reason),
            Cmd::Hangup { call } => self.hang_up(&call),
            Cmd::HangupAll(reply) => {
                let ids: Vec<String> = self.calls.keys().cloned().collect();
                for id in &ids {
                    self.hang_up(id);
                }
                let _ = reply.send(ids.len());
            }
            Cmd::Dial {
                id,
                req,
                events,
                shared,
                call_id,
                late_offer,
            } => {
                let id = self.dial(id, req, events, shared, late_offer);
                let _ = call_id.send(id);
            }
            Cmd::Cancel { call } => self.cancel(&call),
            Cmd::Refer { call, refer_to } => self.send_refer(&call, &refer_to),
            Cmd::Restore(list) => self.restore_registrations(list),
            Cmd::Lookup { user, reply } => {
                let found = self.sources.get(&user).and_then(|source| {
                    let aor = self.registrar_aor_of_user(&user)?;
                    let b = self.registrar.bindings(&aor).first()?;
                    // The Contact's address when it has one we can reach; else where the
                    // REGISTER came from (a phone behind NAT).
                    let peer = contact_addr(&b.uri)
                        .map(|addr| Peer {
                            addr,
                            transport: if b.uri.contains("transport=tcp") {
                                Transport::Tcp
                            } else {
                                source.transport
                            },
                        })
                        .unwrap_or(*source);
                    Some((b.uri.clone(), peer))
                });
                let _ = reply.send(found);
            }
        }
    }

    fn on_received(&mut self, r: Received) {
        let parsed = match r.framing_error {
            Some(e) => Err(e),
            None => message::parse_limited(&r.bytes, &self.limits.transport.message),
        };
        let mut msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                crate::throttled!(
                    self.malformed_log,
                    self.now,
                    info!(from = %r.peer.addr, error = %e, "malformed SIP message")
                );
                if let Some(b) = error_response(&r.bytes, e.status(), &e.reason_phrase()) {
                    self.transmit(r.peer, b);
                }
                return;
            }
        };
        match &mut msg {
            SipMessage::Request(req) => {
                self.metrics.request(&req.method);
                message::stamp_via(req, r.peer.addr);
            }
            SipMessage::Response(resp) => self.metrics.response_received(resp.status_code.code()),
        }
        if self.shed_invite(&msg, r.peer, self.now.saturating_duration_since(r.at)) {
            return;
        }
        let now = self.now;
        match self
            .txns
            .handle_message(now, msg, r.peer.transport.reliable())
        {
            Routed::Matched(_) | Routed::Unkeyed => {}
            Routed::NewServer(key, req) => {
                self.peers.insert(key.clone(), r.peer);
                self.on_request(key, req, r.peer);
            }
            Routed::AckForDialog(req) => self.on_ack(&req),
            Routed::Stray(resp) => self.on_stray(&resp),
        }
    }

    fn on_request(&mut self, key: TransactionKey, req: rsip::Request, peer: Peer) {
        let call_id = header_value(&req, "Call-ID").unwrap_or_default();
        if self.out_of_order(&call_id, &req) {
            self.respond(&key, &req, 500, "Server Internal Error");
            return;
        }
        let method = req.method.to_string();
        match req.method {
            rsip::Method::Invite => self.on_invite(key, req, peer, call_id),
            rsip::Method::Bye => {
                if self.dialog_or_481(&key, &req, &call_id).is_some() {
                    self.respond(&key, &req, 200, "OK");
                    // Before our answer the INVITE is still pending: it ends with 487 (RFC
                    // 3261 §15.1.2), or its transaction would wait for a final answer forever.
                    self.terminate(&call_id);
                }
            }
            rsip::Method::Cancel => {
                let invite_key = key.cancelled_invite();
                let target = self.calls.iter().find_map(|(id, c)| match &c.role {
                    Role::Uas {
                        key: k,
                        answered: false,
                        ..
                    } if Some(k) == invite_key.as_ref() => Some(id.clone()),
                    _ => None,
                });
                match target {
                    Some(id) => {
                        self.respond(&key, &req, 200, "OK");
                        self.terminate(&id);
                    }
                    None => self.respond(&key, &req, 481, "Call/Transaction Does Not Exist"),
                }
            }
            rsip::Method::Info => {
                let Some(c) = self.dialog_or_481(&key, &req, &call_id) else {
                    return;
                };
                let ctype = header_value(&req, "Content-Type").unwrap_or_default();
                let body = String::from_utf8_lossy(&req.body).to_string();
                match parse_info(&ctype, &body) {
                    Ok(d) => {
                        c.shared.digits.push(d.digit);
                        self.respond(&key, &req, 200, "OK");
                    }
                    Err(_) if body.trim().is_empty() => self.respond(&key, &req, 200, "OK"),
                    Err(_) => self.respond_with(
                        &key,
                        unsupported_media(&req, "application/dtmf-relay, application/dtmf"),
                    ),
                }
            }
            rsip::Method::Update => self.on_in_dialog_offer(key, req, peer, call_id),
            rsip::Method::Notify => self.on_notify(key, req, call_id),
            rsip::Method::Options => {
                // Answer what an INVITE would: a number that is not a route point is not
                // found; the engine itself (no user in the Request-URI) is.
                let uri = req.uri.to_string();
                let user = user_of_uri(&uri);
                if uri.contains('@') && !user.is_empty() && !self.handler.serves(&user) {
                    self.respond(&key, &req, 404, "Not Found");
                    return;
                }
                if let Some(resp) = bad_extension(&req) {
                    self.respond_with(&key, resp);
                    return;
                }
                let mut resp = message::response_for(&req, 200, "OK");
                resp.headers
                    .push(Header::Other("Allow".into(), ALLOW.into()));
                resp.headers
                    .push(Header::Other("Accept".into(), "application/sdp".into()));
                resp.headers
                    .push(Header::Other("Supported".into(), "timer".into()));
                self.respond_with(&key, resp);
            }
            rsip::Method::Register => self.on_register(key, req, peer),
            _ if KNOWN_UNSERVED.contains(&method.to_ascii_uppercase().as_str()) => {
                let mut resp = message::response_for(&req, 405, "Method Not Allowed");
                resp.headers
                    .push(Header::Other("Allow".into(), ALLOW.into()));
                self.respond_with(&key, resp);
            }
            _ => self.respond(&key, &req, 501, "Not Implemented"),
        }
    }

    /// Removes a call, and its session-timer deadline from the index.
    fn take_call(&mut self, id: &str) -> Option<Call> {
        if self.setting_up.remove(id) {
            self.shared.setup_done(1);
        }
        let c = self.calls.remove(id)?;
        self.shared.remove_call();
        self.session_timers.remove(id);
        self.unacked.remove(id);
        Some(c)
    }

    /// Holds a call admitted elsewhere (one we place, or one put back), counting it.
    fn insert_call(&mut self, id: String, call: Call) {
        if self.calls.insert(id, call).is_none() {
            self.shared.add_call();
        }
    }

    /// Our SDP in this call (the answer we gave, or the offer we made).
    fn local_sdp(c: &Call) -> Vec<u8> {
        if let Some(sdp) = &c.local_sdp {
            return sdp.clone().into_bytes();
        }
        match &c.role {
            Role::Uas { answer_sdp, .. } => answer_sdp.clone().into_bytes(),
            Role::Uac { invite, .. } => invite.body.clone(),
        }
    }

    fn on_stray(&mut self, resp: &rsip::Response) {
        // A retransmitted 2xx to our INVITE: the ACK got lost, send it again.
        let call_id = header_value(resp, "Call-ID").unwrap_or_default();
        if let Some(c) = self.calls.get(&call_id)
            && let Role::Uac { ack: Some(ack), .. } = &c.role
        {
            self.send(c.next_hop(), &SipMessage::Request(ack.as_ref().clone()));
        }
    }

    /// The peer ended the call (BYE, CANCEL): an inbound call we have not answered yet gets
    /// 487 to its INVITE.
    fn terminate(&mut self, call_id: &str) {
        self.end_call(call_id, 487, "Request Terminated");
    }

    /// Ends a call here; an inbound call we have not answered yet gets `code` to its INVITE.
    fn end_call(&mut self, call_id: &str, code: u16, reason: &str) {
        if let Some(c) = self.take_call(call_id) {
            if let Role::Uas {
                invite,
                key,
                answered: false,
                ..
            } = &c.role
            {
                let (invite, key) = (invite.clone(), key.clone());
                self.respond(&key, &invite, code, reason);
            }
            c.shared.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_addresses() {
        assert_eq!(
            contact_addr("sip:1001@127.0.0.1:5070;transport=udp"),
            Some("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            contact_addr("<sip:1001@10.0.0.2>"),
            Some("10.0.0.2:5060".parse().unwrap())
        );
        assert_eq!(contact_addr("sip:1001@phone.example"), None);
    }

    #[test]
    fn user_part_of_uris() {
        assert_eq!(user_of_uri("sip:8000@127.0.0.1:5060"), "8000");
        assert_eq!(user_of_uri("<sip:+3361@host;user=phone>"), "+3361");
        assert_eq!(user_of_uri("sip:host.example"), "host.example");
        assert_eq!(user_of_uri("tel:+33612345678"), "+33612345678");
    }
}
