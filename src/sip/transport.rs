//! UDP and TCP transports: listeners, stream framing by Content-Length, connection reuse (a
//! response or request to a peer goes back over the connection it came in on), size limits,
//! and a 400 for requests too broken to parse, built from the raw header lines.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::time::SipClock;
use crate::net::admission::{Admission, Admitted};
use crate::net::backoff::AcceptBackoff;

use super::message::{self, Frame, MAX_MESSAGE_SIZE};

/// How long a connection stays open for answers after its peer stopped sending (EOF) or sent
/// something that cannot be framed.
const LINGER: Duration = Duration::from_secs(2);

/// Which transport a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: retransmissions apply.
    Udp,
    /// A stream: reliable, no retransmissions.
    Tcp,
}

impl Transport {
    /// Name in Via headers.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// True for stream transports.
    pub fn reliable(self) -> bool {
        self == Transport::Tcp
    }
}

/// The other end of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Address.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
}

/// A message received, still to be parsed by the user agent.
#[derive(Debug)]
pub struct Received {
    /// Raw bytes of one message.
    pub bytes: Vec<u8>,
    /// Where it came from.
    pub peer: Peer,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// Set when a stream could not be framed: `bytes` is what was left, to be answered with
    /// this error in turn (after the messages before it) and not parsed.
    pub framing_error: Option<message::ParseError>,
    /// When it was read: the user agent measures how long messages wait in its queue (its
    /// overload signal).
    pub at: Instant,
}

/// Bounds on what peers may make the transports hold: message size, and for TCP the time a
/// connection may take to finish a header or body or stay silent, and how many may be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportLimits {
    /// Largest message and most header lines (`sip.max_message_bytes`, `sip.max_headers`).
    pub message: message::ParseLimits,
    /// A message's header section must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A body must be complete this long after its header section.
    pub body_timeout: Duration,
    /// A connection with nothing pending is closed after this long without a byte.
    pub idle_timeout: Duration,
    /// Accepted connections open at once; more are closed at once.
    pub max_connections: usize,
    /// Accepted connections open at once from one IP address.
    pub max_connections_per_address: usize,
}

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            message: message::ParseLimits::default(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(3600),
            max_connections: 10_000,
            max_connections_per_address: 200,
        }
    }
}

/// Where the transports hand what they read: the user agent's workers, each message to the
/// one its Call-ID belongs to (`sip/shard.rs`), so the calls' state is sharded without a lock.
#[derive(Clone)]
pub struct Inbound {
    workers: Arc<[mpsc::UnboundedSender<Received>]>,
}

impl Inbound {
    /// Messages go to `workers`, by a hash of their Call-ID (REGISTER and messages without a
    /// Call-ID to the first).
    pub fn new(workers: Vec<mpsc::UnboundedSender<Received>>) -> Self {
        Inbound {
            workers: workers.into(),
        }
    }

    /// Hands `r` to its worker; `Err` once that worker is gone (the user agent stopped).
    pub fn send(&self, r: Received) -> Result<(), Stopped> {
        let w = super::shard::worker_for_message(&r.bytes, self.workers.len());
        match self.workers.get(w).or(self.workers.first()) {
            Some(tx) => tx.send(r).map_err(|_| Stopped),
            None => Err(Stopped),
        }
    }
}

/// The user agent's workers are gone: the transports stop reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the SIP user agent has stopped")
    }
}

impl From<mpsc::UnboundedSender<Received>> for Inbound {
    fn from(tx: mpsc::UnboundedSender<Received>) -> Self {
        Inbound::new(vec![tx])
    }
}

type Conns = Arc<DashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>;

/// The bound listeners.
pub struct Transports {
    udp: Vec<Arc<UdpSocket>>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    conns: Conns,
    inbound: Inbound,
    limits: Arc<TransportLimits>,
    /// Arrival stamps and connection deadlines (the injected clock).
    clock: SipClock,
    /// In-process: every message goes here instead of a socket (`sip::in_process`).
    wire: Option<mpsc::UnboundedSender<super::in_process::Datagram>>,
}

