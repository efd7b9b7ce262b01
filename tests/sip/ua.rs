//! The user agent on its own over real SIP on loopback, against SIPp (Debian's `sip-tester`):
//! RFC 4028 session timers in both roles, hold and resume, late offers both ways. A small handler answers every call
//! with a real RTP session playing silence in a loop and keeps it up, so nothing but the SIP
//! layer decides when a call ends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use boomerang::clock::{SharedClock, SystemClock, TokioClock};
use boomerang::media::g711::Law;
use boomerang::media::rtp::RtpPacket;
use boomerang::media::sdp;
use boomerang::media::session::{MediaSession, silence_frames};
use boomerang::sip::registrar::RegistrarConfig;
use boomerang::sip::transport::{Peer, Transport};
use boomerang::sip::ua::{
    self, CallHandler, DialRequest, IncomingCall, LegShared, UaConfig, UaHandle, UacEvent,
};

use crate::common;

use common::{free_port, repo, sipp_report};

/// Answers every call to any number at once and remembers each call's shared state.
#[derive(Default)]
struct Answerer {
    ua: OnceLock<UaHandle>,
    /// Answer times on tokio's clock (virtual under paused time, real otherwise).
    calls: Mutex<HashMap<String, (Arc<LegShared>, tokio::time::Instant)>>,
    /// Every change of a call's hold state, in order.
    holds: Arc<Mutex<Vec<bool>>>,
}

impl CallHandler for Answerer {
    fn serves(&self, _number: &str) -> bool {
        true
    }

    fn incoming(&self, call: IncomingCall) {
        let Some(ua) = self.ua.get().cloned() else {
            return;
        };
        self.calls.lock().unwrap().insert(
            call.call_id.clone(),
            (call.shared.clone(), boomerang::clock::tokio_now()),
        );
        let holds = self.holds.clone();
        tokio::spawn(async move {
            let media = MediaSession::open(ua.public_ip, (0, 0), call.shared.digits.clone())
                .await
                .unwrap();
            let port = media.local_addr().port();
            // No offer (late offer): we offer, and the ACK's answer reaches the media session.
            let answer = if call.offer.is_empty() {
                sdp::offer(ua.public_ip, port, 1, 1)
            } else {
                let (answer, negotiated) = sdp::answer(&call.offer, ua.public_ip, port).unwrap();
                media.configure(&negotiated);
                answer
            };
            media.play(
                vec![silence_frames(Law::Ulaw, Duration::from_secs(1))],
                true,
            );
            call.shared.attach_media(&media);
            let mut held = call.shared.held.subscribe();
            assert!(ua.answer(&call.call_id, answer).await);
            let mut ended = call.shared.ended.subscribe();
            loop {
                tokio::select! {
                    r = held.changed() => match r {
                        Ok(()) => holds.lock().unwrap().push(*held.borrow()),
                        Err(_) => break,
                    },
                    _ = ended.wait_for(|e| *e) => break,
                }
            }
            media.close();
        });
    }

    fn registration(&self, _user: &str, _registered: bool) {}
}

async fn start_ua(ip: IpAddr) -> (UaHandle, Arc<Answerer>) {
    start_ua_on(ip, SystemClock::shared()).await
}

/// The user agent with every timer on `clock`.
async fn start_ua_on(ip: IpAddr, clock: SharedClock) -> (UaHandle, Arc<Answerer>) {
    let handler = Arc::new(Answerer::default());
    let ua = ua::start_with_clock(
        UaConfig {
            udp: vec![SocketAddr::new(ip, 0)],
            tcp: vec![SocketAddr::new(ip, 0)],
            public_ip: None,
            public_name: None,
            registrar: RegistrarConfig::default(),
            register_auth: None,
            authenticate_register: false,
            authenticate_invite: false,
            session_expires: 1800,
            limits: Default::default(),
        },
        handler.clone(),
        clock,
    )
    .await
    .unwrap();
    let _ = handler.ua.set(ua.clone());
    (ua, handler)
}

