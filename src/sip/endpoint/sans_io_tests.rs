//! The endpoint driven without sockets or a runtime clock: messages in, messages out, and the
//! time jumped from one deadline to the next.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Endpoint, Notice, Transmit};
use crate::sip::message;
use crate::sip::registrar::RegistrarConfig;
use crate::sip::transport::{Peer, Received, Transport};
use crate::sip::ua::{CallHandler, Cmd, IncomingCall, UaConfig};

/// Serves 8000 and keeps every incoming call handed to it.
#[derive(Default)]
struct Calls(Mutex<Vec<IncomingCall>>);

impl CallHandler for Calls {
    fn serves(&self, number: &str) -> bool {
        number == "8000"
    }

    fn incoming(&self, call: IncomingCall) {
        self.0.lock().unwrap().push(call);
    }

    fn registration(&self, _user: &str, _registered: bool) {}
}

const US: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:5999";

fn endpoint(handler: Arc<Calls>, t0: Instant) -> Endpoint {
    endpoint_with(handler, t0, Default::default(), Default::default())
}

/// An endpoint with `limits`, one of the workers sharing `shared`.
fn endpoint_with(
    handler: Arc<Calls>,
    t0: Instant,
    limits: crate::sip::ua::UaLimits,
    shared: Arc<crate::sip::shard::Shared>,
) -> Endpoint {
    let us: SocketAddr = US.parse().unwrap();
    Endpoint::new(
        UaConfig {
            udp: vec![us],
            tcp: vec![],
            public_ip: None,
            public_name: None,
            registrar: RegistrarConfig::default(),
            register_auth: None,
            authenticate_register: false,
            authenticate_invite: false,
            session_expires: 1800,
            limits,
        },
        (Some(us), None),
        handler,
        Arc::new(crate::ops::metrics::SipMetrics::default()),
        t0,
        us.ip(),
        shared,
    )
}

fn received(text: &str, at: Instant) -> Cmd {
    Cmd::Received(Received {
        bytes: text.as_bytes().to_vec(),
        peer: Peer {
            addr: CALLER.parse().unwrap(),
            transport: Transport::Udp,
        },
        local: US.parse().unwrap(),
        framing_error: None,
        at,
    })
}

fn sent(ep: &mut Endpoint) -> Vec<String> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|Transmit { bytes, .. }| String::from_utf8_lossy(&bytes).to_string())
        .collect()
}

fn header(msg: &str, name: &str) -> String {
    message::parse(msg.as_bytes())
        .ok()
        .and_then(|m| message::header_value(&m, name))
        .unwrap_or_default()
}

#[test]
fn a_session_the_caller_never_refreshes_ends_with_our_bye_at_sixty_seconds_of_virtual_time() {
    let t0 = crate::clock::instant_origin();
    let calls = Arc::new(Calls::default());
    let mut ep = endpoint(calls.clone(), t0);
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:8000@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-si-1\r\n\
         From: <sip:+33612345678@{CALLER}>;tag=caller\r\nTo: <sip:8000@{US}>\r\n\
         Call-ID: sans-io-1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{CALLER}>\r\n\
         Supported: timer\r\nSession-Expires: 90;refresher=uac\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    ep.handle_command(t0, received(&invite, t0));
    // The call is offered to the application as a notice, not by a call into it.
    let call_id = std::iter::from_fn(|| ep.poll_event())
        .find_map(|n| match n {
            Notice::Incoming(call) => Some(call.call_id),
            _ => None,
        })
        .expect("the call was not offered");
    assert!(calls.0.lock().unwrap().is_empty());
    sent(&mut ep);
    let (done, _answered) = oneshot::channel();
    ep.handle_command(
        t0,
        Cmd::Answer {
            call: call_id,
            sdp: sdp.to_string(),
            done,
        },
    );
    let ok = sent(&mut ep)
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .expect("no 200 OK");
    assert!(header(&ok, "Session-Expires").starts_with("90;refresher=uac"));
    let ack = format!(
        "ACK sip:8000@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-si-2\r\n\
         From: <sip:+33612345678@{CALLER}>;tag=caller\r\nTo: {}\r\nCall-ID: sans-io-1\r\n\
         CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header(&ok, "To")
    );
    ep.handle_command(t0, received(&ack, t0));
    sent(&mut ep);
    // Jump from deadline to deadline until the BYE goes out.
    let mut bye_at = None;
    while let Some(at) = ep.poll_timeout() {
        if at > t0 + Duration::from_secs(80) {
            break;
        }
        ep.handle_timeout(at);
        if sent(&mut ep).iter().any(|m| m.starts_with("BYE ")) {
            bye_at = Some(at - t0);
            break;
        }
    }
    // 90 - min(32, 90/3) = 60 s.
    let bye_at = bye_at.expect("no BYE within 80 s");
    assert!(
        bye_at >= Duration::from_secs(60) && bye_at < Duration::from_secs(61),
        "BYE after {bye_at:?}"
    );
}

