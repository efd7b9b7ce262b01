//! The user agent: one task that owns the transaction table, the calls' dialogs and the
//! registrar, fed by the transports and by commands from call legs and the dialer. Server side:
//! route points answer INVITEs, REGISTER binds agents' phones, OPTIONS/INFO/BYE/CANCEL are
//! handled, everything else gets the right 4xx/5xx. Client side: INVITEs to trunks and phones,
//! digest authentication on 401/407, CANCEL, BYE. The state machines it drives do no I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::message::HasHeaders;
use rsip::{Header, SipMessage};
use tokio::sync::{mpsc, oneshot, watch};

use super::auth_guard::{FailureGuard, NonceRefusal, NonceUses};
use super::deadlines::Deadlines;
use super::dialog::Dialog;
use super::digest;
use super::message::{self, header_value, header_values, random_token, response_with_tag};
use super::overload::{HeapTrim, ShedMemory};
use super::registrar::{Binding, ContactLease, Registrar, RegistrarConfig};
use super::session_timer::{MIN_SE, RefreshMethod, Refresher, SessionTimer, TimerAction};
use super::time::SipClock;
use super::transaction::{Event, Routed, Timers, TransactionKey, Transactions, TwoXxRetransmitter};
use super::transport::{Peer, Received, Transport, TransportLimits, Transports, error_response};
use crate::media::dtmf::parse_info;
use crate::media::sdp::{self, Negotiated};
use crate::media::session::{DigitBuffer, MediaSession};

/// Methods we implement (Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, UPDATE";
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

/// What the engine does with calls and registrations.
pub trait CallHandler: Send + Sync {
    /// True when `number` is a route point.
    fn serves(&self, number: &str) -> bool;
    /// A new inbound call to `number`, with the caller's SDP offer.
    fn incoming(&self, call: IncomingCall);
    /// An agent's phone (SIP user) registered (`true`) or lost its last binding.
    fn registration(&self, user: &str, registered: bool);
    /// True when `user` may register here (an agent's SIP user); others get 404 and leave no
    /// state. Default: everyone.
    fn knows_user(&self, _user: &str) -> bool {
        true
    }
    /// A phone's bindings changed (none left: it is gone), to keep them across restarts.
    /// Default: not kept.
    fn registration_changed(&self, _registration: PhoneRegistration) {}
}

/// An inbound call handed to the engine, not yet answered.
pub struct IncomingCall {
    /// Call-ID (the key of every later command).
    pub call_id: String,
    /// Calling user (From user part).
    pub ani: String,
    /// Dialled number (Request-URI user part).
    pub dnis: String,
    /// The caller's SDP offer; empty when the INVITE had none (then the 200 must offer, and
    /// the answer arrives with the ACK through [`LegShared`]).
    pub offer: String,
    /// Shared with the leg: hang-up signal and key presses from SIP INFO.
    pub shared: Arc<LegShared>,
}

/// State the user agent and a call leg share.
pub struct LegShared {
    /// Becomes true when the call ends.
    pub ended: watch::Sender<bool>,
    /// Key presses (INFO here; RTP events and tones in the media session).
    pub digits: Arc<DigitBuffer>,
    /// True while the peer holds the call (its last offer was sendonly or inactive), so
    /// flows and statistics can see hold and resume.
    pub held: watch::Sender<bool>,
    /// The leg's RTP session, told of new offers inside the call (hold, resume, new address).
    media: OnceLock<Weak<MediaSession>>,
}

impl std::fmt::Debug for LegShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegShared")
            .field("ended", &*self.ended.borrow())
            .field("held", &*self.held.borrow())
            .finish_non_exhaustive()
    }
}

impl LegShared {
    /// A fresh shared state.
    pub fn new() -> Arc<Self> {
        Arc::new(LegShared {
            ended: watch::channel(false).0,
            digits: Arc::new(DigitBuffer::default()),
            held: watch::channel(false).0,
            media: OnceLock::new(),
        })
    }

    /// Marks the call ended.
    pub fn end(&self) {
        self.ended.send_replace(true);
    }

    /// Connects the leg's RTP session, so offers inside the call reach it.
    pub fn attach_media(&self, media: &Arc<MediaSession>) {
        let _ = self.media.set(Arc::downgrade(media));
    }

    /// A new offer from the peer was accepted: hold or resume, and where to send.
    pub fn remote_offer(&self, n: &Negotiated) {
        if let Some(m) = self.media.get().and_then(Weak::upgrade) {
            m.update_remote(n);
        }
        self.set_held(n);
    }

    /// The peer's answer to our offer arrived late (in the ACK): codec, address, direction.
    pub fn remote_answer(&self, n: &Negotiated) {
        if let Some(m) = self.media.get().and_then(Weak::upgrade) {
            m.configure(n);
            m.update_remote(n);
        }
        self.set_held(n);
    }

    fn set_held(&self, n: &Negotiated) {
        self.held.send_if_modified(|held| {
            let changed = *held != n.on_hold();
            *held = n.on_hold();
            changed
        });
    }
}

/// Progress of an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacEvent {
    /// A provisional response (e.g. 180 Ringing).
    Progress(u16),
    /// Answered; the SDP answer.
    Answered(String),
    /// A final failure with its status (408 when nothing answered).
    Failed(u16),
}

/// An outbound INVITE to place.
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Request-URI, e.g. `sip:+33612345678@trunk.example:5060`.
    pub uri: String,
    /// Where to send it.
    pub peer: Peer,
    /// Our user part in From (caller id).
    pub from_user: String,
    /// SDP offer.
    pub sdp: String,
    /// Credentials for 401/407 challenges.
    pub credentials: Option<(String, String)>,
}

enum Cmd {
    Received(Received),
    Restore(Vec<PhoneRegistration>),
    Answer {
        call: String,
        sdp: String,
        done: oneshot::Sender<bool>,
    },
    Reject {
        call: String,
        code: u16,
        reason: &'static str,
    },
    Hangup {
        call: String,
    },
    Dial {
        req: DialRequest,
        events: mpsc::UnboundedSender<UacEvent>,
        shared: Arc<LegShared>,
        call_id: oneshot::Sender<String>,
        late_offer: bool,
    },
    Cancel {
        call: String,
    },
    Lookup {
        user: String,
        reply: oneshot::Sender<Option<(String, Peer)>>,
    },
    /// Refuse new inbound calls from now on (graceful shutdown).
    Drain,
    /// How many calls are up or being set up.
    Count(oneshot::Sender<usize>),
    /// Ends every call (end of the shutdown drain); replies how many there were.
    HangupAll(oneshot::Sender<usize>),
}

/// A handle on the running user agent.
#[derive(Clone)]
pub struct UaHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    /// The address put in Contact, Via and SDP.
    pub public_ip: IpAddr,
    transports: Arc<Transports>,
    metrics: Arc<crate::ops::metrics::SipMetrics>,
}