impl Transports {
    /// Binds every listener and starts reading; messages arrive on `inbound`.
    pub async fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        inbound: Inbound,
        limits: TransportLimits,
        clock: SipClock,
    ) -> io::Result<Arc<Self>> {
        let mut sockets = Vec::new();
        let mut udp_addrs = Vec::new();
        for a in udp {
            let s = Arc::new(UdpSocket::bind(a).await?);
            udp_addrs.push(s.local_addr()?);
            sockets.push(s);
        }
        let mut listeners = Vec::new();
        let mut tcp_addrs = Vec::new();
        for a in tcp {
            let l = TcpListener::bind(a).await?;
            tcp_addrs.push(l.local_addr()?);
            listeners.push(l);
        }
        let t = Arc::new(Transports {
            udp: sockets,
            udp_addrs,
            tcp_addrs,
            conns: Arc::new(DashMap::new()),
            inbound,
            limits: Arc::new(limits),
            clock,
            wire: None,
        });
        for s in &t.udp {
            tokio::spawn(udp_loop(
                s.clone(),
                t.inbound.clone(),
                t.limits.clone(),
                t.clock.clone(),
            ));
        }
        // One admission for every TCP listener: the caps count all of them together.
        let admission = Admission::new(
            t.limits.max_connections,
            t.limits.max_connections_per_address,
        );
        for l in listeners {
            tokio::spawn(accept_loop(
                l,
                t.conns.clone(),
                t.inbound.clone(),
                t.limits.clone(),
                admission.clone(),
                t.clock.clone(),
            ));
        }
        Ok(t)
    }

    /// Transports with no socket: the user agent is at `local` (UDP), and what it sends goes
    /// to `wire` (the simulator's in-process network; messages come in through `inbound`).
    pub(crate) fn in_process(
        local: SocketAddr,
        inbound: Inbound,
        wire: mpsc::UnboundedSender<super::in_process::Datagram>,
        limits: TransportLimits,
        clock: SipClock,
    ) -> Arc<Self> {
        Arc::new(Transports {
            udp: Vec::new(),
            udp_addrs: vec![local],
            tcp_addrs: Vec::new(),
            conns: Arc::new(DashMap::new()),
            inbound,
            limits: Arc::new(limits),
            clock,
            wire: Some(wire),
        })
    }

    /// Local UDP addresses.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// Local TCP addresses.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The local address used towards `peer` (for Via and Contact).
    pub fn local_for(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp_addrs.first().copied(),
            Transport::Tcp => self.tcp_addrs.first().copied(),
        }
    }

    /// Sends without waiting: a datagram, or a write queued on the peer's connection (opened if
    /// there is none).
    pub fn send(&self, peer: Peer, bytes: Vec<u8>) {
        if let Some(wire) = &self.wire {
            let from = self.udp_addrs.first().copied().unwrap_or(peer.addr);
            let _ = wire.send(super::in_process::Datagram {
                from,
                to: peer.addr,
                bytes,
            });
            return;
        }
        match peer.transport {
            Transport::Udp => {
                // From a listener of the peer's address family (IPv4 and IPv6 side by side).
                let Some(s) = self
                    .udp
                    .iter()
                    .zip(&self.udp_addrs)
                    .find(|(_, a)| a.is_ipv4() == peer.addr.is_ipv4())
                    .map(|(s, _)| s)
                    .or(self.udp.first())
                else {
                    return;
                };
                if let Err(e) = s.try_send_to(&bytes, peer.addr) {
                    tracing::debug!(to = %peer.addr, error = %e, "UDP send failed");
                }
            }
            Transport::Tcp => {
                if let Some(tx) = self.conns.get(&peer.addr)
                    && tx.send(bytes.clone()).is_ok()
                {
                    return;
                }
                let conns = self.conns.clone();
                let inbound = self.inbound.clone();
                let limits = self.limits.clone();
                let clock = self.clock.clone();
                tokio::spawn(async move {
                    match TcpStream::connect(peer.addr).await {
                        Ok(stream) => {
                            let tx = serve_stream(
                                stream, peer.addr, conns, inbound, limits, None, clock,
                            );
                            let _ = tx.send(bytes);
                        }
                        Err(e) => {
                            tracing::debug!(to = %peer.addr, error = %e, "TCP connect failed")
                        }
                    }
                });
            }
        }
    }
}