fn plain_invite(call_id: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:8000@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-{call_id}\r\n\
         From: <sip:+33612345678@{CALLER}>;tag=caller\r\nTo: <sip:8000@{US}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{CALLER}>\r\n\
         Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The application answers `call` (with a placeholder SDP).
fn answer_cmd(call: &str) -> Cmd {
    let (done, _) = oneshot::channel();
    Cmd::Answer {
        call: call.into(),
        sdp: "v=0\r\n".into(),
        done,
    }
}

/// The final responses among what `ep` sent.
fn finals(ep: &mut Endpoint) -> Vec<String> {
    sent(ep)
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 ") && !m.starts_with("SIP/2.0 1"))
        .collect()
}

#[test]
fn max_calls_and_setup_slots_are_counted_across_workers() {
    let t0 = crate::clock::instant_origin();
    let shared = Arc::new(crate::sip::shard::Shared::default());
    let limits = crate::sip::ua::UaLimits {
        max_calls: 2,
        max_setup_calls: 1,
        ..Default::default()
    };
    let calls = Arc::new(Calls::default());
    let mut a = endpoint_with(calls.clone(), t0, limits.clone(), shared.clone());
    let mut b = endpoint_with(calls.clone(), t0, limits, shared.clone());
    // Worker A sets up a call: worker B's caller finds the one setup slot taken.
    a.handle_command(t0, received(&plain_invite("shard-a"), t0));
    assert!(finals(&mut a).is_empty());
    assert!(matches!(a.poll_event(), Some(Notice::Incoming(_))));
    b.handle_command(t0, received(&plain_invite("shard-b"), t0));
    let refused = finals(&mut b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].starts_with("SIP/2.0 503 "), "{refused:?}");
    assert!(refused[0].contains("\r\nRetry-After: "), "{refused:?}");
    // Answered, A's call frees the setup slot but keeps its call slot.
    let answer = answer_cmd("shard-a");
    a.handle_command(t0, answer);
    assert!(finals(&mut a)[0].starts_with("SIP/2.0 200 "));
    b.handle_command(t0, received(&plain_invite("shard-c"), t0));
    assert!(finals(&mut b).is_empty());
    assert!(matches!(b.poll_event(), Some(Notice::Incoming(_))));
    assert_eq!((shared.calls(), shared.setting_up()), (2, 1));
    // Two calls held by two workers: max_calls is reached for both.
    let answer = answer_cmd("shard-c");
    b.handle_command(t0, answer);
    sent(&mut b);
    a.handle_command(t0, received(&plain_invite("shard-d"), t0));
    assert!(finals(&mut a)[0].starts_with("SIP/2.0 503 "));
    // Hung up on worker A, the slot is free for worker B.
    a.handle_command(
        t0,
        Cmd::Hangup {
            call: "shard-a".into(),
        },
    );
    assert_eq!(shared.calls(), 1);
    b.handle_command(t0, received(&plain_invite("shard-e"), t0));
    assert!(finals(&mut b).is_empty());
    assert!(matches!(b.poll_event(), Some(Notice::Incoming(_))));
}

#[test]
fn an_in_dialog_request_below_the_last_cseq_gets_500_and_is_not_acted_on() {
    let t0 = crate::clock::instant_origin();
    let calls = Arc::new(Calls::default());
    let mut ep = endpoint(calls, t0);
    ep.handle_command(t0, received(&plain_invite("order-1"), t0));
    sent(&mut ep);
    let answer = answer_cmd("order-1");
    ep.handle_command(t0, answer);
    let ok = finals(&mut ep).remove(0);
    let to = header(&ok, "To");
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:caller@{CALLER} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK-o{cseq}\r\n\
             From: <sip:+33612345678@{CALLER}>;tag=caller\r\nTo: {to}\r\nCall-ID: order-1\r\n\
             CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    ep.handle_command(t0, received(&in_dialog("ACK", 1), t0));
    ep.handle_command(t0, received(&in_dialog("INFO", 10), t0));
    assert!(finals(&mut ep)[0].starts_with("SIP/2.0 200 "));
    // Lower than 10: refused, and the BYE does not end the call.
    ep.handle_command(t0, received(&in_dialog("BYE", 5), t0));
    let refused = finals(&mut ep);
    assert!(
        refused[0].starts_with("SIP/2.0 500 Server Internal Error"),
        "{refused:?}"
    );
    assert!(ep.calls.contains_key("order-1"));
    // Equal to the last (a new transaction): in order.
    ep.handle_command(
        t0,
        received(&in_dialog("INFO", 10).replace("-o10", "-o10b"), t0),
    );
    assert!(finals(&mut ep)[0].starts_with("SIP/2.0 200 "));
    ep.handle_command(t0, received(&in_dialog("BYE", 11), t0));
    assert!(finals(&mut ep)[0].starts_with("SIP/2.0 200 "));
    assert!(!ep.calls.contains_key("order-1"));
}