fn sipp_command(scenario: &str, local_ip: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-m", "1", "-i", local_ip, "-nostdin", "-timeout", "120s"])
        .args(["-mp", &free_port().to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Waits for a SIPp run started with [`sipp_command`] and asserts it played its scenario.
async fn finish(scenario: &str, child: tokio::process::Child) {
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("sipp did not finish")
        .unwrap();
    assert!(
        out.status.success(),
        "sipp {scenario} failed: {}",
        sipp_report(&out)
    );
}

/// Runs a SIPp client scenario for one call from 127.0.0.1 and asserts it played through.
async fn client(scenario: &str, target: SocketAddr, extra: &[&str]) {
    let out = common::sipp_client(&repo().join("tests/sipp").join(scenario), target, extra).await;
    assert!(
        out.status.success(),
        "sipp {scenario} failed: {}",
        sipp_report(&out)
    );
}

async fn ended(shared: &LegShared) {
    let mut rx = shared.ended.subscribe();
    let _ = rx.wait_for(|e| *e).await;
}

/// The value of the first `name` header of a SIP message's text (empty when absent).
fn header(msg: &str, name: &str) -> String {
    msg.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// Waits up to `within` for a request `method` on `sock`, skipping anything else (our
/// retransmissions); the request's text and sender.
async fn recv_request(
    sock: &tokio::net::UdpSocket,
    method: &str,
    within: Duration,
) -> (String, SocketAddr) {
    let mut buf = vec![0u8; 65536];
    tokio::time::timeout(within, async {
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with(&format!("{method} ")) {
                return (text, from);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {method} within {within:?}"))
}

/// A response `status` to `req`, its To tagged with `to_tag` when it has none, with `extra`
/// header lines and an optional SDP body.
fn response_to(req: &str, status: &str, to_tag: &str, extra: &str, sdp: Option<&str>) -> String {
    let to = header(req, "To");
    let to = if to.contains(";tag=") {
        to
    } else {
        format!("{to};tag={to_tag}")
    };
    let body = sdp.unwrap_or_default();
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        header(req, "Via"),
        header(req, "From"),
        header(req, "Call-ID"),
        header(req, "CSeq"),
        body.len()
    )
}

/// The callee side of `tests/sipp/timer-refresh-update.xml` (`update`) and
/// `timer-refresh-reinvite.xml`, on a plain UDP socket so that the test runs in virtual time: it
/// answers our INVITE with a 90 s session we refresh (refresher=uac), its Allow listing UPDATE
/// or not; expects our refresh (an UPDATE, or a re-INVITE with our SDP) within 70 s, still
/// asking for 90 s with us as refresher; answers it, then hangs up.
async fn callee_expecting_refresh(sock: tokio::net::UdpSocket, update: bool) {
    let local = sock.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=customer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    let allow = if update {
        "INVITE, ACK, CANCEL, BYE, UPDATE"
    } else {
        "INVITE, ACK, CANCEL, BYE"
    };
    let (invite, from) = recv_request(&sock, "INVITE", Duration::from_secs(10)).await;
    let contact = format!("Contact: <sip:customer@{local}>\r\n");
    let ok = response_to(
        &invite,
        "200 OK",
        "callee",
        &format!(
            "{contact}Allow: {allow}\r\nSupported: timer\r\nRequire: timer\r\nSession-Expires: 90;refresher=uac\r\n"
        ),
        Some(&sdp),
    );
    sock.send_to(ok.as_bytes(), from).await.unwrap();
    recv_request(&sock, "ACK", Duration::from_secs(10)).await;
    let method = if update { "UPDATE" } else { "INVITE" };
    let (refresh, from) = recv_request(&sock, method, Duration::from_secs(70)).await;
    assert!(
        header(&refresh, "Session-Expires").starts_with("90;refresher=uac"),
        "Session-Expires in the refresh: {refresh}"
    );
    let timer = "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n";
    if update {
        let ok = response_to(&refresh, "200 OK", "callee", timer, None);
        sock.send_to(ok.as_bytes(), from).await.unwrap();
    } else {
        let body = refresh.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(
            body.lines()
                .any(|l| l.starts_with("m=audio ") && l.contains(" RTP/AVP")),
            "no SDP in the re-INVITE: {refresh}"
        );
        let ok = response_to(
            &refresh,
            "200 OK",
            "callee",
            &format!("{timer}{contact}"),
            Some(&sdp),
        );
        sock.send_to(ok.as_bytes(), from).await.unwrap();
        recv_request(&sock, "ACK", Duration::from_secs(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let target = header(&invite, "Contact");
    let target = target
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string();
    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-callee-bye\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 10 BYE\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header(&ok, "To"),
        header(&invite, "From"),
        header(&invite, "Call-ID"),
    );
    sock.send_to(bye.as_bytes(), from).await.unwrap();
    let mut buf = vec![0u8; 65536];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (n, _) = sock.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 200") && header(&text, "CSeq").ends_with("BYE") {
                return;
            }
        }
    })
    .await
    .expect("no 200 for the BYE");
}

/// The caller side of `tests/sipp/timer-no-refresh.xml`, played from a plain UDP socket so that
/// the test runs in virtual time: an INVITE asking for a 90 s session with the caller as
/// refresher, the ACK, then no refresh; the BYE must come within 80 s and gets its 200.
async fn caller_never_refreshing(target: SocketAddr) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let (call_id, from_tag) = ("timer-no-refresh-1", "caller-tag-1");
    let sdp = "v=0\r\no=user1 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:8000@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-timer-no-refresh-1\r\n\
         From: <sip:+33612345678@{local}>;tag={from_tag}\r\n\
         To: <sip:8000@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{local}>\r\n\
         Supported: timer\r\n\
         Session-Expires: 90;refresher=uac\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), target).await.unwrap();
    let mut buf = vec![0u8; 65536];
    // The 200 (after an optional 100), with the session timer the caller asked for.
    let ok = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("no answer to the INVITE")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("SIP/2.0 100") {
            continue;
        }
        assert!(text.starts_with("SIP/2.0 200"), "not answered: {text}");
        break text;
    };
    assert!(
        header(&ok, "Session-Expires").starts_with("90;refresher=uac"),
        "Session-Expires in the 200: {ok}"
    );
    let to = header(&ok, "To");
    let ack = format!(
        "ACK sip:8000@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-timer-no-refresh-ack\r\n\
         From: <sip:+33612345678@{local}>;tag={from_tag}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(ack.as_bytes(), target).await.unwrap();
    // Only a BYE (or retransmissions of the 200) may come now, within 80 s.
    let bye = tokio::time::timeout(Duration::from_secs(80), async {
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("BYE ") {
                return (text, from);
            }
        }
    })
    .await
    .expect("no BYE within 80 s");
    let (bye, from) = bye;
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(&bye, "Via"),
        header(&bye, "From"),
        header(&bye, "To"),
        header(&bye, "Call-ID"),
        header(&bye, "CSeq"),
    );
    sock.send_to(ok.as_bytes(), from).await.unwrap();
}

/// In virtual time: tokio's paused clock jumps over the idle minute, and the user agent reads
/// the same clock.
#[tokio::test(start_paused = true)]
async fn a_caller_that_never_refreshes_its_session_gets_our_bye_before_expiry() {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        boomerang::clock::SystemClock::shared().now(),
    ));
    let (ua, handler) = start_ua_on(IpAddr::V4(Ipv4Addr::LOCALHOST), clock).await;
    let target = ua.local_addrs().0[0];
    caller_never_refreshing(target).await;
    let calls = handler.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (shared, answered_at) = calls.into_values().next().unwrap();
    // The leg saw the hang-up the BYE made.
    tokio::time::timeout(Duration::from_secs(1), ended(&shared))
        .await
        .expect("the leg was not told the session ended");
    // Not before 90 - min(32, 90/3) = 60 s (a few seconds of slack for a loaded machine).
    let lasted = answered_at.elapsed();
    assert!(lasted >= Duration::from_secs(57), "BYE after {lasted:?}");
}

