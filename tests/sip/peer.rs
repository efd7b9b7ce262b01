//! The engine's SIP front seen by an independent peer speaking raw SIP over UDP: situations an
//! everyday or hostile caller creates around a call (hang-up before the answer, offers inside
//! the call, requests that do not match the dialog), each checked on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::common;

/// A flow that answers and plays a minute of silence (the caller hangs up).
const ANSWER: &str = "application: answer-and-wait\ntype: default\nself_service:\n  - type: play_message\n    prompts:\n      - silence_ms: 60000\n    barge_in: false\n";

/// The demo engine with 8999 answering and waiting, and 8009 queueing without answering.
async fn engine() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    boomerang::engine::Engine,
) {
    common::capture_logs();
    let flows = common::flows_plus(&[
        ("answer.yaml", ANSWER),
        (
            "ringing-queue.yaml",
            "application: ringing-queue\ntype: default\nassisted_service:\n  - type: route_call\n    queue: Sales_VQ\n    timeout_seconds: 600\n",
        ),
    ]);
    let (dir, engine) = common::start_demo(|spec| {
        common::route_point_to(spec, "8999", "answer.yaml", flows.path());
        common::route_point_to(spec, "8009", "ringing-queue.yaml", flows.path());
    })
    .await;
    (flows, dir, engine)
}

/// An SDP offer from port `rtp` with the m-line's `formats` and extra `attrs` lines.
fn sdp(rtp: u16, formats: &str, attrs: &str) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp} RTP/AVP {formats}\r\n{attrs}"
    )
}

