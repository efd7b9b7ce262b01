//! RFC 4475 / RFC 5118 messages sent as they are, over UDP and over TCP, to a live engine (the
//! demo configuration on loopback ports): each must get the status the RFC asks for, and none
//! may be met with silence. The files are the RFC's bytes, in `tests/torture/`.

use std::net::SocketAddr;
use std::time::Duration;

use boomerang::engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

struct Running {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn engine() -> Running {
    let (dir, engine) = common::start_demo(|_| {}).await;
    Running { engine, _dir: dir }
}

fn load(name: &str) -> Vec<u8> {
    let path = common::repo().join("tests/torture").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The status codes of every response read within `wait`, in order.
fn codes(text: &str) -> Vec<u16> {
    text.split("\r\n")
        .filter_map(|l| l.strip_prefix("SIP/2.0 "))
        .filter_map(|l| l.get(..3)?.parse().ok())
        .collect()
}

/// Sends `bytes` as one datagram; the status codes of the answers within `wait`.
async fn over_udp(target: SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u16> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, target).await.unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        out.extend(codes(&String::from_utf8_lossy(&buf[..n])));
    }
    out
}

/// Writes `bytes` on a fresh connection, then half-closes it like a sender that has nothing
/// more to say; the status codes read until the engine closes or `wait` passes in silence.
async fn over_tcp(target: SocketAddr, bytes: &[u8], wait: Duration) -> Vec<u16> {
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let _ = s.shutdown().await;
    let mut text = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(wait, s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    codes(&String::from_utf8_lossy(&text))
}

/// What a file must get: the first final status (provisional 1xx skipped).
fn first_final(codes: &[u16]) -> Option<u16> {
    codes.iter().copied().find(|c| *c >= 200)
}

const WAIT: Duration = Duration::from_millis(1500);

/// (file, statuses accepted as the first final answer over UDP, over TCP). Valid requests are
/// processed: OPTIONS gets 200 (or 404 for a user that is no route point), an INVITE to a
/// number that is no route point 404. Over TCP a message without Content-Length cannot be
/// framed (RFC 3261 §18.3), hence inv2543's 400 there.
const CASES: &[(&str, &[u16], &[u16])] = &[
    ("intmeth.dat", &[501, 405], &[501, 405]),
    ("esc02.dat", &[501, 405], &[501, 405]),
    ("semiuri.dat", &[200, 404], &[200, 404]),
    ("inv2543.dat", &[404], &[400]),
    ("unkscm.dat", &[416], &[416]),
    ("ltgtruri.dat", &[400], &[400]),
    ("badvers.dat", &[505], &[505]),
    ("lwsruri.dat", &[400], &[400]),
    ("escruri.dat", &[400], &[400]),
    ("insuf.dat", &[400], &[400]),
    // Require checks come after the Request-URI's (RFC 3261 §8.2): "user" is no route point.
    ("bext01.dat", &[404, 420], &[404, 420]),
    // An endpoint processes Max-Forwards 0 as if it were positive (RFC 4475 §3.3.7).
    ("zeromf.dat", &[200, 404], &[200, 404]),
];

async fn check_cases(tcp: bool) {
    let r = engine().await;
    let (udp, tcp_addr) = (r.engine.sip.udp[0], r.engine.sip.tcp[0]);
    let mut failures = Vec::new();
    for (file, over_udp_want, over_tcp_want) in CASES {
        let want = if tcp { over_tcp_want } else { over_udp_want };
        let got = if tcp {
            over_tcp(tcp_addr, &load(file), WAIT).await
        } else {
            over_udp(udp, &load(file), WAIT).await
        };
        if !first_final(&got).is_some_and(|c| want.contains(&c)) {
            failures.push(format!("{file}: want one of {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_requests_get_the_rfc_status_over_udp() {
    check_cases(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_requests_get_the_rfc_status_over_tcp() {
    check_cases(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_requiring_unknown_extensions_of_a_route_point_get_420_naming_them() {
    let r = engine().await;
    // bext01 addressed to the sales line: a request we would serve, but for its Require.
    let text = String::from_utf8_lossy(&load("bext01.dat"))
        .replace("OPTIONS sip:user@example.com", "OPTIONS sip:8000@127.0.0.1");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(text.as_bytes(), r.engine.sip.udp[0])
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("SIP/2.0 420"), "{answer}");
    let unsupported = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("unsupported:"))
        .unwrap_or_else(|| panic!("no Unsupported header: {answer}"));
    assert!(
        unsupported.contains("nothingSupportsThis")
            && unsupported.contains("nothingSupportsThisEither"),
        "{unsupported}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_framing_error_keeps_the_answer_to_the_valid_request_before_it() {
    let r = engine().await;
    // dblreq: a REGISTER, then an INVITE whose body is shorter than its Content-Length; the
    // sender half-closes. The REGISTER's answer must still come back on the connection.
    let got = over_tcp(r.engine.sip.tcp[0], &load("dblreq.dat"), WAIT).await;
    assert!(
        first_final(&got).is_some_and(|c| c != 400),
        "no answer to the REGISTER: {got:?}"
    );
    // A valid OPTIONS followed by an unframeable message (no Content-Length on a stream).
    let options = "OPTIONS sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKdbl1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCall-ID: dbl-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let broken = "OPTIONS sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKdbl2\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCall-ID: dbl-2\r\nCSeq: 2 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: zz\r\n\r\n";
    let got = over_tcp(
        r.engine.sip.tcp[0],
        format!("{options}{broken}").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(got, vec![200, 400], "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_references_with_three_colons_in_a_row_are_refused() {
    let r = engine().await;
    let udp = r.engine.sip.udp[0];
    let msg = |uri: &str, via: &str, contact: &str| {
        format!(
            "REGISTER {uri} SIP/2.0\r\nTo: <sip:user@example.com>\r\nFrom: <sip:user@example.com>;tag=81x2\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKas3-111\r\nCall-ID: v6bad-{}\r\nMax-Forwards: 70\r\nContact: <sip:caller@{contact}:5060>\r\nCSeq: 98176 REGISTER\r\nContent-Length: 0\r\n\r\n",
            rand_suffix()
        )
    };
    let good = "[2001:db8::10]";
    let bad = "[2001:db8:::192.0.2.1]";
    for (what, m) in [
        ("Request-URI", msg(&format!("sip:{bad}"), good, good)),
        ("Via", msg(&format!("sip:{good}"), bad, good)),
        ("Contact", msg(&format!("sip:{good}"), good, bad)),
    ] {
        let got = over_udp(udp, m.as_bytes(), WAIT).await;
        assert_eq!(first_final(&got), Some(400), "{what}: {got:?}");
    }
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