impl UaHandle {
    /// Answers an inbound call with `sdp`; false if the call is gone.
    pub async fn answer(&self, call: &str, sdp: String) -> bool {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Answer {
            call: call.to_string(),
            sdp,
            done,
        });
        rx.await.unwrap_or(false)
    }

    /// Refuses an unanswered inbound call.
    pub fn reject(&self, call: &str, code: u16, reason: &'static str) {
        let _ = self.tx.send(Cmd::Reject {
            call: call.to_string(),
            code,
            reason,
        });
    }

    /// Ends a call: BYE when answered, a final response or CANCEL when not.
    pub fn hang_up(&self, call: &str) {
        let _ = self.tx.send(Cmd::Hangup {
            call: call.to_string(),
        });
    }

    /// Places an outbound INVITE; events arrive on the returned receiver.
    pub async fn dial(
        &self,
        req: DialRequest,
        shared: Arc<LegShared>,
    ) -> Option<(String, mpsc::UnboundedReceiver<UacEvent>)> {
        self.dial_with(req, shared, false).await
    }

    /// Places an outbound INVITE without SDP (late offer, for trunks that want to offer): the
    /// callee's 200 carries the offer, answered in the ACK from `req.sdp`'s address, and
    /// [`UacEvent::Answered`] gives that offer.
    pub async fn dial_late_offer(
        &self,
        req: DialRequest,
        shared: Arc<LegShared>,
    ) -> Option<(String, mpsc::UnboundedReceiver<UacEvent>)> {
        self.dial_with(req, shared, true).await
    }

    async fn dial_with(
        &self,
        req: DialRequest,
        shared: Arc<LegShared>,
        late_offer: bool,
    ) -> Option<(String, mpsc::UnboundedReceiver<UacEvent>)> {
        let (events, rx) = mpsc::unbounded_channel();
        let (call_id, id_rx) = oneshot::channel();
        self.tx
            .send(Cmd::Dial {
                req,
                events,
                shared,
                call_id,
                late_offer,
            })
            .ok()?;
        Some((id_rx.await.ok()?, rx))
    }

    /// Cancels an outbound call that has not been answered.
    pub fn cancel(&self, call: &str) {
        let _ = self.tx.send(Cmd::Cancel {
            call: call.to_string(),
        });
    }

    /// Puts back registrations kept across a restart (their users register again, as far as
    /// the handler is told); contacts with no time left are dropped.
    pub fn restore(&self, registrations: Vec<PhoneRegistration>) {
        let _ = self.tx.send(Cmd::Restore(registrations));
    }

    /// The registered contact of a SIP user and where its REGISTER came from.
    pub async fn lookup(&self, user: &str) -> Option<(String, Peer)> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Lookup {
                user: user.to_string(),
                reply,
            })
            .ok()?;
        rx.await.ok().flatten()
    }

    /// Counters of the messages passing through, for `/metrics`.
    pub fn metrics(&self) -> Arc<crate::ops::metrics::SipMetrics> {
        self.metrics.clone()
    }

    /// From now on refuses every new inbound call with 503 and Retry-After (graceful
    /// shutdown); calls already up go on.
    pub fn drain(&self) {
        let _ = self.tx.send(Cmd::Drain);
    }

    /// Calls (both directions) up or being set up; 0 once the user agent is gone.
    pub async fn active_calls(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::Count(reply)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Ends every call (BYE when answered, a final response or CANCEL when not); how many.
    pub async fn hang_up_all(&self) -> usize {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::HangupAll(reply)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    /// Local listener addresses (UDP, TCP).
    pub fn local_addrs(&self) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
        (
            self.transports.udp_addrs().to_vec(),
            self.transports.tcp_addrs().to_vec(),
        )
    }
}

/// An agent phone's registration, as the user agent reports it and takes it back at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRegistration {
    /// SIP user.
    pub user: String,
    /// Address-of-record.
    pub aor: String,
    /// Where its REGISTER came from (calls go there when the contact is not reachable).
    pub source: Peer,
    /// Its contacts, each with the seconds it has left; empty when the phone is gone.
    pub contacts: Vec<ContactLease>,
}

/// User-agent settings.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// UDP listeners.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// Address in Contact/Via/SDP; default: the first listener's (or 127.0.0.1 when wildcard).
    pub public_ip: Option<IpAddr>,
    /// Host name put in Contact and Via instead of `public_ip` (which stays in SDP).
    pub public_name: Option<String>,
    /// Registration interval limits.
    pub registrar: RegistrarConfig,
    /// Digest authentication of REGISTER: the realm and each SIP user's password.
    pub register_auth: Option<RegisterAuth>,
    /// Challenge REGISTER (with `register_auth`'s passwords).
    pub authenticate_register: bool,
    /// Challenge INVITEs whose From user is one of those SIP users (agents' phones).
    pub authenticate_invite: bool,
    /// Longest session interval we grant (RFC 4028); callers that support timers get it.
    pub session_expires: u32,
    /// Overload and size limits.
    pub limits: UaLimits,
}

/// Bounds on what callers may make the user agent hold, so overload is shed with 503 instead
/// of piling up calls until RTP ports and descriptors run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UaLimits {
    /// Calls (both directions) at once; a new INVITE beyond it gets 503 with Retry-After.
    pub max_calls: usize,
    /// Inbound calls not yet answered at once; a new INVITE beyond it gets 503.
    pub max_setup_calls: usize,
    /// A new INVITE that waited longer than this between the socket and the user agent (the
    /// engine is behind) gets 503 at once; zero turns the check off.
    pub max_queue_delay: Duration,
    /// Seconds in the Retry-After of those 503s.
    pub retry_after: u32,
    /// Message size, TCP timeouts and connection caps.
    pub transport: TransportLimits,
}

impl Default for UaLimits {
    fn default() -> Self {
        UaLimits {
            max_calls: 2000,
            max_setup_calls: 200,
            max_queue_delay: Duration::from_millis(250),
            retry_after: 5,
            transport: TransportLimits::default(),
        }
    }
}

/// Who may register, when REGISTER is challenged.
#[derive(Clone)]
pub struct RegisterAuth {
    /// Digest realm.
    pub realm: String,
    /// SIP user → password.
    pub passwords: HashMap<String, String>,
    /// Dates the nonces we hand out, so their age is judged on the engine's clock.
    pub clock: crate::clock::SharedClock,
    /// Offer a SHA-256 challenge beside MD5 (some phones, e.g. baresip 1.0, then give up).
    pub offer_sha256: bool,
}

impl std::fmt::Debug for RegisterAuth {
    // Never prints the passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterAuth")
            .field("realm", &self.realm)
            .field("users", &self.passwords.len())
            .finish_non_exhaustive()
    }
}

/// Starts the transports and the user-agent task on the system clock.
pub async fn start(config: UaConfig, handler: Arc<dyn CallHandler>) -> std::io::Result<UaHandle> {
    start_with_clock(config, handler, crate::clock::SystemClock::shared()).await
}

