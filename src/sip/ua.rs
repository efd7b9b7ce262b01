//! The user agent's public face: what the engine implements ([`CallHandler`]) and receives
//! ([`IncomingCall`], [`LegShared`]), the handle legs and the dialer command it with
//! ([`UaHandle`]), its configuration, and [`start`]. The work happens in the I/O-free
//! endpoint (`sip/endpoint/`: UAS, UAC, in-dialog requests and refreshes, authentication,
//! registration), driven by `sip/driver.rs`, which owns the sockets and sleeps on the clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::registrar::{ContactLease, RegistrarConfig};
use super::shard::{Shared, worker_of};
use super::time::SipClock;
use super::transport::{Peer, Received, TransportLimits, Transports};
use crate::media::sdp::Negotiated;
use crate::media::session::{DigitBuffer, MediaSession};

/// Methods we implement (Allow header).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, UPDATE";

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
    /// True when the peer's INVITE listed REFER in Allow or Supported (it can be transferred).
    pub accepts_refer: std::sync::atomic::AtomicBool,
    /// Where our REFER stands (RFC 3515: its answer, then the NOTIFYs' sipfrag statuses).
    pub refer: watch::Sender<ReferState>,
}

/// Progress of a REFER we sent (blind transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferState {
    /// None sent.
    Idle,
    /// Sent, not answered yet.
    Sent,
    /// Answered 2xx (202 Accepted): the peer is calling the target.
    Accepted,
    /// Refused with this status (or 408 when nothing answered).
    Refused(u16),
    /// A NOTIFY reported this provisional status of the peer's call to the target.
    Trying(u16),
    /// A NOTIFY reported this final status of the peer's call to the target.
    Done(u16),
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
            accepts_refer: std::sync::atomic::AtomicBool::new(false),
            refer: watch::channel(ReferState::Idle).0,
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
            // The answer may have switched codec (the offer no longer lists the first one).
            m.configure(n);
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
    /// Extra headers on the INVITE (a call's attached data on the agent leg); names and values
    /// are made header-safe by `flow::call_data`.
    pub extra_headers: Vec<(String, String)>,
}

pub(crate) enum Cmd {
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
        /// The Call-ID to use: it chose the worker.
        id: String,
        req: DialRequest,
        events: mpsc::UnboundedSender<UacEvent>,
        shared: Arc<LegShared>,
        call_id: oneshot::Sender<String>,
        late_offer: bool,
    },
    Cancel {
        call: String,
    },
    /// Sends a REFER in the call's dialog (blind transfer to `refer_to`, a SIP URI).
    Refer {
        call: String,
        refer_to: String,
    },
    Lookup {
        user: String,
        reply: oneshot::Sender<Option<(String, Peer)>>,
    },
    /// Ends every call (end of the shutdown drain); replies how many there were.
    HangupAll(oneshot::Sender<usize>),
}

/// A handle on the running user agent: a command about a call goes to the worker owning its
/// Call-ID, registrations to worker 0 (see `sip/shard.rs`).
#[derive(Clone)]
pub struct UaHandle {
    workers: Arc<[mpsc::UnboundedSender<Cmd>]>,
    shared: Arc<Shared>,
    /// The host part of the Call-IDs we generate.
    host: Arc<str>,
    /// The address put in Contact, Via and SDP.
    pub public_ip: IpAddr,
    transports: Arc<Transports>,
    metrics: Arc<crate::ops::metrics::SipMetrics>,
}

impl UaHandle {
    /// The handle on a user agent just started by the driver: one command channel per worker.
    pub(crate) fn from_parts(
        workers: Vec<mpsc::UnboundedSender<Cmd>>,
        shared: Arc<Shared>,
        host: String,
        public_ip: IpAddr,
        transports: Arc<Transports>,
        metrics: Arc<crate::ops::metrics::SipMetrics>,
    ) -> Self {
        UaHandle {
            workers: workers.into(),
            shared,
            host: host.into(),
            public_ip,
            transports,
            metrics,
        }
    }

    /// The command channel of the worker owning `call`.
    fn to_call(&self, call: &str) -> &mpsc::UnboundedSender<Cmd> {
        &self.workers[worker_of(call.as_bytes(), self.workers.len())]
    }

    /// The command channel of the registrar's worker.
    fn registrar(&self) -> &mpsc::UnboundedSender<Cmd> {
        &self.workers[0]
    }

    /// How many endpoint workers share the calls.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Answers an inbound call with `sdp`; false if the call is gone.
    pub async fn answer(&self, call: &str, sdp: String) -> bool {
        let (done, rx) = oneshot::channel();
        let _ = self.to_call(call).send(Cmd::Answer {
            call: call.to_string(),
            sdp,
            done,
        });
        rx.await.unwrap_or(false)
    }