async fn we_refresh(update: bool) {
    let clock: SharedClock = Arc::new(TokioClock::starting_at(
        boomerang::clock::SystemClock::shared().now(),
    ));
    let (ua, _handler) = start_ua_on(IpAddr::V4(Ipv4Addr::LOCALHOST), clock).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let callee = tokio::spawn(callee_expecting_refresh(sock, update));
    let shared = LegShared::new();
    let offer = sdp::offer(IpAddr::V4(Ipv4Addr::LOCALHOST), 40002, 7, 1);
    let (_, mut events) = ua
        .dial(
            DialRequest {
                uri: format!("sip:+33612345678@127.0.0.1:{port}"),
                peer: Peer {
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                    transport: Transport::Udp,
                },
                from_user: "8000".into(),
                sdp: offer,
                credentials: None,
                extra_headers: Vec::new(),
            },
            shared.clone(),
            false,
        )
        .await
        .unwrap();
    loop {
        match events.recv().await {
            Some(UacEvent::Answered(_)) => break,
            Some(UacEvent::Progress(_)) => continue,
            other => panic!("not answered: {other:?}"),
        }
    }
    let answered_at = boomerang::clock::tokio_now();
    // The callee answers our refresh, then hangs up.
    callee
        .await
        .expect("the callee's side of the scenario failed");
    tokio::time::timeout(Duration::from_secs(2), ended(&shared))
        .await
        .expect("the callee's BYE did not end the leg");
    // The refresh came at half the interval (45 s), not at once.
    let lasted = answered_at.elapsed();
    assert!(
        lasted >= Duration::from_secs(44),
        "refreshed after {lasted:?}"
    );
}