/// What `ep` sent, with where to.
fn sent_to(ep: &mut Endpoint) -> Vec<(SocketAddr, String)> {
    std::iter::from_fn(|| ep.poll_transmit())
        .map(|Transmit { peer, bytes }| (peer.addr, String::from_utf8_lossy(&bytes).to_string()))
        .collect()
}

/// The application hangs `call` up: where the BYE went, and the BYE.
fn hang_up(ep: &mut Endpoint, now: Instant, call: &str) -> (SocketAddr, String) {
    ep.handle_command(now, Cmd::Hangup { call: call.into() });
    sent_to(ep)
        .into_iter()
        .find(|(_, m)| m.starts_with("BYE "))
        .expect("a BYE")
}

#[test]
fn as_uas_the_200_copies_record_route_and_the_bye_goes_to_the_first_route() {
    let t0 = crate::clock::instant_origin();
    let mut ep = endpoint(Arc::new(Calls::default()), t0);
    let invite = plain_invite("rr-uas").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRecord-Route: <sip:127.0.0.1:7001;lr;n=1>\r\n\
         Record-Route: <sip:127.0.0.1:7002;lr;n=2>\r\n",
    );
    ep.handle_command(t0, received(&invite, t0));
    sent_to(&mut ep);
    ep.handle_command(t0, answer_cmd("rr-uas"));
    let ok = sent_to(&mut ep)
        .into_iter()
        .find(|(_, m)| m.starts_with("SIP/2.0 200"))
        .expect("a 200");
    assert_eq!(ok.0, CALLER.parse().unwrap(), "a response follows the Via");
    let rr: Vec<&str> =
        ok.1.lines()
            .filter(|l| l.starts_with("Record-Route:"))
            .collect();
    assert_eq!(
        rr,
        [
            "Record-Route: <sip:127.0.0.1:7001;lr;n=1>",
            "Record-Route: <sip:127.0.0.1:7002;lr;n=2>"
        ]
    );
    let (to, bye) = hang_up(&mut ep, t0, "rr-uas");
    assert_eq!(to, "127.0.0.1:7001".parse().unwrap(), "{bye}");
    assert!(
        bye.starts_with(&format!("BYE sip:caller@{CALLER} SIP/2.0")),
        "{bye}"
    );
    let routes: Vec<&str> = bye.lines().filter(|l| l.starts_with("Route:")).collect();
    assert_eq!(
        routes,
        [
            "Route: <sip:127.0.0.1:7001;lr;n=1>",
            "Route: <sip:127.0.0.1:7002;lr;n=2>"
        ]
    );
}

#[test]
fn as_uac_the_ack_and_bye_follow_the_reversed_record_route_of_the_200() {
    let t0 = crate::clock::instant_origin();
    let mut ep = endpoint(Arc::new(Calls::default()), t0);
    let trunk: SocketAddr = "127.0.0.1:5080".parse().unwrap();
    let (events, _events) = tokio::sync::mpsc::unbounded_channel();
    let (call_id, _) = oneshot::channel();
    ep.handle_command(
        t0,
        Cmd::Dial {
            id: "rr-uac".into(),
            req: crate::sip::ua::DialRequest {
                uri: format!("sip:+33612345678@{trunk}"),
                peer: Peer {
                    addr: trunk,
                    transport: Transport::Udp,
                },
                from_user: "8000".into(),
                sdp: "v=0\r\n".into(),
                credentials: None,
                extra_headers: Vec::new(),
            },
            events,
            shared: crate::sip::ua::LegShared::new(),
            call_id,
            late_offer: false,
        },
    );
    let (to, invite) = sent_to(&mut ep).pop().expect("an INVITE");
    assert_eq!(to, trunk);
    let via = header(&invite, "Via");
    let from = header(&invite, "From");
    // The callee's side: the proxy nearest to it record-routed first, ours last.
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {via}\r\nRecord-Route: <sip:127.0.0.1:7001;lr>\r\n\
         Record-Route: <sip:127.0.0.1:7002;lr>\r\nFrom: {from}\r\n\
         To: <sip:+33612345678@{trunk}>;tag=callee\r\nCall-ID: rr-uac\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:callee@127.0.0.1:7100>\r\nContent-Length: 0\r\n\r\n"
    );
    ep.handle_command(t0, received(&ok, t0));
    let (to, ack) = sent_to(&mut ep)
        .into_iter()
        .find(|(_, m)| m.starts_with("ACK "))
        .expect("an ACK");
    assert_eq!(to, "127.0.0.1:7002".parse().unwrap(), "{ack}");
    assert!(
        ack.starts_with("ACK sip:callee@127.0.0.1:7100 SIP/2.0"),
        "{ack}"
    );
    let (to, bye) = hang_up(&mut ep, t0, "rr-uac");
    assert_eq!(to, "127.0.0.1:7002".parse().unwrap(), "{bye}");
    let routes: Vec<&str> = bye.lines().filter(|l| l.starts_with("Route:")).collect();
    assert_eq!(
        routes,
        [
            "Route: <sip:127.0.0.1:7002;lr>",
            "Route: <sip:127.0.0.1:7001;lr>"
        ]
    );
}