/// A header's value in a message's text (first occurrence, case-insensitive name).
fn header(msg: &str, name: &str) -> Option<String> {
    msg.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// A response's status code.
fn status(msg: &str) -> Option<u16> {
    msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// The method named in a message's CSeq.
fn cseq_method(msg: &str) -> String {
    header(msg, "CSeq")
        .and_then(|c| c.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default()
}

/// A message's body.
fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// A caller on its own UDP socket, one call (Call-ID) at a time.
struct Peer {
    sock: UdpSocket,
    target: SocketAddr,
    call_id: String,
    from_tag: String,
    /// The engine's To tag once it answered.
    to_tag: Option<String>,
    branch: u32,
}

impl Peer {
    async fn new(target: SocketAddr, call_id: &str) -> Peer {
        Peer {
            sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            target,
            call_id: call_id.to_string(),
            from_tag: format!("{call_id}-ft"),
            to_tag: None,
            branch: 0,
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// A request of this call: `to_tag` as given (None: outside the dialog), `extra` header
    /// lines (each ending in CRLF), an SDP `body` when not empty. A new branch each time
    /// unless `branch` is given.
    fn request(
        &mut self,
        method: &str,
        number: &str,
        cseq: u32,
        to_tag: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        self.branch += 1;
        let port = self.port();
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        format!(
            "{method} sip:{number}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{}-{}\r\nFrom: <sip:+33612345678@127.0.0.1>;tag={}\r\nTo: <sip:{number}@127.0.0.1>{to_tag}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContact: <sip:caller@127.0.0.1:{port}>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.call_id,
            self.branch,
            self.from_tag,
            self.call_id,
            body.len()
        )
    }

    async fn send(&self, text: &str) {
        self.sock
            .send_to(text.as_bytes(), self.target)
            .await
            .unwrap();
    }

    /// Everything received within `wait`.
    async fn collect(&self, wait: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        let until = boomerang::clock::tokio_now() + wait;
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(until, self.sock.recv_from(&mut buf)).await
        {
            out.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        out
    }

    /// The first final response to a `method` request within `wait` (provisionals and
    /// other messages skipped).
    async fn final_for(&self, method: &str, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let until = boomerang::clock::tokio_now() + wait;
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(until, self.sock.recv_from(&mut buf)).await
        {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if status(&text).is_some_and(|c| c >= 200) && cseq_method(&text) == method {
                return Some(text);
            }
        }
        None
    }

    /// Calls `number` with `offer` and acknowledges the 200; the 200.
    async fn call(&mut self, number: &str, offer: &str) -> String {
        let invite = self.request("INVITE", number, 1, None, "", offer);
        self.send(&invite).await;
        let ok = self
            .final_for("INVITE", Duration::from_secs(5))
            .await
            .expect("no answer to the INVITE");
        assert_eq!(status(&ok), Some(200), "{ok}");
        let tag = header(&ok, "To")
            .and_then(|t| t.split(";tag=").nth(1).map(|t| t.to_string()))
            .expect("no To tag in the 200");
        self.to_tag = Some(tag);
        self.ack(1).await;
        ok
    }

    /// ACKs the 2xx to the INVITE with CSeq `cseq`.
    async fn ack(&mut self, cseq: u32) {
        let tag = self.to_tag.clone();
        let ack = self.request("ACK", "8999", cseq, tag.as_deref(), "", "");
        self.send(&ack).await;
    }

    /// Sends an in-dialog `method` with CSeq `cseq` and returns its final response.
    async fn in_dialog(&mut self, method: &str, cseq: u32, extra: &str, body: &str) -> String {
        let tag = self.to_tag.clone();
        let req = self.request(method, "8999", cseq, tag.as_deref(), extra, body);
        self.send(&req).await;
        self.final_for(method, Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("no answer to {method}"))
    }
}

/// Waits (up to 5 s) until Sales_VQ holds `n` callers; whether it did.
async fn waiting(engine: &boomerang::engine::Engine, n: usize) -> bool {
    for _ in 0..500 {
        if engine.router.waiting("Sales_VQ").unwrap_or(usize::MAX) == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The status codes of `msgs` with the method each answers.
fn summary(msgs: &[String]) -> Vec<(u16, String)> {
    msgs.iter()
        .filter_map(|m| Some((status(m)?, cseq_method(m))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bye_before_the_answer_ends_the_invite_with_487_and_leaves_the_queue() {
    let (_f, _d, engine) = engine().await;
    let mut p = Peer::new(engine.sip.udp[0], "bye-early").await;
    let invite = p.request("INVITE", "8009", 1, None, "", &sdp(40000, "0", ""));
    p.send(&invite).await;
    assert!(waiting(&engine, 1).await, "the call was not queued");
    // The caller hangs up with a BYE (no To tag: the engine sent no tagged provisional).
    let bye = p.request("BYE", "8009", 2, None, "", "");
    p.send(&bye).await;
    let got = summary(&p.collect(Duration::from_secs(2)).await);
    assert!(got.contains(&(200, "BYE".into())), "{got:?}");
    // The INVITE gets its final answer: no transaction is left waiting for one.
    assert!(got.contains(&(487, "INVITE".into())), "{got:?}");
    assert!(waiting(&engine, 0).await, "the caller is still queued");
    // A retransmission of the INVITE gets the 487 again (its own, or Timer G's), not a 100.
    p.send(&invite).await;
    let again = summary(&p.collect(Duration::from_secs(1)).await);
    assert!(
        !again.is_empty() && again.iter().all(|g| *g == (487, "INVITE".into())),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_tags_name_no_dialog_get_481_and_the_call_goes_on() {
    let (_f, _d, engine) = engine().await;
    let t = engine.sip.udp[0];
    let mut p = Peer::new(t, "wrong-tags").await;
    p.call("8999", &sdp(40002, "0", "")).await;
    // A BYE with the call's Call-ID but another From tag (someone else), then one with
    // another To tag: neither names the call's dialog (RFC 3261 §12.2.2).
    let real = p.from_tag.clone();
    p.from_tag = "someone-else".into();
    let r = p.in_dialog("BYE", 2, "", "").await;
    assert_eq!(status(&r), Some(481), "{r}");
    p.from_tag = real;
    let ours = p.to_tag.replace("not-the-engines".into());
    let r = p.in_dialog("BYE", 3, "", "").await;
    assert_eq!(status(&r), Some(481), "{r}");
    p.to_tag = ours;
    // The call is still up: the caller's own BYE ends it.
    let r = p.in_dialog("BYE", 4, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");

    // Before the answer: an UPDATE with a To tag the engine never gave (it sent no tagged
    // provisional) is no early dialog's.
    let mut q = Peer::new(t, "wrong-tags-early").await;
    let invite = q.request("INVITE", "8009", 1, None, "", &sdp(40004, "0", ""));
    q.send(&invite).await;
    assert!(waiting(&engine, 1).await, "the call was not queued");
    let update = q.request(
        "UPDATE",
        "8009",
        2,
        Some("made-up"),
        "",
        &sdp(40004, "0", "a=sendonly\r\n"),
    );
    q.send(&update).await;
    let r = q
        .final_for("UPDATE", Duration::from_secs(3))
        .await
        .expect("no answer to the UPDATE");
    assert_eq!(status(&r), Some(481), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_200_to_a_reinvite_is_retransmitted_over_udp_until_its_ack() {
    let (_f, _d, engine) = engine().await;
    let mut p = Peer::new(engine.sip.udp[0], "reinvite-rtx").await;
    p.call("8999", &sdp(40006, "0", "")).await;
    let tag = p.to_tag.clone();
    let hold = p.request(
        "INVITE",
        "8999",
        2,
        tag.as_deref(),
        "",
        &sdp(40006, "0", "a=sendonly\r\n"),
    );
    p.send(&hold).await;
    // No ACK yet: as for the first 200, T1 (500 ms) then 1 s later it comes again
    // (RFC 3261 §13.3.1.4, §14.2).
    let got = summary(&p.collect(Duration::from_millis(2000)).await);
    let oks = got.iter().filter(|g| **g == (200, "INVITE".into())).count();
    assert!(oks >= 2, "the 200 was not retransmitted: {got:?}");
    p.ack(2).await;
    // Once acknowledged, it stops: past what was on its way, the next one (2 s after the
    // last) never comes.
    p.collect(Duration::from_millis(600)).await;
    let after = summary(&p.collect(Duration::from_millis(3000)).await);
    assert!(after.is_empty(), "{after:?}");
    let r = p.in_dialog("BYE", 3, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");
}

/// The `m=` lines of an SDP body.
fn m_lines(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("m="))
        .map(|l| l.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_with_another_codec_or_more_streams_gets_an_answer_to_that_offer() {
    let (_f, _d, engine) = engine().await;
    // The caller's RTP port: what the engine sends there is read after the re-INVITE.
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let mut p = Peer::new(engine.sip.udp[0], "reinvite-codec").await;
    let first = p.call("8999", &sdp(rtp_port, "0", "")).await;
    assert!(m_lines(body(&first))[0].ends_with(" 0"), "{first}");
    // The caller now offers PCMA only (say, after its PBX moved the call).
    let r = p.in_dialog("INVITE", 2, "", &sdp(rtp_port, "8", "")).await;
    p.ack(2).await;
    assert_eq!(status(&r), Some(200), "{r}");
    let m = m_lines(body(&r));
    assert_eq!(m.len(), 1, "{r}");
    let formats: Vec<&str> = m[0].split(' ').skip(3).collect();
    assert_eq!(
        formats,
        vec!["8"],
        "the answer must pick from the offer: {r}"
    );
    // And the media follows the answer: PCMA (payload type 8) reaches the caller.
    let mut buf = [0u8; 2048];
    let mut types = Vec::new();
    let until = boomerang::clock::tokio_now() + Duration::from_millis(1500);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, rtp.recv_from(&mut buf)).await {
        if n >= 12 {
            types.push(buf[1] & 0x7f);
        }
    }
    let tail = &types[types.len().saturating_sub(10)..];
    assert!(
        !tail.is_empty() && tail.iter().all(|&pt| pt == 8),
        "{types:?}"
    );
    // An offer with audio and video: the answer keeps both m-lines, video refused with port 0
    // (RFC 3264 §6).
    let av = sdp(rtp_port, "8", "") + "m=video 40010 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    let r = p.in_dialog("INVITE", 3, "", &av).await;
    p.ack(3).await;
    assert_eq!(status(&r), Some(200), "{r}");
    let m = m_lines(body(&r));
    assert_eq!(m.len(), 2, "{r}");
    assert!(m[1].starts_with("m=video 0 "), "{r}");
    // The answers raised the session version each time (RFC 3264 §8).
    let version = |sdp: &str| {
        sdp.lines()
            .find_map(|l| l.strip_prefix("o="))
            .and_then(|o| o.split(' ').nth(2)?.parse::<u64>().ok())
            .unwrap()
    };
    assert!(version(body(&r)) > version(body(&first)));
    let r = p.in_dialog("BYE", 4, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_with_a_min_se_above_our_interval_is_granted_at_least_that() {
    let (_f, _d, engine) = engine().await;
    // The demo grants at most 1800 s; the caller will not go below 3600 s (RFC 4028 §9: the
    // UAS must not set Session-Expires below the request's Min-SE).
    let mut p = Peer::new(engine.sip.udp[0], "min-se").await;
    let invite = p.request(
        "INVITE",
        "8999",
        1,
        None,
        "Supported: timer\r\nSession-Expires: 7200\r\nMin-SE: 3600\r\n",
        &sdp(40012, "0", ""),
    );
    p.send(&invite).await;
    let r = p
        .final_for("INVITE", Duration::from_secs(5))
        .await
        .expect("no answer to the INVITE");
    assert_eq!(status(&r), Some(200), "{r}");
    let se = header(&r, "Session-Expires").unwrap_or_default();
    let interval: u32 = se
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(interval >= 3600, "Session-Expires: {se}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_a_type_we_do_not_read_get_415_with_accept() {
    let (_f, _d, engine) = engine().await;
    let t = engine.sip.udp[0];
    // An INVITE whose body is not SDP (RFC 3261 §8.2.3: 415 listing what we accept).
    let mut p = Peer::new(t, "invite-415").await;
    let invite = p
        .request("INVITE", "8999", 1, None, "", &sdp(40014, "0", ""))
        .replace("Content-Type: application/sdp", "Content-Type: text/plain");
    p.send(&invite).await;
    let r = p
        .final_for("INVITE", Duration::from_secs(5))
        .await
        .expect("no answer to the INVITE");
    assert_eq!(status(&r), Some(415), "{r}");
    assert_eq!(
        header(&r, "Accept").as_deref(),
        Some("application/sdp"),
        "{r}"
    );
    // An INFO inside a call whose body is no DTMF type: 415 naming the DTMF types.
    let mut q = Peer::new(t, "info-415").await;
    q.call("8999", &sdp(40016, "0", "")).await;
    let tag = q.to_tag.clone();
    let info = q
        .request("INFO", "8999", 2, tag.as_deref(), "", "")
        .replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        );
    q.send(&info).await;
    let r = q
        .final_for("INFO", Duration::from_secs(3))
        .await
        .expect("no answer to the INFO");
    assert_eq!(status(&r), Some(415), "{r}");
    let accept = header(&r, "Accept").unwrap_or_default();
    assert!(accept.contains("application/dtmf-relay"), "{r}");
    let r = q.in_dialog("BYE", 3, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_cancels_while_the_agent_rings_cancels_the_agents_call() {
    common::capture_logs();
    let flows = common::flows_plus(&[(
        "route-agent-alice.yaml",
        "application: route-agent-alice\ntype: default\nassisted_service:\n  - type: route_agent\n    agent: alice\n    queue: Sales_VQ\n    timeout_seconds: 20\n    on_timeout: sorry\n  - type: terminate_call\n    id: sorry\n",
    )]);
    let agent_port = common::free_port();
    // Alice's phone rings until it is cancelled (it gives up after 30 s of ringing).
    let mut phone = common::sipp_server("customer-no-answer.xml", agent_port, 1);
    let (_dir, engine) = common::start_demo(|spec| {
        spec.listeners.sip_tcp.clear();
        common::route_point_to(spec, "8999", "route-agent-alice.yaml", flows.path());
    })
    .await;
    common::register_alice(engine.sip.udp[0], &format!("127.0.0.1:{agent_port}")).await;
    let mut p = Peer::new(engine.sip.udp[0], "cancel-agent-ringing").await;
    let invite = p.request("INVITE", "8999", 1, None, "", &sdp(40018, "0", ""));
    p.send(&invite).await;
    // The engine rings alice (her phone's 180 reached it) without answering the caller; the
    // caller gives up.
    let mut ringing = false;
    for _ in 0..100 {
        if common::metric(engine.http_addr, "boomerang_post_dial_delay_seconds_count")
            .await
            .is_some_and(|n| n >= 1.0)
        {
            ringing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ringing, "alice's phone never rang");
    let cancel = format!(
        "{}Content-Length: 0\r\n\r\n",
        invite
            .replace("INVITE sip:", "CANCEL sip:")
            .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
            .split("Content-Type:")
            .next()
            .unwrap()
    );
    p.send(&cancel).await;
    let got = summary(&p.collect(Duration::from_secs(1)).await);
    assert!(got.contains(&(487, "INVITE".into())), "{got:?}");
    // Alice's phone is cancelled at once, not left ringing until it gives up.
    let done = tokio::time::timeout(Duration::from_secs(8), phone.wait()).await;
    assert!(
        done.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "alice's phone was not cancelled"
    );
}

/// RTP packets arriving on `s` within `wait` (after what was queued before is drained).
async fn rtp_count(s: &UdpSocket, wait: Duration) -> usize {
    let mut buf = [0u8; 2048];
    while s.try_recv_from(&mut buf).is_ok() {}
    let mut n = 0;
    let until = boomerang::clock::tokio_now() + wait;
    while let Ok(Ok(_)) = tokio::time::timeout_at(until, s.recv_from(&mut buf)).await {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_without_sdp_takes_the_answer_in_its_ack() {
    let (_f, _d, engine) = engine().await;
    let old = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let new = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let new_port = new.local_addr().unwrap().port();
    let mut p = Peer::new(engine.sip.udp[0], "offerless-reinvite").await;
    p.call("8999", &sdp(old.local_addr().unwrap().port(), "0", ""))
        .await;
    assert!(rtp_count(&old, Duration::from_millis(500)).await > 10);
    // A re-INVITE without an offer (as PBXs send to move media): our 200 offers, the ACK
    // answers with the caller's new RTP port (RFC 3261 §14.2, RFC 3264).
    let tag = p.to_tag.clone();
    let re = p.request("INVITE", "8999", 2, tag.as_deref(), "", "");
    p.send(&re).await;
    let r = p
        .final_for("INVITE", Duration::from_secs(3))
        .await
        .expect("no answer to the re-INVITE");
    assert_eq!(status(&r), Some(200), "{r}");
    assert!(body(&r).contains("m=audio "), "the 200 must offer: {r}");
    let ack = p.request(
        "ACK",
        "8999",
        2,
        tag.as_deref(),
        "",
        &sdp(new_port, "0", ""),
    );
    p.send(&ack).await;
    // Once RTP reaches the new port, none goes to the old one any more.
    let mut buf = [0u8; 2048];
    tokio::time::timeout(Duration::from_secs(3), new.recv_from(&mut buf))
        .await
        .expect("no RTP at the port the ACK's answer gave")
        .unwrap();
    let (at_old, at_new) = tokio::join!(
        rtp_count(&old, Duration::from_millis(1000)),
        rtp_count(&new, Duration::from_millis(1000))
    );
    assert!(
        at_new > 10 && at_old == 0,
        "old port {at_old}, new port {at_new}"
    );
    let r = p.in_dialog("BYE", 3, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinvite_crossing_our_session_refresh_reinvite_gets_491() {
    use chrono::TimeZone;
    common::capture_logs();
    let flows = common::flows_plus(&[("answer.yaml", ANSWER)]);
    let dir = tempfile::tempdir().unwrap();
    let config = common::demo_config(dir.path(), |spec| {
        common::route_point_to(spec, "8999", "answer.yaml", flows.path());
        spec.listeners.sip_tcp.clear();
        spec.media.rtp_timeout_seconds = 0;
    });
    // The engine's clock is the test's: its session refresh comes when the test says.
    let clock = boomerang::clock::ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    );
    let engine = boomerang::engine::Engine::start(std::sync::Arc::new(config), clock.shared())
        .await
        .unwrap();
    let mut p = Peer::new(engine.sip.udp[0], "glare").await;
    // A 90 s session refreshed by the engine, by re-INVITE (no UPDATE in our Allow).
    let invite = p.request(
        "INVITE",
        "8999",
        1,
        None,
        "Session-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, CANCEL, BYE\r\n",
        &sdp(40200, "0", ""),
    );
    p.send(&invite).await;
    let ok = p
        .final_for("INVITE", Duration::from_secs(5))
        .await
        .expect("no answer to the INVITE");
    p.to_tag = header(&ok, "To").and_then(|t| t.split(";tag=").nth(1).map(str::to_string));
    p.ack(1).await;
    // Once the ACK is in (the call's messages are handled in order: an answered OPTIONS sent
    // after it says so), past half the interval.
    let r = p.in_dialog("OPTIONS", 2, "", "").await;
    assert_eq!(status(&r), Some(200), "{r}");
    clock.advance(chrono::TimeDelta::seconds(50));
    // The engine's refresh arrives; before answering it, the caller sends its own re-INVITE.
    let mut buf = vec![0u8; 65536];
    let refresh = loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), p.sock.recv_from(&mut buf))
            .await
            .expect("no session refresh from the engine")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("INVITE ") {
            break text;
        }
    };
    let r = p
        .in_dialog("INVITE", 3, "", &sdp(40200, "0", "a=sendonly\r\n"))
        .await;
    // RFC 3261 §14.2: an INVITE received while ours is in progress on the dialog gets 491.
    assert_eq!(status(&r), Some(491), "{r}");
    p.ack(3).await;
    assert!(refresh.contains("Session-Expires"), "{refresh}");
}
