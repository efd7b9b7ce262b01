//! The registrar over real SIP (raw UDP and SIPp): REGISTER is authenticated by default, so an
//! anonymous phone can neither add a contact to an agent nor log them out with `Contact: *`,
//! and users that are no agent get 404 and leave no state.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use boomerang::engine::Engine;
use boomerang::routing::StateKind;
use tokio::net::UdpSocket;

struct Running {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn engine(edit: impl FnOnce(&mut boomerang::config::ConfigSpec)) -> Running {
    common::capture_logs();
    let (dir, engine) = common::start_demo(edit).await;
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

/// Sends one REGISTER without credentials from `phone`; the status line of the final answer.
async fn register_anonymously(
    phone: &mut Phone,
    user: &str,
    contact: &str,
    expires: u32,
    call_id: &str,
) -> String {
    let resp = phone.register(user, contact, expires, call_id, None).await;
    resp.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_register_neither_logs_an_agent_in_nor_out_by_default() {
    let r = engine(|_| {}).await;
    let mut sock = Phone::new("127.0.0.1", r.sip()).await;
    let status =
        register_anonymously(&mut sock, "1001", "<sip:1001@127.0.0.1:9>", 300, "anon-1").await;
    assert!(status.starts_with("SIP/2.0 401 "), "{status}");
    assert_eq!(r.alice(), StateKind::LoggedOut, "no contact was added");
    // Alice's phone registers with her password (the demo's), then a stranger tries to log
    // her out with the wildcard.
    common::register_alice(r.sip(), "127.0.0.1:9").await;
    assert_eq!(r.alice(), StateKind::Ready);
    let status = register_anonymously(&mut sock, "1001", "*", 0, "anon-2").await;
    assert!(status.starts_with("SIP/2.0 401 "), "{status}");
    assert_eq!(r.alice(), StateKind::Ready, "still logged in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_for_a_user_that_is_no_agent_gets_404_even_when_the_registrar_is_open() {
    for open in [false, true] {
        let r = engine(|spec| {
            if open {
                spec.sip.authenticate_register = false;
            }
        })
        .await;
        let mut sock = Phone::new("127.0.0.1", r.sip()).await;
        for i in 0..50 {
            let user = format!("{}", 50_000 + i);
            let status = register_anonymously(
                &mut sock,
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
            &mut sock,
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

/// A SIP client on its own loopback socket, for hand-made requests.
struct Phone {
    sock: UdpSocket,
    target: SocketAddr,
    seq: u32,
}

impl Phone {
    async fn new(ip: &str, target: SocketAddr) -> Phone {
        let sock = UdpSocket::bind(format!("{ip}:0")).await.expect("bind");
        Phone {
            sock,
            target,
            seq: 0,
        }
    }

    /// Sends a REGISTER for `user` (with `authorization`, if any) and returns the final answer.
    async fn register(
        &mut self,
        user: &str,
        contact: &str,
        expires: u32,
        call_id: &str,
        authorization: Option<&str>,
    ) -> String {
        self.seq += 1;
        let (target, local, seq) = (self.target, self.sock.local_addr().expect("addr"), self.seq);
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let msg = format!(
            "REGISTER sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}{seq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{target}>;tag=t{call_id}\r\n\
             To: <sip:{user}@{target}>\r\nCall-ID: {call_id}\r\nCSeq: {seq} REGISTER\r\n\
             Contact: {contact}\r\n{auth}Expires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        self.exchange(&msg).await
    }

    async fn exchange(&self, msg: &str) -> String {
        self.sock
            .send_to(msg.as_bytes(), self.target)
            .await
            .expect("send");
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _) =
                tokio::time::timeout(Duration::from_secs(5), self.sock.recv_from(&mut buf))
                    .await
                    .expect("no answer")
                    .expect("receive");
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("SIP/2.0 1") {
                return text;
            }
        }
    }

    /// A fresh MD5 challenge for `user` (the first WWW-Authenticate of a 401).
    async fn challenge(&mut self, user: &str) -> String {
        let id = format!("ch-{}", rand_token());
        let resp = self
            .register(user, &format!("<sip:{user}@127.0.0.1:9>"), 300, &id, None)
            .await;
        assert!(resp.starts_with("SIP/2.0 401 "), "{resp}");
        www_authenticate(&resp)
    }
}

fn rand_token() -> String {
    format!("{:x}", uuid::Uuid::new_v4().as_u128())
}

fn www_authenticate(resp: &str) -> String {
    resp.lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .expect("a challenge")
        .to_string()
}

fn status(resp: &str) -> u16 {
    resp.get(8..11)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {resp}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_authorization_is_refused_for_a_new_registration() {
    use boomerang::sip::digest::{Algorithm, respond_with_cnonce, response_from_ha1};
    let r = engine(|_| {}).await;
    let uri = format!("sip:{}", r.sip());
    let mut phone = Phone::new("127.0.0.1", r.sip()).await;
    let challenge = phone.challenge("1001").await;
    let pw = common::ALICE_PASSWORD;
    let auth = respond_with_cnonce(&challenge, "REGISTER", &uri, "1001", pw, "c1", 1).unwrap();
    let ok = phone
        .register(
            "1001",
            "<sip:1001@127.0.0.1:9>",
            300,
            "alice-1",
            Some(&auth),
        )
        .await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(r.alice(), StateKind::Ready);
    // Someone who captured that request sends its Authorization again with a new Call-ID to
    // log alice out, then to add a contact of theirs: refused, alice stays registered.
    let mut thief = Phone::new("127.0.0.1", r.sip()).await;
    let out = thief.register("1001", "*", 0, "thief-1", Some(&auth)).await;
    assert_eq!(status(&out), 401, "{out}");
    let out = thief
        .register(
            "1001",
            "<sip:1001@127.0.0.1:7>",
            300,
            "thief-2",
            Some(&auth),
        )
        .await;
    assert_eq!(status(&out), 401, "{out}");
    assert_eq!(r.alice(), StateKind::Ready);
    // The phone itself may reuse the nonce with a higher nonce-count (a refresh).
    let next = respond_with_cnonce(&challenge, "REGISTER", &uri, "1001", pw, "c1", 2).unwrap();
    let ok = phone
        .register(
            "1001",
            "<sip:1001@127.0.0.1:9>",
            300,
            "alice-1",
            Some(&next),
        )
        .await;
    assert_eq!(status(&ok), 200, "{ok}");
    // Without qop a nonce is good once.
    let challenge = phone.challenge("1001").await;
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("nonce");
    let response = response_from_ha1(
        Algorithm::Md5,
        &Algorithm::Md5.ha1("1001", "boomerang", pw),
        "REGISTER",
        &uri,
        nonce,
        None,
    );
    let plain = format!(
        "Digest username=\"1001\", realm=\"boomerang\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\""
    );
    let ok = phone
        .register(
            "1001",
            "<sip:1001@127.0.0.1:9>",
            300,
            "alice-2",
            Some(&plain),
        )
        .await;
    assert_eq!(status(&ok), 200, "{ok}");
    let out = thief
        .register("1001", "*", 0, "thief-3", Some(&plain))
        .await;
    assert_eq!(status(&out), 401, "{out}");
    assert_eq!(r.alice(), StateKind::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_stopped_per_user_and_per_source_and_logged_with_the_source() {
    use boomerang::sip::auth_guard::{BLOCK_SECONDS, MAX_FAILURES};
    use boomerang::sip::digest::respond;
    let r = engine(|spec| spec.sip.authenticate_invite = true).await;
    let uri = format!("sip:{}", r.sip());
    let mut guesser = Phone::new("127.0.0.1", r.sip()).await;
    let guesser_addr = guesser.sock.local_addr().expect("addr").to_string();
    let challenge = guesser.challenge("1001").await;
    for i in 0..MAX_FAILURES {
        let auth = respond(&challenge, "REGISTER", &uri, "1001", &format!("guess{i}")).unwrap();
        let out = guesser
            .register(
                "1001",
                "<sip:1001@127.0.0.1:7>",
                300,
                &format!("g{i}"),
                Some(&auth),
            )
            .await;
        assert_eq!(status(&out), 401, "guess {i}: {out}");
    }
    // Blocked: even the right password is not verified now.
    let right = respond(&challenge, "REGISTER", &uri, "1001", common::ALICE_PASSWORD).unwrap();
    let out = guesser
        .register(
            "1001",
            "<sip:1001@127.0.0.1:7>",
            300,
            "g-right",
            Some(&right),
        )
        .await;
    assert_eq!(status(&out), 503, "{out}");
    let retry: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {out}"));
    assert!(retry > 0 && retry <= BLOCK_SECONDS + 1, "{retry}");
    assert_eq!(r.alice(), StateKind::LoggedOut);
    // The failures were logged with where they came from.
    let logged = common::log_lines(&["authentication failed", &guesser_addr]);
    assert_eq!(logged.len(), MAX_FAILURES as usize, "{logged:?}");
    // From elsewhere: alice (the user under attack) is blocked too, bob is not.
    let mut other = Phone::new("127.0.0.2", r.sip()).await;
    let challenge = other.challenge("1002").await;
    let bob = respond(&challenge, "REGISTER", &uri, "1002", "bob-1002").unwrap();
    let out = other
        .register("1002", "<sip:1002@127.0.0.2:9>", 300, "bob-1", Some(&bob))
        .await;
    assert_eq!(status(&out), 200, "{out}");
    let alice = respond(&challenge, "REGISTER", &uri, "1001", common::ALICE_PASSWORD).unwrap();
    let out = other
        .register(
            "1001",
            "<sip:1001@127.0.0.2:9>",
            300,
            "alice-1",
            Some(&alice),
        )
        .await;
    assert_eq!(status(&out), 503, "{out}");
    // INVITE authentication shares the guard: a call from alice's phone is refused too.
    let target = r.sip();
    let local = other.sock.local_addr().expect("addr");
    let invite = format!(
        "INVITE sip:8000@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKinv1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1001@{target}>;tag=inv1\r\nTo: <sip:8000@{target}>\r\n\
         Call-ID: inv-1\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@{local}>\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let out = other.exchange(&invite).await;
    assert_eq!(status(&out), 503, "{out}");
}