    /// A leg's `CallLeg::answer`: answers once (`answered` remembers it), `CallError::Ended` if
    /// the call is gone.
    pub async fn answer_once(
        &self,
        call: &str,
        sdp: &str,
        answered: &std::sync::atomic::AtomicBool,
    ) -> Result<(), crate::call::CallError> {
        use std::sync::atomic::Ordering;
        if answered.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.answer(call, sdp.to_string()).await {
            answered.store(true, Ordering::Release);
            Ok(())
        } else {
            Err(crate::call::CallError::Ended)
        }
    }

    /// Refuses an unanswered inbound call.
    pub fn reject(&self, call: &str, code: u16, reason: &'static str) {
        let _ = self.to_call(call).send(Cmd::Reject {
            call: call.to_string(),
            code,
            reason,
        });
    }

    /// Ends a call: BYE when answered, a final response or CANCEL when not.
    pub fn hang_up(&self, call: &str) {
        let _ = self.to_call(call).send(Cmd::Hangup {
            call: call.to_string(),
        });
    }

    /// Places an outbound INVITE; events arrive on the returned receiver. With `late_offer`
    /// (for trunks that want to offer) the INVITE has no SDP: the callee's 200 carries the
    /// offer, answered in the ACK from `req.sdp`'s address, and [`UacEvent::Answered`] gives
    /// that offer.
    pub async fn dial(
        &self,
        req: DialRequest,
        shared: Arc<LegShared>,
        late_offer: bool,
    ) -> Option<(String, mpsc::UnboundedReceiver<UacEvent>)> {
        let (events, rx) = mpsc::unbounded_channel();
        let (call_id, id_rx) = oneshot::channel();
        // The Call-ID is chosen here, so the call's worker is known before it exists.
        let id = format!("{}@{}", super::message::random_token(), self.host);
        self.to_call(&id)
            .send(Cmd::Dial {
                id: id.clone(),
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
        let _ = self.to_call(call).send(Cmd::Cancel {
            call: call.to_string(),
        });
    }

    /// Asks the peer of `call` to call `refer_to` (REFER, RFC 3515); progress arrives in the
    /// call's [`LegShared::refer`].
    pub fn refer(&self, call: &str, refer_to: &str) {
        let _ = self.to_call(call).send(Cmd::Refer {
            call: call.to_string(),
            refer_to: refer_to.to_string(),
        });
    }

    /// Puts back registrations kept across a restart (their users register again, as far as
    /// the handler is told); contacts with no time left are dropped.
    pub fn restore(&self, registrations: Vec<PhoneRegistration>) {
        let _ = self.registrar().send(Cmd::Restore(registrations));
    }

    /// The registered contact of a SIP user and where its REGISTER came from.
    pub async fn lookup(&self, user: &str) -> Option<(String, Peer)> {
        let (reply, rx) = oneshot::channel();
        self.registrar()
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
        self.shared.drain();
    }

    /// Calls (both directions) up or being set up, every worker's; 0 once the user agent is
    /// gone.
    pub async fn active_calls(&self) -> usize {
        if self.workers.iter().all(mpsc::UnboundedSender::is_closed) {
            return 0;
        }
        self.shared.calls()
    }

    /// Ends every call (BYE when answered, a final response or CANCEL when not), on every
    /// worker; how many.
    pub async fn hang_up_all(&self) -> usize {
        let mut replies = Vec::with_capacity(self.workers.len());
        for w in self.workers.iter() {
            let (reply, rx) = oneshot::channel();
            if w.send(Cmd::HangupAll(reply)).is_ok() {
                replies.push(rx);
            }
        }
        let mut n = 0;
        for rx in replies {
            n += rx.await.unwrap_or(0);
        }
        n
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
    /// Endpoint workers the calls are sharded over by Call-ID, to use several cores; 0 means
    /// one per core available to the process.
    pub workers: usize,
}

impl Default for UaLimits {
    fn default() -> Self {
        UaLimits {
            max_calls: 2000,
            max_setup_calls: 200,
            max_queue_delay: Duration::from_millis(250),
            retry_after: 5,
            transport: TransportLimits::default(),
            workers: 0,
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

/// Starts the transports and the user-agent task on the monotonic clock (the service's).
pub async fn start(config: UaConfig, handler: Arc<dyn CallHandler>) -> std::io::Result<UaHandle> {
    super::driver::start(config, handler, SipClock::monotonic()).await
}

/// Starts the transports and the user-agent task, every timer on `clock` (virtual time in
/// tests and the simulator; the system's clock gives the monotonic one, see
/// [`crate::clock::Clock::is_system`]).
pub async fn start_with_clock(
    config: UaConfig,
    handler: Arc<dyn CallHandler>,
    clock: crate::clock::SharedClock,
) -> std::io::Result<UaHandle> {
    super::driver::start(config, handler, SipClock::of(clock)).await
}