/// Starts the transports and the user-agent task, every timer on `clock` (virtual time in
/// tests and the simulator).
pub async fn start_with_clock(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    clock: crate::clock::SharedClock,
) -> std::io::Result<UaHandle> {
    let time = SipClock::new(clock);
    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    let transports = Transports::bind(
        &config.udp,
        &config.tcp,
        in_tx,
        config.limits.transport.clone(),
        time.clone(),
    )
    .await?;
    let first = transports
        .udp_addrs()
        .first()
        .or(transports.tcp_addrs().first())
        .copied();
    let public_ip = config.public_ip.unwrap_or(match first {
        Some(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let fwd = tx.clone();
    tokio::spawn(async move {
        while let Some(r) = in_rx.recv().await {
            if fwd.send(Cmd::Received(r)).is_err() {
                return;
            }
        }
    });
    let digest_key: [u8; 32] = rand::random();
    let metrics = Arc::new(crate::ops::metrics::SipMetrics::default());
    let actor = Actor {
        uac_keys: HashMap::new(),
        refresh_keys: HashMap::new(),
        session_timers: Deadlines::default(),
        unacked: Deadlines::default(),
        register_auth: config.register_auth.clone(),
        authenticate_invite: config.authenticate_invite,
        authenticate_register: config.authenticate_register,
        session_expires: config.session_expires.max(MIN_SE),
        limits: config.limits.clone(),
        draining: false,
        metrics: metrics.clone(),
        setting_up: std::collections::HashSet::new(),
        shed: ShedMemory::default(),
        trim: HeapTrim::default(),
        malformed_log: crate::throttle::LogThrottle::new(10, std::time::Duration::from_secs(10)),
        shed_log: crate::throttle::LogThrottle::new(1, std::time::Duration::from_secs(10)),
        public_name: config.public_name.clone(),
        digest: digest::DigestServer::new(digest_key.to_vec(), chrono::TimeDelta::seconds(300)),
        nonce_uses: NonceUses::default(),
        auth_failures: FailureGuard::default(),
        txns: Transactions::new(Timers::default()),
        timers: Timers::default(),
        peers: HashMap::new(),
        calls: HashMap::new(),
        registrar: Registrar::new(config.registrar),
        sources: HashMap::new(),
        transports: transports.clone(),
        handler,
        public_ip,
        time,
    };
    tokio::spawn(actor.run(rx));
    Ok(UaHandle {
        tx,
        public_ip,
        transports,
        metrics,
    })
}

enum Role {
    Uas {
        invite: rsip::Request,
        key: TransactionKey,
        to_tag: String,
        answered: bool,
        twoxx: Option<TwoXxRetransmitter>,
        answer_sdp: String,
        /// RFC 4028 session timer agreed with the caller, started when we answer.
        session_timer: TimerAsk,
        /// We offered in our 200 (the INVITE had no SDP): the ACK must bring the answer.
        awaiting_answer: bool,
    },
    Uac {
        invite: rsip::Request,
        key: TransactionKey,
        events: mpsc::UnboundedSender<UacEvent>,
        credentials: Option<(String, String)>,
        auth_tried: bool,
        answered: bool,
        ack: Option<rsip::Request>,
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
}

/// Reason phrase of the statuses a refused offer inside a call gets.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        481 => "Call/Transaction Does Not Exist",
        _ => "Not Acceptable Here",
    }
}

/// What a request (INVITE, re-INVITE or UPDATE) we answer says about session timers, and what
/// we grant (RFC 4028 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerAsk {
    /// No timer: neither asked for nor supported.
    Off,
    /// Below Min-SE: 422.
    TooSmall,
    /// Granted: this interval, this refresher; `require` when the peer supports timers (then
    /// the 2xx carries `Require: timer`).
    Agreed {
        interval: u32,
        refresher: Refresher,
        require: bool,
    },
}

/// The interval and `refresher` parameter of a Session-Expires header (or compact `x`).
fn session_expires(msg: &impl HasHeaders) -> Option<(u32, Option<String>)> {
    let v = header_value(msg, "Session-Expires").or_else(|| header_value(msg, "x"))?;
    let mut parts = v.split(';');
    let n = parts.next()?.trim().parse::<u32>().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((n, refresher))
}

/// True when a comma-separated header (Supported, Allow…) lists `option`.
fn lists(msg: &impl HasHeaders, names: &[&str], option: &str) -> bool {
    names.iter().any(|name| {
        header_values(msg, name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|o| o.trim().eq_ignore_ascii_case(option))
    })
}

/// Session-timer negotiation as the UAS of `req`: a longer request is shortened to `max`, a
/// caller that supports timers without asking gets `max`; the peer refreshes unless it asked
/// us to (`refresher=uas`) or cannot (no `Supported: timer`).
fn negotiate_timer(req: &rsip::Request, max: u32) -> TimerAsk {
    let supports = lists(req, &["Supported", "k"], "timer");
    let asked = session_expires(req);
    let interval = match &asked {
        Some((n, _)) if *n < MIN_SE => return TimerAsk::TooSmall,
        Some((n, _)) => (*n).min(max),
        None if supports => max,
        None => return TimerAsk::Off,
    };
    let refresher = match asked.and_then(|(_, r)| r).as_deref() {
        Some("uas") => Refresher::Us,
        Some("uac") if supports => Refresher::Peer,
        _ if supports => Refresher::Peer,
        _ => Refresher::Us,
    };
    TimerAsk::Agreed {
        interval,
        refresher,
        require: supports,
    }
}

/// 420 naming the extensions a request requires that we do not support (RFC 3261 §8.2.2.3):
/// session timers (RFC 4028) are the one we do.
fn bad_extension(req: &rsip::Request) -> Option<rsip::Response> {
    let required = header_value(req, "Require")?;
    let unsupported: Vec<&str> = required
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.eq_ignore_ascii_case("timer"))
        .collect();
    if unsupported.is_empty() {
        return None;
    }
    let mut resp = message::response_for(req, 420, "Bad Extension");
    resp.headers
        .push(Header::Other("Unsupported".into(), unsupported.join(", ")));
    Some(resp)
}

/// Adds the Session-Expires (and Require) headers that confirm `ask` in our 2xx.
fn push_timer_headers(headers: &mut rsip::Headers, ask: TimerAsk) {
    if let TimerAsk::Agreed {
        interval,
        refresher,
        require,
    } = ask
    {
        // The refresher parameter names a side of the request being answered: the peer is its UAC.
        let who = if refresher == Refresher::Peer {
            "uac"
        } else {
            "uas"
        };
        headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher={who}"),
        ));
        if require {
            headers.push(Header::Other("Require".into(), "timer".into()));
        }
    }
}

/// The 422 for an interval below Min-SE.
fn too_small(req: &rsip::Request) -> rsip::Response {
    let mut resp = message::response_for(req, 422, "Session Interval Too Small");
    resp.headers
        .push(Header::Other("Min-SE".into(), MIN_SE.to_string()));
    resp
}

/// How we refresh a peer: UPDATE when its Allow lists it, else re-INVITE.
fn refresh_method(msg: &impl HasHeaders) -> RefreshMethod {
    if lists(msg, &["Allow"], "UPDATE") {
        RefreshMethod::Update
    } else {
        RefreshMethod::Invite
    }
}