/// Both ways of refreshing at once, in virtual time (each waits 45 s of it).
#[tokio::test(start_paused = true)]
async fn as_refresher_we_send_update_or_a_reinvite_to_a_peer_without_update_at_half_the_interval() {
    tokio::join!(we_refresh(true), we_refresh(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_by_reinvite_is_mirrored_and_silences_our_rtp_until_resumed() {
    let (ua, handler) = start_ua(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let target = ua.local_addrs().0[0];
    // The caller's RTP address: we listen there for what the engine sends.
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let listen = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(3), rtp.recv_from(&mut buf)).await
        {
            if let Ok(p) = RtpPacket::parse(&buf[..n]) {
                got.push((boomerang::clock::monotonic_now(), p.header.clone()));
            }
        }
        got
    });
    client("hold.xml", target, &["-set", "rtp", &rtp_port.to_string()]).await;
    let packets = listen.await.unwrap();
    assert_eq!(*handler.holds.lock().unwrap(), vec![true, false]);
    // One silence: the 2 s the caller held us (sendonly 1.5 s, then inactive 0.5 s).
    let (at, gap) = packets
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1].0 - w[0].0))
        .max_by_key(|(_, g)| *g)
        .unwrap();
    assert!(
        gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(3000),
        "longest silence {gap:?}"
    );
    assert!(
        at > 20 && packets.len() - at > 20,
        "{at} of {}",
        packets.len()
    );
    let (before, after) = (&packets[at - 1].1, &packets[at].1);
    // Resumed as a new talkspurt: marker set, sequence unbroken, timestamp counted the hold.
    assert!(after.marker);
    assert_eq!(after.sequence, before.sequence.wrapping_add(1));
    let held_ms = i64::from(after.timestamp.wrapping_sub(before.timestamp)) / 8;
    let gap_ms = gap.as_millis() as i64;
    assert!(
        (held_ms - gap_ms).abs() < 300,
        "timestamp moved {held_ms} ms over a {gap_ms} ms silence"
    );
    // Nothing else stopped: the other gaps are packet intervals.
    let second = packets
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|g| *g < gap)
        .max()
        .unwrap();
    assert!(second < Duration::from_millis(500), "{second:?}");
}

