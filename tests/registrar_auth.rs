//! The registrar over real SIP (raw UDP and SIPp): REGISTER is authenticated by default, so an
//! anonymous phone can neither add a contact to an agent nor log them out with `Contact: *`,
//! and users that are no agent get 404 and leave no state.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use boomerang::routing::StateKind;
use tokio::net::UdpSocket;

struct Running {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn engine(edit: impl FnOnce(String) -> String) -> Running {
    common::capture_logs();
    let dir = tempfile::tempdir().expect("temporary directory");
    let text = common::demo_config_text(edit);
    let config = Config::from_str_in(&text, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::start(Arc::new(config), SystemClock::shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Running { engine, _dir: dir }
}

impl Running {
    fn sip(&self) -> SocketAddr {
        self.engine.sip.udp[0]
    }

    fn alice(&self) -> StateKind {
        let agents = self.engine.router.agents();
        agents.get(agents.index_of("alice").expect("alice")).state()
    }
}

/// Sends one REGISTER without credentials from `sock`; the status line of the final answer.
async fn register_anonymously(
    sock: &UdpSocket,
    target: SocketAddr,
    user: &str,
    contact: &str,
    expires: u32,
    call_id: &str,
) -> String {
    let local = sock.local_addr().expect("local address");
    let msg = format!(
        "REGISTER sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{target}>;tag=t{call_id}\r\n\
         To: <sip:{user}@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\n\
         Contact: {contact}\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), target).await.expect("send");
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("no answer to REGISTER")
            .expect("receive");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let status = text.lines().next().unwrap_or_default().to_string();
        if !status.starts_with("SIP/2.0 1") {
            return status;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_register_neither_logs_an_agent_in_nor_out_by_default() {
    let r = engine(|t| t).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let status = register_anonymously(
        &sock,
        r.sip(),
        "1001",
        "<sip:1001@127.0.0.1:9>",
        300,
        "anon-1",
    )
    .await;
    assert!(status.starts_with("SIP/2.0 401 "), "{status}");
    assert_eq!(r.alice(), StateKind::LoggedOut, "no contact was added");
    // Alice's phone registers with her password (the demo's), then a stranger tries to log
    // her out with the wildcard.
    common::register_alice(r.sip(), "127.0.0.1:9").await;
    assert_eq!(r.alice(), StateKind::Ready);
    let status = register_anonymously(&sock, r.sip(), "1001", "*", 0, "anon-2").await;
    assert!(status.starts_with("SIP/2.0 401 "), "{status}");
    assert_eq!(r.alice(), StateKind::Ready, "still logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_for_a_user_that_is_no_agent_gets_404_even_when_the_registrar_is_open() {
    for open in [false, true] {
        let r = engine(|t| {
            if open {
                t.replace(
                    "  realm: boomerang",
                    "  realm: boomerang\n  authenticate_register: false",
                )
            } else {
                t
            }
        })
        .await;
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        for i in 0..50 {
            let user = format!("{}", 50_000 + i);
            let status = register_anonymously(
                &sock,
                r.sip(),
                &user,
                &format!("<sip:{user}@127.0.0.1:9>"),
                300,
                &format!("made-up-{open}-{i}"),
            )
            .await;
            assert!(status.starts_with("SIP/2.0 404 "), "open={open}: {status}");
        }
        // Opting out of authentication (an explicit edit) lets an agent's phone in without one.
        let status = register_anonymously(
            &sock,
            r.sip(),
            "1001",
            "<sip:1001@127.0.0.1:9>",
            300,
            &format!("alice-{open}"),
        )
        .await;
        if open {
            assert!(status.starts_with("SIP/2.0 200 "), "{status}");
            assert_eq!(r.alice(), StateKind::Ready);
        } else {
            assert!(status.starts_with("SIP/2.0 401 "), "{status}");
        }
    }
}