struct Actor {
    /// Our INVITE client transactions → their call, so responses find the call directly.
    uac_keys: HashMap<TransactionKey, String>,
    /// Our session refreshes (UPDATE / re-INVITE) in flight → their call; true once answered.
    refresh_keys: HashMap<TransactionKey, (String, bool)>,
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
    /// Shutting down: new inbound calls get 503.
    draining: bool,
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
    digest: digest::DigestServer,
    /// Nonce uses (replay) and failed attempts per user and source (guessing).
    nonce_uses: NonceUses,
    auth_failures: FailureGuard,
    txns: Transactions,
    timers: Timers,
    peers: HashMap<TransactionKey, Peer>,
    calls: HashMap<String, Call>,
    registrar: Registrar,
    /// Where each registered user's REGISTER came from (we send its calls there: NAT-safe).
    sources: HashMap<String, Peer>,
    transports: Arc<Transports>,
    handler: Arc<dyn CallHandler>,
    public_ip: IpAddr,
    /// Every read of the time and every sleep (the injected clock).
    time: SipClock,
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

impl Actor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            let wake = self.next_wake();
            let time = self.time.clone();
            let sleep = async move {
                match wake {
                    Some(at) => time.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(c) => self.on_cmd(c),
                    None => return,
                },
                _ = sleep => self.on_timeout(),
            }
            self.pump();
            if self
                .trim
                .due(self.time.now(), self.txns.len() + self.calls.len())
            {
                self.shrink_to_fit();
                tokio::task::spawn_blocking(crate::ops::heap::release_free);
            }
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
            .chain(self.unacked.next())
            .chain(self.registrar.next_expiry())
            .chain(self.session_timers.next())
            .chain(self.trim.wake())
            .min()
    }

    fn on_timeout(&mut self) {
        let now = self.time.now();
        self.txns.handle_timeout(now);
        let mut dead = Vec::new();
        while let Some(id) = self.unacked.pop_due(now) {
            let Some(c) = self.calls.get_mut(&id) else {
                continue;
            };
            let Role::Uas { twoxx: Some(t), .. } = &mut c.role else {
                continue;
            };
            t.handle_timeout(now);
            while let Some(m) = t.poll_transmit() {
                self.transports.send(c.peer, message::to_bytes(&m));
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
            self.end_call(&id, true);
        }
        self.on_session_timers(now);
        for aor in self.registrar.expire(now) {
            let user = user_of_uri(&aor);
            if let Some(source) = self.sources.remove(&user) {
                self.handler.registration_changed(PhoneRegistration {
                    user: user.clone(),
                    aor,
                    source,
                    contacts: Vec::new(),
                });
            }
            self.handler.registration(&user, false);
        }
    }

    fn send(&self, peer: Peer, msg: &SipMessage) {
        self.transports.send(peer, message::to_bytes(msg));
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
                continue;
            }
            if self.refresh_keys.contains_key(&key) {
                self.on_refresh_event(&key, ev);
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
        let port = self
            .transports
            .local_for(transport)
            .map(|a| a.port())
            .unwrap_or(5060);
        format!("SIP/2.0/{} {}:{port}", transport.via_name(), self.host())
    }

    fn host(&self) -> String {
        if let Some(name) = &self.public_name {
            return name.clone();
        }
        match self.public_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }
    }

    fn contact(&self, transport: Transport) -> String {
        let port = self
            .transports
            .local_for(transport)
            .map(|a| a.port())
            .unwrap_or(5060);
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
        if let Err(e) = self.txns.send_response(self.time.now(), key, resp) {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Received(r) => self.on_received(r),
            Cmd::Answer { call, sdp, done } => {
                let _ = done.send(self.answer(&call, sdp));
            }
            Cmd::Reject { call, code, reason } => {
                if let Some(c) = self.take_call(&call) {
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
            Cmd::Hangup { call } => self.hang_up(&call),
            Cmd::Drain => self.draining = true,
            Cmd::Count(reply) => {
                let _ = reply.send(self.calls.len());
            }
            Cmd::HangupAll(reply) => {
                let ids: Vec<String> = self.calls.keys().cloned().collect();
                for id in &ids {
                    self.hang_up(id);
                }
                let _ = reply.send(ids.len());
            }
            Cmd::Dial {
                req,
                events,
                shared,
                call_id,
                late_offer,
            } => {
                let id = self.dial(req, events, shared, late_offer);
                let _ = call_id.send(id);
            }
            Cmd::Cancel { call } => self.cancel(&call),
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

    fn registrar_aor_of_user(&self, user: &str) -> Option<String> {
        self.registrar
            .aors()
            .into_iter()
            .find(|aor| user_of_uri(aor) == user)
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
                    self.time.now(),
                    info!(from = %r.peer.addr, error = %e, "malformed SIP message")
                );
                if let Some(b) = error_response(&r.bytes, e.status(), &e.reason_phrase()) {
                    self.transports.send(r.peer, b);
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
        if self.shed_invite(
            &msg,
            r.peer,
            self.time.now().saturating_duration_since(r.at),
        ) {
            return;
        }
        let now = self.time.now();
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
        let method = req.method.to_string();
        match req.method {
            rsip::Method::Invite => self.on_invite(key, req, peer, call_id),
            rsip::Method::Bye => {
                if self.calls.contains_key(&call_id) {
                    self.respond(&key, &req, 200, "OK");
                    self.end_call(&call_id, false);
                } else {
                    self.respond(&key, &req, 481, "Call/Transaction Does Not Exist");
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
                        if let Some(c) = self.take_call(&id) {
                            if let Role::Uas {
                                invite, key: ik, ..
                            } = &c.role
                            {
                                let (invite, ik) = (invite.clone(), ik.clone());
                                self.respond(&ik, &invite, 487, "Request Terminated");
                            }
                            c.shared.end();
                        }
                    }
                    None => self.respond(&key, &req, 481, "Call/Transaction Does Not Exist"),
                }
            }
            rsip::Method::Info => {
                let Some(c) = self.calls.get(&call_id) else {
                    self.respond(&key, &req, 481, "Call/Transaction Does Not Exist");
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
                    Err(_) => self.respond(&key, &req, 415, "Unsupported Media Type"),
                }
            }
            rsip::Method::Update => self.on_in_dialog_offer(key, req, peer, call_id),
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

    fn on_invite(&mut self, key: TransactionKey, req: rsip::Request, peer: Peer, call_id: String) {
        let to = header_value(&req, "To").unwrap_or_default();
        if message::tag_of(&to).is_some() {
            self.on_in_dialog_offer(key, req, peer, call_id);
            return;
        }
        let hops = header_value(&req, "Max-Forwards")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(70);
        if hops == 0 {
            self.respond(&key, &req, 483, "Too Many Hops");
            return;
        }
        if let Some(resp) = bad_extension(&req) {
            self.respond_with(&key, resp);
            return;
        }
        let session_timer = negotiate_timer(&req, self.session_expires);
        if session_timer == TimerAsk::TooSmall {
            self.respond_with(&key, too_small(&req));
            return;
        }
        let caller = from_user(&req);
        if self.authenticate_invite
            && self
                .register_auth
                .as_ref()
                .is_some_and(|a| a.passwords.contains_key(&caller))
            && let Err(resp) = self.authenticate(&req, "From", "INVITE", peer)
        {
            self.respond_with(&key, resp);
            return;
        }
        let dnis = user_of_uri(&req.uri.to_string());
        if !self.handler.serves(&dnis) {
            self.respond(&key, &req, 404, "Not Found");
            return;
        }
        if self.calls.contains_key(&call_id) {
            self.respond(&key, &req, 482, "Loop Detected");
            return;
        }
        // Empty for an INVITE without SDP: we offer in the 200 and read the answer in the ACK.
        let offer = String::from_utf8_lossy(&req.body).to_string();
        let shared = LegShared::new();
        let ani = from_user(&req);
        self.setting_up.insert(call_id.clone());
        self.calls.insert(
            call_id.clone(),
            Call {
                peer,
                role: Role::Uas {
                    invite: req,
                    key,
                    to_tag: random_token(),
                    answered: false,
                    twoxx: None,
                    answer_sdp: String::new(),
                    session_timer,
                    awaiting_answer: false,
                },
                dialog: None,
                shared: shared.clone(),
                timer: None,
                local_sdp: None,
            },
        );
        self.handler.incoming(IncomingCall {
            call_id,
            ani,
            dnis,
            offer,
            shared,
        });
    }

    /// A re-INVITE or UPDATE from the peer (session refresh, hold, resume). A re-INVITE is
    /// answered with our SDP (mirroring its offer, or as an offer when it has none); an UPDATE
    /// only carries an answer when it brought an offer (RFC 3311).
    fn on_in_dialog_offer(
        &mut self,
        key: TransactionKey,
        req: rsip::Request,
        peer: Peer,
        call_id: String,
    ) {
        let invite = req.method == rsip::Method::Invite;
        // A re-INVITE needs the dialog (an answered call); an UPDATE may come before.
        if self
            .calls
            .get(&call_id)
            .is_none_or(|c| invite && c.dialog.is_none())
        {
            self.respond(&key, &req, 481, "Call/Transaction Does Not Exist");
            return;
        }
        let ask = negotiate_timer(&req, self.session_expires);
        if ask == TimerAsk::TooSmall {
            self.respond_with(&key, too_small(&req));
            return;
        }
        let offered = !req.body.is_empty();
        let sdp = match self.accept_offer(&call_id, &req) {
            Ok(sdp) => sdp,
            Err(code) => {
                self.respond(&key, &req, code, reason_of(code));
                return;
            }
        };
        let mut resp = message::response_for(&req, 200, "OK");
        if invite {
            resp.headers.push(Header::Other(
                "Contact".into(),
                self.contact(peer.transport),
            ));
        }
        push_timer_headers(&mut resp.headers, ask);
        if invite || offered {
            let (mut h, mut b) = (resp.headers.clone(), Vec::new());
            set_body(&mut h, &mut b, "application/sdp", sdp);
            resp.headers = h;
            resp.body = b;
        }
        self.respond_with(&key, resp);
        self.peer_refreshed(&call_id, &req, ask);
    }

    /// The SDP to answer a request inside the call with: for an offer (hold, resume, a new
    /// address) our SDP with the mirrored direction, which also becomes our current SDP and
    /// reaches the media session; without one, our current SDP. `Err` is the status to refuse
    /// the offer with (488 no usable audio, 400 unreadable).
    fn accept_offer(&mut self, call_id: &str, req: &rsip::Request) -> Result<Vec<u8>, u16> {
        let Some(c) = self.calls.get_mut(call_id) else {
            return Err(481);
        };
        let current = Self::local_sdp(c);
        if req.body.is_empty() {
            return Ok(current);
        }
        let offer = String::from_utf8_lossy(&req.body);
        let (answer, negotiated) = sdp::reanswer(&String::from_utf8_lossy(&current), &offer)
            .map_err(|e| {
                tracing::info!(call = call_id, error = %e, "offer inside the call refused");
                e.sip_status()
            })?;
        c.shared.remote_offer(&negotiated);
        c.local_sdp = Some(answer.clone());
        Ok(answer.into_bytes())
    }

    /// The peer's re-INVITE or UPDATE was accepted: it refreshes the session (or starts or
    /// stops its timer) from now.
    fn peer_refreshed(&mut self, call_id: &str, req: &rsip::Request, ask: TimerAsk) {
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let now = self.time.now();
        match (ask, c.timer.as_mut()) {
            (
                TimerAsk::Agreed {
                    interval,
                    refresher,
                    ..
                },
                Some(t),
            ) => t.refreshed(now, interval, refresher),
            (
                TimerAsk::Agreed {
                    interval,
                    refresher,
                    ..
                },
                None,
            ) if c.dialog.is_some() => {
                c.timer = Some(SessionTimer::new(
                    now,
                    interval,
                    refresher,
                    refresh_method(req),
                ))
            }
            _ => c.timer = None,
        }
        self.schedule_timer(call_id);
    }

    fn answer(&mut self, call: &str, sdp: String) -> bool {
        let contact = match self.calls.get(call) {
            Some(c) => self.contact(c.peer.transport),
            None => return false,
        };
        let timers = self.timers;
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let Role::Uas {
            invite,
            key,
            to_tag,
            answered,
            twoxx,
            answer_sdp,
            session_timer,
            awaiting_answer,
        } = &mut c.role
        else {
            return false;
        };
        *awaiting_answer = invite.body.is_empty();
        if *answered {
            return true;
        }
        let mut resp = response_with_tag(invite, 200, "OK", to_tag);
        push_timer_headers(&mut resp.headers, *session_timer);
        if let TimerAsk::Agreed {
            interval,
            refresher,
            ..
        } = *session_timer
        {
            c.timer = Some(SessionTimer::new(
                self.time.now(),
                interval,
                refresher,
                refresh_method(invite),
            ));
        }
        resp.headers
            .push(Header::Other("Contact".into(), contact.clone()));
        resp.headers
            .push(Header::Other("Allow".into(), ALLOW.into()));
        let (mut h, mut b) = (resp.headers.clone(), Vec::new());
        set_body(&mut h, &mut b, "application/sdp", sdp.clone().into_bytes());
        resp.headers = h;
        resp.body = b;
        *answered = true;
        *answer_sdp = sdp;
        self.setting_up.remove(call);
        c.dialog = Dialog::from_uas(invite, &resp, &contact).ok();
        if !c.peer.transport.reliable() {
            let t = TwoXxRetransmitter::new(self.time.now(), resp.clone(), timers);
            self.unacked.set(&call.to_string(), t.poll_timeout());
            *twoxx = Some(t);
        }
        let key = key.clone();
        self.respond_with(&key, resp);
        self.schedule_timer(call);
        true
    }

    /// Indexes the call's next session-timer deadline (replacing the one indexed before), so
    /// the index holds one entry per live call with a timer.
    fn schedule_timer(&mut self, call: &str) {
        let at = self
            .calls
            .get(call)
            .and_then(|c| c.timer.as_ref())
            .and_then(SessionTimer::poll_timeout);
        self.session_timers.set(&call.to_string(), at);
    }

    /// Answers a new INVITE with 503 + Retry-After when the engine is overloaded, statelessly
    /// (RFC 3261 §8.2.7): no transaction, call or media is kept for it, and a retransmission
    /// gets the same 503. True when it was shed.
    fn shed_invite(&mut self, msg: &SipMessage, peer: Peer, waited: Duration) -> bool {
        let SipMessage::Request(req) = msg else {
            return false;
        };
        if req.method != rsip::Method::Invite
            || header_value(req, "To").is_none_or(|to| message::tag_of(&to).is_some())
        {
            return false;
        }
        // The common case (not overloaded, nothing shed lately) costs no transaction key.
        let overload = self.overloaded(waited);
        if overload.is_none() && self.shed.is_empty() {
            return false;
        }
        let Some(key) = TransactionKey::of(msg) else {
            return false;
        };
        if self.txns.contains(&key) {
            return false;
        }
        let id = ShedMemory::id(&key);
        if !self.shed.contains(id) {
            let Some(why) = overload else {
                return false;
            };
            crate::throttled!(
                self.shed_log,
                self.time.now(),
                warn!(
                    call = %header_value(req, "Call-ID").unwrap_or_default(),
                    limit = why,
                    waited_ms = waited.as_millis() as u64,
                    "overload: new INVITE refused with 503"
                )
            );
            self.metrics.refused(why);
            self.shed.insert(id);
        }
        let mut resp = response_with_tag(req, 503, "Service Unavailable", &format!("{id:016x}"));
        resp.headers.push(Header::Other(
            "Retry-After".into(),
            self.limits.retry_after.to_string(),
        ));
        self.send(peer, &SipMessage::Response(resp));
        true
    }

    /// Why a new inbound call must be refused now (`max_queue_delay` exceeded by this INVITE's
    /// wait, `max_calls` or `max_setup_calls` reached), or `None` when it may come in. Calls
    /// set up and since answered or gone are forgotten only when the limit seems reached, so
    /// the check costs nothing below it.
    fn overloaded(&mut self, waited: Duration) -> Option<&'static str> {
        if self.draining {
            return Some("draining");
        }
        if !self.limits.max_queue_delay.is_zero() && waited > self.limits.max_queue_delay {
            return Some("max_queue_delay");
        }
        if self.calls.len() >= self.limits.max_calls {
            return Some("max_calls");
        }
        if self.setting_up.len() >= self.limits.max_setup_calls {
            let calls = &self.calls;
            self.setting_up.retain(|id| {
                calls.get(id).is_some_and(|c| {
                    matches!(
                        c.role,
                        Role::Uas {
                            answered: false,
                            ..
                        }
                    )
                })
            });
            if self.setting_up.len() >= self.limits.max_setup_calls {
                return Some("max_setup_calls");
            }
        }
        None
    }

    /// Removes a call, and its session-timer deadline from the index.
    fn take_call(&mut self, id: &str) -> Option<Call> {
        self.setting_up.remove(id);
        let c = self.calls.remove(id)?;
        self.session_timers.remove(id);
        self.unacked.remove(id);
        Some(c)
    }

    /// Fires the session timers due at `now`: refreshes to send, sessions to end.
    fn on_session_timers(&mut self, now: Instant) {
        while let Some(id) = self.session_timers.pop_due(now) {
            let Some(t) = self.calls.get_mut(&id).and_then(|c| c.timer.as_mut()) else {
                continue;
            };
            let action = t.handle_timeout(now);
            self.schedule_timer(&id);
            match action {
                Some(TimerAction::Bye) => {
                    tracing::info!(call = %id, "session expired without refresh (RFC 4028): BYE");
                    self.hang_up(&id);
                }
                Some(TimerAction::Refresh(method, interval)) => {
                    self.send_refresh(&id, method, interval)
                }
                None => {}
            }
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

    /// Sends a session refresh (RFC 4028 §7.4) as the refresher.
    fn send_refresh(&mut self, id: &str, method: RefreshMethod, interval: u32) {
        let Some(c) = self.calls.get(id) else {
            return;
        };
        let via = self.via(c.peer.transport);
        let peer = c.peer;
        let sdp = Self::local_sdp(c);
        let Some(c) = self.calls.get_mut(id) else {
            return;
        };
        let Some(d) = c.dialog.as_mut() else {
            return;
        };
        let mut req = match method {
            RefreshMethod::Update => d.request(rsip::Method::Update, &via, None),
            RefreshMethod::Invite => d.reinvite(&via, sdp),
        };
        req.headers.push(Header::Other(
            "Session-Expires".into(),
            format!("{interval};refresher=uac"),
        ));
        req.headers
            .push(Header::Other("Supported".into(), "timer".into()));
        match self
            .txns
            .start_client(self.time.now(), req, peer.transport.reliable())
        {
            Ok(key) => {
                self.peers.insert(key.clone(), peer);
                self.refresh_keys.insert(key, (id.to_string(), false));
            }
            Err(e) => tracing::debug!(call = id, error = %e, "session refresh not sent"),
        }
    }

    /// What became of a refresh we sent.
    fn on_refresh_event(&mut self, key: &TransactionKey, ev: Event) {
        let Some((id, answered)) = self.refresh_keys.get(key).cloned() else {
            return;
        };
        let Some(c) = self.calls.get(&id) else {
            return;
        };
        let via = self.via(c.peer.transport);
        let peer = c.peer;
        let is_invite = key.method == "INVITE";
        let (code, resp) = match ev {
            Event::Response(r) => (r.status_code.code(), Some(r)),
            Event::TimedOut | Event::TransportError => (408, None),
            _ => return,
        };
        if code < 200 {
            return;
        }
        let action = if (200..300).contains(&code) {
            let resp = resp.as_ref();
            if is_invite
                && let (Some(d), Some(r)) =
                    (self.calls.get(&id).and_then(|c| c.dialog.as_ref()), resp)
            {
                // Every 2xx to our re-INVITE is acknowledged, retransmissions too.
                let seq = message::cseq(r).map(|(n, _)| n).unwrap_or(1);
                self.send(peer, &SipMessage::Request(d.ack(seq, &via, None)));
            }
            if answered {
                return;
            }
            self.refresh_keys.insert(key.clone(), (id.clone(), true));
            let agreed = resp.and_then(session_expires);
            if let Some(c) = self.calls.get_mut(&id) {
                match agreed {
                    Some((n, r)) => {
                        // refresher=uac names us, the sender of the refresh.
                        let who = if r.as_deref() == Some("uas") {
                            Refresher::Peer
                        } else {
                            Refresher::Us
                        };
                        if let Some(t) = c.timer.as_mut() {
                            t.refreshed(self.time.now(), n.max(MIN_SE), who);
                        }
                    }
                    // No Session-Expires in the 2xx: the peer turned timers off (§7.4).
                    None => c.timer = None,
                }
            }
            None
        } else {
            let min_se = resp
                .as_ref()
                .and_then(|r| header_value(r, "Min-SE"))
                .and_then(|v| v.split(';').next().and_then(|n| n.trim().parse().ok()));
            self.calls
                .get_mut(&id)
                .and_then(|c| c.timer.as_mut())
                .and_then(|t| t.refresh_failed(code, min_se))
        };
        self.schedule_timer(&id);
        match action {
            Some(TimerAction::Bye) => {
                tracing::info!(call = %id, code, "session refresh failed (RFC 4028): BYE");
                self.hang_up(&id);
            }
            Some(TimerAction::Refresh(method, interval)) => {
                self.send_refresh(&id, method, interval)
            }
            None => {}
        }
    }

    fn on_ack(&mut self, req: &rsip::Request) {
        let call_id = header_value(req, "Call-ID").unwrap_or_default();
        let Some(c) = self.calls.get_mut(&call_id) else {
            return;
        };
        let Role::Uas {
            twoxx,
            awaiting_answer,
            ..
        } = &mut c.role
        else {
            return;
        };
        if let Some(t) = twoxx.as_mut() {
            t.ack_received();
            *twoxx = None;
            // Out of the retransmission index at once.
            self.unacked.remove(call_id.as_str());
        }
        if std::mem::take(awaiting_answer) {
            // The answer to the offer in our 200; without a usable one there is no media
            // to talk with, so the call ends (RFC 3261 §13.3.1.4).
            match sdp::parse_answer(&String::from_utf8_lossy(&req.body)) {
                Ok(n) => c.shared.remote_answer(&n),
                Err(e) => {
                    tracing::info!(call = %call_id, error = %e, "no usable answer in the ACK: BYE");
                    self.hang_up(&call_id);
                }
            }
        }
    }

    fn on_stray(&mut self, resp: &rsip::Response) {
        // A retransmitted 2xx to our INVITE: the ACK got lost, send it again.
        let call_id = header_value(resp, "Call-ID").unwrap_or_default();
        if let Some(c) = self.calls.get(&call_id)
            && let Role::Uac { ack: Some(ack), .. } = &c.role
        {
            self.send(c.peer, &SipMessage::Request(ack.clone()));
        }
    }

    /// The call ends: `local` when we decided it (no signal is needed towards the leg's owner
    /// beyond the ended flag).
    fn end_call(&mut self, call_id: &str, local: bool) {
        if let Some(c) = self.take_call(call_id) {
            if local {
                tracing::debug!(call = call_id, "call ended locally");
            }
            c.shared.end();
        }
    }

    fn hang_up(&mut self, call: &str) {
        let Some(mut c) = self.take_call(call) else {
            return;
        };
        c.shared.end();
        let via = self.via(c.peer.transport);
        match &c.role {
            Role::Uas {
                answered: false,
                invite,
                key,
                ..
            } => {
                let (invite, key) = (invite.clone(), key.clone());
                self.respond(&key, &invite, 480, "Temporarily Unavailable");
            }
            Role::Uac {
                answered: false, ..
            } => {
                self.calls.insert(call.to_string(), c);
                self.cancel(call);
            }
            _ => {
                if let Some(d) = c.dialog.as_mut() {
                    let bye = d.bye(&via);
                    let now = self.time.now();
                    if let Ok(key) = self
                        .txns
                        .start_client(now, bye, c.peer.transport.reliable())
                    {
                        self.peers.insert(key, c.peer);
                    }
                }
            }
        }
    }

    /// Digest check of a REGISTER: `Err` carries the response to send instead (401 with a
    /// challenge, or 403 when the credentials belong to someone else).
    fn authenticate_register(
        &mut self,
        req: &rsip::Request,
        peer: Peer,
    ) -> Result<(), rsip::Response> {
        if !self.authenticate_register {
            return Ok(());
        }
        self.authenticate(req, "To", "REGISTER", peer)
    }

    /// Digest check of a request whose `who` header (To for REGISTER, From for INVITE) names
    /// the user who must prove it, from `peer`. A replayed nonce use and every failure count
    /// against the user and the source address; a blocked one gets 503 with Retry-After and is
    /// not verified (see `auth_guard`).
    fn authenticate(
        &mut self,
        req: &rsip::Request,
        who: &str,
        method: &str,
        peer: Peer,
    ) -> Result<(), rsip::Response> {
        let Some(auth) = &self.register_auth else {
            return Ok(());
        };
        let now = auth.clock.now();
        let digest = &self.digest;
        let challenge = |stale: bool| {
            let mut resp = message::response_for(req, 401, "Unauthorized");
            // MD5 first: many phones (and SIPp) answer only the first challenge instead of the
            // first they support (RFC 8760 §2.4); SHA-256 beside it only when asked for, as
            // some phones give up on a challenge they cannot answer.
            let algorithms: &[digest::Algorithm] = if auth.offer_sha256 {
                &[digest::Algorithm::Md5, digest::Algorithm::Sha256]
            } else {
                &[digest::Algorithm::Md5]
            };
            for &alg in algorithms {
                resp.headers.push(Header::Other(
                    "WWW-Authenticate".into(),
                    digest.challenge(now, &auth.realm, alg, stale),
                ));
            }
            resp
        };
        let to_user = header_value(req, who)
            .and_then(|t| message::name_addr_parts(&t).map(|(uri, _)| user_of_uri(&uri)))
            .unwrap_or_default();
        let source = peer.addr.ip();
        if let Some(wait) = self.auth_failures.blocked(&to_user, source, now) {
            let mut resp = message::response_for(req, 503, "Service Unavailable");
            resp.headers
                .push(Header::RetryAfter(rsip::headers::RetryAfter::new(
                    (wait.num_seconds() + 1).to_string(),
                )));
            return Err(resp);
        }
        let Some(header) = header_value(req, "Authorization") else {
            return Err(challenge(false));
        };
        let verified = digest.verify(now, &auth.realm, &header, method, |user| {
            auth.passwords
                .get(user)
                .map(|p| digest::Secret::Password(p.clone()))
        });
        // What failed, and whether the answer is 403 (someone else's valid credentials).
        let (failure, forbidden) = match verified {
            Ok(v) if v.username == to_user => {
                let ttl = digest.nonce_ttl().num_seconds();
                match self.nonce_uses.record(now, ttl, &v.nonce, v.issued, v.nc) {
                    Ok(()) => {
                        self.auth_failures.succeeded(&to_user);
                        return Ok(());
                    }
                    Err(NonceRefusal::Stale) => return Err(challenge(true)),
                    Err(NonceRefusal::Replayed) => ("replayed credentials".to_string(), false),
                }
            }
            Ok(v) => (format!("credentials of `{}`", v.username), true),
            Err(digest::DigestError::Stale) => return Err(challenge(true)),
            Err(e) => (e.to_string(), false),
        };
        let blocked = self.auth_failures.failed(&to_user, source, now);
        tracing::warn!(
            user = %to_user,
            from = %peer.addr,
            method,
            error = %failure,
            blocked,
            "authentication failed"
        );
        if forbidden {
            return Err(message::response_for(req, 403, "Forbidden"));
        }
        Err(challenge(false))
    }

    /// Registrations kept across a restart: bound again and their users told they registered.
    fn restore_registrations(&mut self, list: Vec<PhoneRegistration>) {
        let now = self.time.now();
        for r in list {
            let bindings: Vec<Binding> = r
                .contacts
                .into_iter()
                .filter(|c| c.seconds_left > 0)
                .map(|c| c.binding(now))
                .collect();
            if bindings.is_empty() || self.sources.contains_key(&r.user) {
                continue;
            }
            self.registrar.restore(r.aor, bindings);
            self.sources.insert(r.user.clone(), r.source);
            self.handler.registration(&r.user, true);
        }
    }

    fn on_register(&mut self, key: TransactionKey, req: rsip::Request, peer: Peer) {
        let user = header_value(&req, "To")
            .and_then(|t| message::name_addr_parts(&t).map(|(uri, _)| user_of_uri(&uri)))
            .unwrap_or_default();
        if !self.handler.knows_user(&user) {
            tracing::debug!(user, from = %peer.addr, "REGISTER for an unknown user");
            self.respond_with(&key, message::response_for(&req, 404, "Not Found"));
            return;
        }
        if let Err(resp) = self.authenticate_register(&req, peer) {
            self.respond_with(&key, resp);
            return;
        }
        let now = self.time.now();
        match self.registrar.process(now, &req) {
            Ok(outcome) => {
                let user = user_of_uri(&outcome.aor);
                self.respond_with(&key, outcome.response.clone());
                self.handler.registration_changed(PhoneRegistration {
                    user: user.clone(),
                    aor: outcome.aor.clone(),
                    source: peer,
                    contacts: outcome
                        .bindings
                        .iter()
                        .map(|b| ContactLease::of(b, now))
                        .collect(),
                });
                if outcome.bindings.is_empty() {
                    self.sources.remove(&user);
                    if outcome.unregistered {
                        self.handler.registration(&user, false);
                    }
                } else {
                    let first = !self.sources.contains_key(&user);
                    self.sources.insert(user.clone(), peer);
                    if first {
                        self.handler.registration(&user, true);
                    }
                }
            }
            Err(e) => {
                let resp = e.response(&req);
                self.respond_with(&key, resp);
            }
        }
    }

    fn dial(
        &mut self,
        mut d: DialRequest,
        events: mpsc::UnboundedSender<UacEvent>,
        shared: Arc<LegShared>,
        late_offer: bool,
    ) -> String {
        let call_id = format!("{}@{}", random_token(), self.host());
        let from_tag = random_token();
        // A late offer keeps our SDP to answer the 200's offer from, and sends no body.
        let late_offer = late_offer.then(|| std::mem::take(&mut d.sdp));
        let invite = match self.build_invite(&d, &call_id, &from_tag, 1, None) {
            Some(r) => r,
            None => {
                let _ = events.send(UacEvent::Failed(400));
                return call_id;
            }
        };
        let now = self.time.now();
        match self
            .txns
            .start_client(now, invite.clone(), d.peer.transport.reliable())
        {
            Ok(key) => {
                self.peers.insert(key.clone(), d.peer);
                self.uac_keys.insert(key.clone(), call_id.clone());
                self.calls.insert(
                    call_id.clone(),
                    Call {
                        peer: d.peer,
                        role: Role::Uac {
                            invite,
                            key,
                            events,
                            credentials: d.credentials.clone(),
                            auth_tried: false,
                            answered: false,
                            ack: None,
                            late_offer,
                        },
                        dialog: None,
                        shared,
                        timer: None,
                        local_sdp: None,
                    },
                );
            }
            Err(_) => {
                let _ = events.send(UacEvent::Failed(500));
            }
        }
        call_id
    }

    fn build_invite(
        &self,
        d: &DialRequest,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
        authorization: Option<(&str, String)>,
    ) -> Option<rsip::Request> {
        let t = d.peer.transport;
        let mut text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: {via};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{from}@{host}>;tag={from_tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\nContact: {contact}\r\nAllow: {ALLOW}\r\nSupported: timer\r\n",
            uri = d.uri,
            via = self.via(t),
            branch = message::new_branch(),
            from = d.from_user,
            host = self.host(),
            contact = self.contact(t),
        );
        if let Some((name, value)) = authorization {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if !d.sdp.is_empty() {
            text.push_str("Content-Type: application/sdp\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{}", d.sdp.len(), d.sdp));
        match message::parse(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => Some(r),
            _ => None,
        }
    }

    fn cancel(&mut self, call: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let Role::Uac {
            invite,
            answered: false,
            ..
        } = &c.role
        else {
            return;
        };
        let mut h = rsip::Headers::default();
        for header in invite.headers().iter() {
            match header {
                Header::Via(_)
                | Header::From(_)
                | Header::To(_)
                | Header::CallId(_)
                | Header::MaxForwards(_) => h.push(header.clone()),
                _ => {}
            }
        }
        let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1);
        h.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{seq} CANCEL"
        ))));
        h.push(Header::ContentLength(rsip::headers::ContentLength::new(
            "0",
        )));
        let cancel = rsip::Request {
            method: rsip::Method::Cancel,
            uri: invite.uri.clone(),
            version: rsip::Version::V2,
            headers: h,
            body: Vec::new(),
        };
        let peer = c.peer;
        if let Ok(key) = self
            .txns
            .start_client(self.time.now(), cancel, peer.transport.reliable())
        {
            self.peers.insert(key, peer);
        }
    }

    fn on_client_event(&mut self, key: &TransactionKey, ev: Event) {
        let Some(call_id) = self.uac_keys.get(key).cloned() else {
            return;
        };
        // The key may belong to an INVITE replaced after a 401/407: only the current one counts.
        if !self
            .calls
            .get(&call_id)
            .is_some_and(|c| matches!(&c.role, Role::Uac { key: k, .. } if k == key))
        {
            return;
        }
        match ev {
            Event::Response(resp) => self.on_invite_response(&call_id, resp),
            Event::TimedOut | Event::TransportError => {
                if let Some(c) = self.take_call(&call_id) {
                    if let Role::Uac {
                        events, answered, ..
                    } = &c.role
                        && !answered
                    {
                        let _ = events.send(UacEvent::Failed(408));
                    }
                    c.shared.end();
                }
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, call_id: &str, resp: rsip::Response) {
        let code = resp.status_code.code();
        let contact_for = |t: Transport| self.contact(t);
        let Some(c) = self.calls.get(call_id) else {
            return;
        };
        let contact = contact_for(c.peer.transport);
        let via = self.via(c.peer.transport);
        let peer = c.peer;
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let Role::Uac {
            invite,
            events,
            credentials,
            auth_tried,
            answered,
            ack,
            late_offer,
            ..
        } = &mut c.role
        else {
            return;
        };
        if code < 200 {
            let _ = events.send(UacEvent::Progress(code));
            return;
        }
        if code < 300 {
            if *answered {
                return;
            }
            *answered = true;
            let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1);
            let dialog = Dialog::from_uac(invite, &resp, &contact).ok();
            let remote_sdp = String::from_utf8_lossy(&resp.body).to_string();
            // Late offer: the 200 offers, our ACK answers (RFC 3261 §13.2.2.4).
            let late_answer = late_offer
                .as_deref()
                .map(|ours| answer_late_offer(ours, &remote_sdp));
            let body = match &late_answer {
                Some(Ok(answer)) => Some(("application/sdp", answer.clone().into_bytes())),
                _ => None,
            };
            if let Some(d) = &dialog {
                let a = d.ack(seq, &via, body);
                *ack = Some(a.clone());
                self.transports
                    .send(peer, message::to_bytes(&SipMessage::Request(a)));
            }
            c.dialog = dialog;
            match late_answer {
                Some(Ok(answer)) => c.local_sdp = Some(answer),
                Some(Err(e)) => {
                    // Acknowledged (a 2xx must be), then ended: nothing to talk with.
                    tracing::info!(call = call_id, error = %e, "callee's offer refused");
                    let _ = events.send(UacEvent::Failed(e.sip_status()));
                    let id = call_id.to_string();
                    self.hang_up(&id);
                    return;
                }
                None => {}
            }
            // The callee (a trunk, a phone) may ask for session timers (RFC 4028 §7.2):
            // refresher=uac makes us the refresher.
            if let Some((n, r)) = session_expires(&resp) {
                let who = if r.as_deref() == Some("uas") {
                    Refresher::Peer
                } else {
                    Refresher::Us
                };
                c.timer = Some(SessionTimer::new(
                    self.time.now(),
                    n.max(MIN_SE),
                    who,
                    refresh_method(&resp),
                ));
            }
            let _ = events.send(UacEvent::Answered(
                String::from_utf8_lossy(&resp.body).to_string(),
            ));
            let id = call_id.to_string();
            self.schedule_timer(&id);
            return;
        }
        let mut retry: Option<(DialRequest, String, u32, &'static str, String)> = None;
        if (code == 401 || code == 407)
            && !*auth_tried
            && let Some((user, pass)) = credentials.clone()
        {
            let (challenge_header, answer_header) = if code == 401 {
                ("WWW-Authenticate", "Authorization")
            } else {
                ("Proxy-Authenticate", "Proxy-Authorization")
            };
            if let Some(ch) = header_value(&resp, challenge_header)
                && let Ok(auth) =
                    digest::respond(&ch, "INVITE", &invite.uri.to_string(), &user, &pass)
            {
                *auth_tried = true;
                let seq = message::cseq(invite).map(|(n, _)| n).unwrap_or(1) + 1;
                let from_tag = header_value(invite, "From")
                    .and_then(|f| message::tag_of(&f))
                    .unwrap_or_default();
                let d = DialRequest {
                    uri: invite.uri.to_string(),
                    peer,
                    from_user: from_user(invite),
                    sdp: String::from_utf8_lossy(&invite.body).to_string(),
                    credentials: None,
                };
                retry = Some((d, from_tag, seq, answer_header, auth));
            }
        }
        if let Some((d, from_tag, seq, answer_header, auth)) = retry
            && let Some(new_invite) =
                self.build_invite(&d, call_id, &from_tag, seq, Some((answer_header, auth)))
            && let Ok(key) = self.txns.start_client(
                self.time.now(),
                new_invite.clone(),
                peer.transport.reliable(),
            )
        {
            self.peers.insert(key.clone(), peer);
            self.uac_keys.insert(key.clone(), call_id.to_string());
            if let Some(c) = self.calls.get_mut(call_id)
                && let Role::Uac { invite, key: k, .. } = &mut c.role
            {
                *invite = new_invite;
                *k = key;
            }
            return;
        }
        let Some(c) = self.calls.get(call_id) else {
            return;
        };
        let Role::Uac { events, .. } = &c.role else {
            return;
        };
        let _ = events.send(UacEvent::Failed(code));
        if let Some(c) = self.take_call(call_id) {
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