async fn udp_loop(
    socket: Arc<UdpSocket>,
    inbound: Inbound,
    limits: Arc<TransportLimits>,
    clock: SipClock,
) {
    let local = socket.local_addr().ok();
    let max = limits.message.max_bytes;
    let mut buf = vec![0u8; max.max(MAX_MESSAGE_SIZE) + 1];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let data = &buf[..n];
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            continue; // keep-alive
        }
        let msg = Received {
            // An oversized datagram is handed on as its first bytes, for a 513 built from
            // its headers (when they fit); it is never parsed.
            bytes: data[..n.min(max)].to_vec(),
            peer: Peer {
                addr: from,
                transport: Transport::Udp,
            },
            local: local.unwrap_or(from),
            framing_error: (n > max).then_some(message::ParseError::TooLarge),
            at: clock.now(),
        };
        if inbound.send(msg).is_err() {
            return;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    conns: Conns,
    inbound: Inbound,
    limits: Arc<TransportLimits>,
    admission: Arc<Admission>,
    clock: SipClock,
) {
    let mut backoff = AcceptBackoff::new(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
    let mut refused_log = crate::throttle::LogThrottle::new(10, Duration::from_secs(10));
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                backoff.succeeded();
                match admission.admit(from.ip()) {
                    Some(admitted) => {
                        serve_stream(
                            stream,
                            from,
                            conns.clone(),
                            inbound.clone(),
                            limits.clone(),
                            Some(admitted),
                            clock.clone(),
                        );
                    }
                    None => {
                        crate::throttled!(
                            refused_log,
                            clock.now(),
                            warn!(%from, "TCP connection refused: connection cap reached")
                        );
                        drop(stream);
                    }
                }
            }
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE) or buffers: accepting again at once would
                // spin; wait, longer each time, for connections to close.
                let pause = backoff.failed();
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "TCP accept error");
                clock.sleep(pause).await;
            }
        }
    }
}

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the reader waits for next, which decides its deadline. An accepted connection must
/// bring its first message's header within the header timeout of opening (`awaiting_first`).
fn read_deadline(
    buf: &[u8],
    limits: &TransportLimits,
    last_byte: Instant,
    message_start: Instant,
    head_done: Option<Instant>,
    awaiting_first: bool,
) -> (Instant, &'static str) {
    let pending = buf.iter().any(|b| *b != b'\r' && *b != b'\n');
    match (pending, head_done) {
        (false, _) if awaiting_first => (message_start + limits.header_timeout, "first message"),
        (false, _) => (last_byte + limits.idle_timeout, "idle"),
        (true, None) => (message_start + limits.header_timeout, "header"),
        (true, Some(at)) => (at + limits.body_timeout, "body"),
    }
}