/// Listens on a loopback RTP port; returns the socket's port and a task that collects the
/// payload types of what arrives until nothing has come for `quiet`.
async fn rtp_listener(quiet: Duration) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = rtp.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut types = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(Ok((n, _))) = tokio::time::timeout(quiet, rtp.recv_from(&mut buf)).await {
            if let Ok(p) = RtpPacket::parse(&buf[..n]) {
                types.push(p.header.payload_type);
            }
        }
        types
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_without_sdp_gets_our_offer_and_the_acks_answer_sets_up_media() {
    let (ua, handler) = start_ua(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let target = ua.local_addrs().0[0];
    let (rtp_port, rtp) = rtp_listener(Duration::from_secs(3)).await;
    client(
        "late-offer-in.xml",
        target,
        &["-set", "rtp", &rtp_port.to_string()],
    )
    .await;
    let types = rtp.await.unwrap();
    // Only the ACK said where and how to send: PCMA to the caller's port, 1.5 s of it.
    assert!(types.len() >= 30, "{} packets", types.len());
    assert!(types.iter().all(|&pt| pt == 8), "{types:?}");
    assert_eq!(handler.calls.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_offer_trunk_gets_an_invite_without_sdp_and_our_answer_in_the_ack() {
    use boomerang::call::{Dial, DialTarget, Dialer};
    use boomerang::sip::leg::SipDialer;
    let (ua, _handler) = start_ua(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let trunk_port = free_port();
    let (rtp_port, rtp) = rtp_listener(Duration::from_secs(3)).await;
    let scenario = "late-offer-out.xml";
    let mut cmd = sipp_command(scenario, "127.0.0.1");
    cmd.args(["-p", &trunk_port.to_string()])
        .args(["-set", "rtp", &rtp_port.to_string()]);
    let child = cmd.spawn().expect("sipp (apt-get install -y sip-tester)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::demo_config(dir.path(), |spec| {
        let trunk = common::demo_trunk(spec);
        trunk.port = trunk_port;
        trunk.late_offer = true;
    });
    assert!(
        config.trunk(Some("pstn")).is_some_and(|t| t.late_offer),
        "the demo trunk moved"
    );
    let dialer = SipDialer {
        ua,
        config: Arc::new(config),
        prompts: Arc::new(Default::default()),
        clock: boomerang::clock::SystemClock::shared(),
    };
    let target = DialTarget::Customer {
        number: "+33612345678".into(),
        trunk: None,
    };
    let mut child = child;
    let leg = match dialer
        .dial(Dial::new(&target, "8000", Duration::from_secs(10)))
        .await
    {
        Ok(leg) => leg,
        Err(r) => {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "dial failed: {r:?}; sipp said: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    // The customer hangs up after 1.5 s of our (idle, PCMA) stream.
    tokio::time::timeout(Duration::from_secs(10), leg.hung_up())
        .await
        .expect("the customer's BYE did not end the leg");
    finish(scenario, child).await;
    // Dropping the leg closes its RTP session.
    drop(leg);
    let types = rtp.await.unwrap();
    assert!(types.len() >= 30, "{} packets", types.len());
    assert!(types.iter().all(|&pt| pt == 8), "{types:?}");
}

async fn call_over_ipv6(tcp: bool) {
    let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let (ua, handler) = start_ua(v6).await;
    let (udp, tcp_addrs) = ua.local_addrs();
    assert!(udp[0].is_ipv6() && tcp_addrs[0].is_ipv6());
    let target = if tcp { tcp_addrs[0] } else { udp[0] };
    let scenario = "ipv6-call.xml";
    let mut cmd = sipp_command(scenario, "::1");
    cmd.arg(target.to_string())
        .args(["-p", &free_port().to_string()]);
    if tcp {
        cmd.args(["-t", "t1"]);
    }
    let child = cmd.spawn().expect("sipp (apt-get install -y sip-tester)");
    finish(scenario, child).await;
    let calls = handler.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (shared, _) = calls.into_values().next().unwrap();
    assert!(
        *shared.ended.borrow(),
        "the caller's BYE did not end the call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_ipv6_udp_and_tcp_with_received_and_rport_in_the_via() {
    call_over_ipv6(false).await;
    call_over_ipv6(true).await;
}
