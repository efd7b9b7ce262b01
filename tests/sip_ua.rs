//! The user agent on its own over real SIP on loopback, against SIPp (Debian's `sip-tester`):
//! RFC 4028 session timers in both roles. A small handler answers every call with a valid
//! SDP answer and keeps it up, so nothing but the SIP layer decides when a call ends.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use boomerang::media::sdp;
use boomerang::sip::registrar::RegistrarConfig;
use boomerang::sip::transport::{Peer, Transport};
use boomerang::sip::ua::{
    self, CallHandler, DialRequest, IncomingCall, LegShared, UaConfig, UaHandle, UacEvent,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p.is_multiple_of(2) && p < 65000 {
            return p;
        }
    }
}

/// Answers every call to any number at once and remembers each call's shared state.
#[derive(Default)]
struct Answerer {
    ua: OnceLock<UaHandle>,
    calls: Mutex<HashMap<String, (Arc<LegShared>, Instant)>>,
}

impl CallHandler for Answerer {
    fn serves(&self, _number: &str) -> bool {
        true
    }

    fn incoming(&self, call: IncomingCall) {
        let Some(ua) = self.ua.get().cloned() else {
            return;
        };
        let (answer, _) = sdp::answer(&call.offer, ua.public_ip, 40000).unwrap();
        self.calls
            .lock()
            .unwrap()
            .insert(call.call_id.clone(), (call.shared.clone(), Instant::now()));
        tokio::spawn(async move {
            assert!(ua.answer(&call.call_id, answer).await);
        });
    }

    fn registration(&self, _user: &str, _registered: bool) {}
}

async fn start_ua(ip: IpAddr) -> (UaHandle, Arc<Answerer>) {
    let handler = Arc::new(Answerer::default());
    let ua = ua::start(
        UaConfig {
            udp: vec![SocketAddr::new(ip, 0)],
            tcp: vec![SocketAddr::new(ip, 0)],
            public_ip: None,
            registrar: RegistrarConfig::default(),
            register_auth: None,
            authenticate_register: false,
            authenticate_invite: false,
            session_expires: 1800,
        },
        handler.clone(),
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

async fn finish(scenario: &str, child: tokio::process::Child) {
    let out = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("sipp did not finish")
        .unwrap();
    assert!(
        out.status.success(),
        "sipp {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("call") || l.contains("rror"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn ended(shared: &LegShared) {
    let mut rx = shared.ended.subscribe();
    let _ = rx.wait_for(|e| *e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_never_refreshes_its_session_gets_our_bye_before_expiry() {
    let (ua, handler) = start_ua(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let target = ua.local_addrs().0[0];
    let scenario = "timer-no-refresh.xml";
    let mut cmd = sipp_command(scenario, "127.0.0.1");
    cmd.arg(target.to_string())
        .args(["-p", &free_port().to_string()]);
    let child = cmd.spawn().expect("sipp (apt-get install -y sip-tester)");
    finish(scenario, child).await;
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

async fn we_refresh(scenario: &str) {
    let (ua, _handler) = start_ua(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let port = free_port();
    let mut cmd = sipp_command(scenario, "127.0.0.1");
    cmd.args(["-p", &port.to_string()]);
    let child = cmd.spawn().expect("sipp (apt-get install -y sip-tester)");
    tokio::time::sleep(Duration::from_millis(300)).await;
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
            },
            shared.clone(),
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
    let answered_at = Instant::now();
    // SIPp answers our refresh, then hangs up.
    finish(scenario, child).await;
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

/// Both ways of refreshing at once (each waits 45 s of real time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_refresher_we_send_update_or_a_reinvite_to_a_peer_without_update_at_half_the_interval() {
    tokio::join!(
        we_refresh("timer-refresh-update.xml"),
        we_refresh("timer-refresh-reinvite.xml")
    );
}