/// Reads framed messages from a connection and writes queued ones; the connection is
/// registered for reuse until it closes. It is closed when a header or body takes too long, an
/// accepted connection sends no first message, or nothing arrives for the idle timeout;
/// `admitted` (accepted connections) keeps it counted against the caps.
fn serve_stream(
    stream: TcpStream,
    from: SocketAddr,
    conns: Conns,
    inbound: Inbound,
    limits: Arc<TransportLimits>,
    admitted: Option<Admitted>,
    clock: SipClock,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let local = stream.local_addr().unwrap_or(from);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    conns.insert(from, tx.clone());
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let reply = tx.clone();
    tokio::spawn(async move {
        let mut awaiting_first = admitted.is_some();
        let _admitted = admitted;
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16384];
        let now = clock.now();
        let (mut last_byte, mut message_start, mut head_done) = (now, now, None);
        // Every message (or unframeable rest) of this connection comes from the same peer.
        let received =
            |bytes: Vec<u8>, framing_error: Option<message::ParseError>, at: Instant| Received {
                bytes,
                peer: Peer {
                    addr: from,
                    transport: Transport::Tcp,
                },
                local,
                framing_error,
                at,
            };
        let mut linger = true;
        'read: loop {
            let (deadline, waiting_for) = read_deadline(
                &buf,
                &limits,
                last_byte,
                message_start,
                head_done,
                awaiting_first,
            );
            let read = tokio::select! {
                r = rd.read(&mut chunk) => Ok(r),
                () = clock.sleep_until(deadline) => Err(()),
            };
            let n = match read {
                Err(()) => {
                    tracing::debug!(%from, waiting_for, "TCP connection timed out");
                    linger = waiting_for == "header" || waiting_for == "body";
                    if linger {
                        let _ = inbound.send(received(
                            std::mem::take(&mut buf),
                            Some(message::ParseError::Incomplete),
                            clock.now(),
                        ));
                    }
                    break;
                }
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => n,
            };
            let was_pending = buf.iter().any(|b| *b != b'\r' && *b != b'\n');
            last_byte = clock.now();
            if !was_pending {
                message_start = last_byte;
            }
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match message::framing_limited(&buf, &limits.message) {
                    Ok(None) => {
                        if head_done.is_none() && message::has_header_end(&buf) {
                            head_done = Some(last_byte);
                        }
                        break;
                    }
                    Ok(Some(Frame::KeepAlive { len })) => {
                        buf.drain(..len);
                    }
                    Ok(Some(Frame::Message { skip, len })) => {
                        let bytes = buf[skip..skip + len].to_vec();
                        buf.drain(..skip + len);
                        (message_start, head_done) = (last_byte, None);
                        awaiting_first = false;
                        let msg = received(bytes, None, last_byte);
                        if inbound.send(msg).is_err() {
                            break 'read;
                        }
                    }
                    Err(e) => {
                        // A stream we cannot frame cannot be resynchronised: the user agent
                        // answers it after the messages before it, then the connection closes.
                        let _ =
                            inbound.send(received(std::mem::take(&mut buf), Some(e), clock.now()));
                        break 'read;
                    }
                }
            }
        }
        // Answers to what was read may still be on their way through the user agent: the
        // connection stays usable for them a moment after the peer stopped sending.
        if linger {
            clock.sleep(LINGER).await;
        }
        conns.remove(&from);
        drop(reply);
    });
    tx
}

/// A 400 for a request too broken to parse, built from the raw Via, From, To, Call-ID and CSeq
/// lines; `None` for responses and for text that is not a request at all.
pub fn bad_request(raw: &[u8], reason: &str) -> Option<Vec<u8>> {
    error_response(raw, 400, reason)
}

/// A `code` response (400, 416, 501, 505, 513) to a request refused before parsing ended, built
/// from its raw Via, From, To, Call-ID and CSeq lines, the To tagged; `None` for responses and
/// for text that is not a request at all (no `Method SP URI SP SIP/x` first line).
pub fn error_response(raw: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next()?;
    let words: Vec<&str> = first.split_whitespace().collect();
    if first.starts_with("SIP/") || words.len() < 3 || !words[words.len() - 1].starts_with("SIP/") {
        return None;
    }
    let wanted = [
        ("via", "Via"),
        ("v", "Via"),
        ("from", "From"),
        ("f", "From"),
        ("to", "To"),
        ("t", "To"),
        ("call-id", "Call-ID"),
        ("i", "Call-ID"),
        ("cseq", "CSeq"),
    ];
    let mut out = format!("SIP/2.0 {code} {}\r\n", sanitize(reason));
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let lname = name.trim().to_ascii_lowercase();
        if let Some((_, canonical)) = wanted.iter().find(|(n, _)| *n == lname) {
            let value = value.trim();
            if *canonical == "To" && message::tag_of(value).is_none() {
                out.push_str(&format!("To: {value};tag={}\r\n", message::random_token()));
            } else {
                out.push_str(&format!("{canonical}: {value}\r\n"));
            }
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

fn sanitize(reason: &str) -> String {
    let r: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if r.is_empty() {
        "Bad Request".into()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_request_copies_the_dialog_headers() {
        let raw = b"INVITE sip:8000@x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\nf: <sip:a@b>;tag=1\r\nTo: <sip:8000@x>\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\nContent-Length: zz\r\n\r\n";
        let resp = String::from_utf8(bad_request(raw, "Bad Content-Length").unwrap()).unwrap();
        assert!(resp.starts_with("SIP/2.0 400 Bad Content-Length\r\n"));
        assert!(resp.contains("Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\n"));
        assert!(resp.contains("From: <sip:a@b>;tag=1\r\n"));
        assert!(resp.contains("Call-ID: abc\r\n"));
        assert!(bad_request(b"SIP/2.0 200 OK\r\n\r\n", "x").is_none());
        assert!(bad_request(b"\x00\x01garbage", "x").is_none());
    }
}
