//! Tests of the four machines, the 2xx retransmitter, keys and the table.

use std::time::{Duration, Instant};

use rsip::SipMessage;

use super::*;
use crate::sip::message::{self, cseq, header_value, parse, response_with_tag, tag_of};

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
    Max-Forwards: 70\r\n\
    To: Bob <sip:bob@example.com>\r\n\
    From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710@pc33.example.com\r\n\
    CSeq: 314159 INVITE\r\n\
    Route: <sip:p1.example.com;lr>\r\n\
    Content-Length: 0\r\n\r\n";

fn req(text: &str) -> rsip::Request {
    match parse(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("request expected"),
    }
}

fn invite() -> rsip::Request {
    req(INVITE)
}

fn register() -> rsip::Request {
    req(&INVITE
        .replace("INVITE sip:bob", "REGISTER sip:bob")
        .replace("314159 INVITE", "1 REGISTER"))
}

fn ack_of(r: &rsip::Request) -> rsip::Request {
    let text = r
        .to_string()
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("314159 INVITE", "314159 ACK");
    req(&text)
}

fn resp(r: &rsip::Request, code: u16) -> rsip::Response {
    response_with_tag(r, code, "Reason", "totag")
}

fn drain(t: &mut impl FnMut() -> Option<SipMessage>) -> Vec<SipMessage> {
    std::iter::from_fn(t).collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs a machine's timers up to `until`, returning the instants (ms after t0) of transmits.
macro_rules! run_until {
    ($t:expr, $t0:expr, $until:expr) => {{
        let mut sent = Vec::new();
        while let Some(at) = $t.poll_timeout() {
            if at > $t0 + $until {
                break;
            }
            $t.handle_timeout(at);
            while $t.poll_transmit().is_some() {
                sent.push((at - $t0).as_millis() as u64);
            }
        }
        sent
    }};
}

#[test]
fn client_invite_over_udp_backs_off_and_times_out_at_64_t1() {
    let t0 = Instant::now();
    let mut t = ClientInvite::new(t0, invite(), false, Timers::default());
    assert!(matches!(t.poll_transmit(), Some(SipMessage::Request(_))));
    let sent = run_until!(t, t0, Duration::from_secs(40));
    assert_eq!(sent, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(t.poll_event(), Some(Event::TimedOut));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
    assert_eq!(t.state(), ClientInviteState::Terminated);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn timer_values_are_configurable() {
    let t0 = Instant::now();
    let timers = Timers {
        t1: ms(100),
        t2: ms(300),
        t4: ms(1000),
    };
    let mut t = ClientNonInvite::new(t0, register(), false, timers);
    t.poll_transmit();
    let sent = run_until!(t, t0, Duration::from_secs(10));
    assert_eq!(sent[..5], [100, 300, 600, 900, 1200]);
    assert_eq!(t.poll_event(), Some(Event::TimedOut), "F = 64 * 100 ms");
    assert!(sent.iter().all(|at| *at < 6400));
}

#[test]
fn client_invite_over_tcp_never_retransmits() {
    let t0 = Instant::now();
    let mut t = ClientInvite::new(t0, invite(), true, Timers::default());
    assert!(t.poll_transmit().is_some());
    assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(32)));
    let sent = run_until!(t, t0, Duration::from_secs(40));
    assert!(sent.is_empty());
    assert_eq!(t.poll_event(), Some(Event::TimedOut));
}

#[test]
fn client_invite_acks_non_2xx_and_absorbs_retransmissions_during_timer_d() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ClientInvite::new(t0, inv.clone(), false, Timers::default());
    t.poll_transmit();
    t.handle_message(t0 + ms(100), resp(&inv, 180).into());
    assert_eq!(t.state(), ClientInviteState::Proceeding);
    assert!(matches!(t.poll_event(), Some(Event::Response(r)) if r.status_code.code() == 180));
    // Provisional stops Timer A.
    assert!(run_until!(t, t0, ms(5000)).is_empty());
    t.handle_message(t0 + ms(6000), resp(&inv, 486).into());
    assert_eq!(t.state(), ClientInviteState::Completed);
    let Some(SipMessage::Request(ack)) = t.poll_transmit() else {
        panic!("ACK expected")
    };
    assert_eq!(ack.method, rsip::Method::Ack);
    assert_eq!(ack.uri, inv.uri);
    assert_eq!(cseq(&ack), Some((314159, "ACK".into())));
    assert_eq!(message::branch(&ack), message::branch(&inv));
    assert_eq!(
        tag_of(&header_value(&ack, "To").unwrap()).as_deref(),
        Some("totag")
    );
    assert_eq!(
        header_value(&ack, "Route").as_deref(),
        Some("<sip:p1.example.com;lr>")
    );
    assert!(matches!(t.poll_event(), Some(Event::Response(r)) if r.status_code.code() == 486));
    // A retransmitted 486 gets the same ACK again, and no new event.
    t.handle_message(t0 + ms(6500), resp(&inv, 486).into());
    assert!(matches!(t.poll_transmit(), Some(SipMessage::Request(a)) if a == ack));
    assert_eq!(t.poll_event(), None);
    assert_eq!(t.poll_timeout(), Some(t0 + ms(6000 + 32_000)));
    t.handle_timeout(t0 + ms(38_000));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn client_invite_passes_every_2xx_in_accepted_until_timer_m() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ClientInvite::new(t0, inv.clone(), false, Timers::default());
    t.handle_message(t0 + ms(200), resp(&inv, 200).into());
    assert_eq!(t.state(), ClientInviteState::Accepted);
    t.handle_message(t0 + ms(700), resp(&inv, 200).into());
    let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
    assert_eq!(events.len(), 2, "both 2xx go to the TU, which ACKs them");
    assert_eq!(drain(&mut || t.poll_transmit()).len(), 1, "no ACK from us");
    t.handle_timeout(t0 + ms(200) + Timers::default().t64());
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn client_non_invite_caps_retransmits_at_t2_and_times_out_with_timer_f() {
    let t0 = Instant::now();
    let mut t = ClientNonInvite::new(t0, register(), false, Timers::default());
    t.poll_transmit();
    let sent = run_until!(t, t0, Duration::from_secs(40));
    assert_eq!(
        sent,
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(t.poll_event(), Some(Event::TimedOut));
    assert_eq!(t.state(), ClientNonInviteState::Terminated);
}

#[test]
fn client_non_invite_retransmits_every_t2_when_proceeding_then_waits_timer_k() {
    let t0 = Instant::now();
    let reg = register();
    let mut t = ClientNonInvite::new(t0, reg.clone(), false, Timers::default());
    t.poll_transmit();
    t.handle_message(t0 + ms(100), resp(&reg, 100).into());
    assert_eq!(t.state(), ClientNonInviteState::Proceeding);
    // Timer E was set for 500 ms; after it fires the interval is T2.
    let sent = run_until!(t, t0, ms(9000));
    assert_eq!(sent, vec![500, 4500, 8500]);
    t.handle_message(t0 + ms(9000), resp(&reg, 200).into());
    assert_eq!(t.state(), ClientNonInviteState::Completed);
    t.handle_message(t0 + ms(9100), resp(&reg, 200).into());
    let events: Vec<_> = std::iter::from_fn(|| t.poll_event()).collect();
    assert_eq!(events.len(), 2, "100 and the first 200 only");
    assert_eq!(t.poll_timeout(), Some(t0 + ms(9000 + 5000)));
    t.handle_timeout(t0 + ms(14_000));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn client_non_invite_over_tcp_terminates_at_once_after_final() {
    let t0 = Instant::now();
    let reg = register();
    let mut t = ClientNonInvite::new(t0, reg.clone(), true, Timers::default());
    t.handle_message(t0 + ms(10), resp(&reg, 200).into());
    assert_eq!(t.poll_timeout(), Some(t0 + ms(10)));
    t.handle_timeout(t0 + ms(10));
    assert_eq!(t.state(), ClientNonInviteState::Terminated);
}

#[test]
fn server_non_invite_resends_last_response_on_retransmission_until_timer_j() {
    let t0 = Instant::now();
    let reg = register();
    let mut t = ServerNonInvite::new(t0, reg.clone(), false, Timers::default());
    t.handle_message(t0 + ms(500), reg.clone().into());
    assert!(t.poll_transmit().is_none(), "Trying absorbs");
    t.send_response(t0 + ms(600), resp(&reg, 200)).unwrap();
    assert!(t.poll_transmit().is_some());
    t.handle_message(t0 + ms(1500), reg.clone().into());
    assert!(
        matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 200)
    );
    assert!(t.send_response(t0 + ms(1600), resp(&reg, 500)).is_err());
    assert_eq!(
        t.poll_timeout(),
        Some(t0 + ms(600) + Timers::default().t64())
    );
    t.handle_timeout(t0 + ms(600) + Timers::default().t64());
    assert_eq!(t.state(), ServerNonInviteState::Terminated);
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn server_invite_retransmits_4xx_until_ack_then_absorbs_acks_during_timer_i() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ServerInvite::new(t0, inv.clone(), false, Timers::default());
    assert!(
        matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 100)
    );
    // A retransmitted INVITE in Proceeding gets the last provisional again.
    t.handle_message(t0 + ms(500), inv.clone().into());
    assert!(
        matches!(t.poll_transmit(), Some(SipMessage::Response(r)) if r.status_code.code() == 100)
    );
    t.send_response(t0 + ms(1000), resp(&inv, 486)).unwrap();
    assert_eq!(t.state(), ServerInviteState::Completed);
    assert!(t.poll_transmit().is_some());
    let sent = run_until!(t, t0 + ms(1000), ms(10_000));
    assert_eq!(sent, vec![500, 1500, 3500, 7500]);
    t.handle_message(t0 + ms(11_100), ack_of(&inv).into());
    assert_eq!(t.state(), ServerInviteState::Confirmed);
    assert_eq!(t.poll_event(), Some(Event::AckReceived));
    t.handle_message(t0 + ms(11_200), ack_of(&inv).into());
    t.handle_message(t0 + ms(11_300), inv.clone().into());
    assert_eq!(
        t.poll_transmit(),
        None,
        "Confirmed absorbs ACKs and INVITEs"
    );
    assert_eq!(t.poll_event(), None);
    assert_eq!(t.poll_timeout(), Some(t0 + ms(11_100 + 5000)));
    t.handle_timeout(t0 + ms(16_100));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn server_invite_gives_up_with_timer_h_when_no_ack() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ServerInvite::new(t0, inv.clone(), false, Timers::default());
    t.send_response(t0, resp(&inv, 404)).unwrap();
    assert_eq!(drain(&mut || t.poll_transmit()).len(), 2, "100 and 404");
    let sent = run_until!(t, t0, Duration::from_secs(40));
    // G: 0.5, 1.5, 3.5, 7.5 then every T2 until H at 32 s.
    assert_eq!(
        sent,
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(t.poll_event(), Some(Event::TimedOut));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn server_invite_2xx_goes_to_accepted_and_absorbs_invite_retransmissions() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ServerInvite::new(t0, inv.clone(), true, Timers::default());
    t.poll_transmit();
    t.send_response(t0 + ms(10), resp(&inv, 180)).unwrap();
    t.send_response(t0 + ms(20), resp(&inv, 200)).unwrap();
    assert_eq!(t.state(), ServerInviteState::Accepted);
    assert_eq!(drain(&mut || t.poll_transmit()).len(), 2);
    t.handle_message(t0 + ms(30), inv.clone().into());
    assert_eq!(t.poll_transmit(), None);
    // The TU's own 2xx retransmissions pass through.
    t.send_response(t0 + ms(520), resp(&inv, 200)).unwrap();
    assert!(t.poll_transmit().is_some());
    assert!(t.send_response(t0 + ms(530), resp(&inv, 486)).is_err());
    t.handle_message(t0 + ms(600), ack_of(&inv).into());
    assert_eq!(t.poll_event(), Some(Event::AckReceived));
    t.handle_timeout(t0 + ms(20) + Timers::default().t64());
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn server_invite_over_tcp_sends_the_final_once_and_timer_i_is_zero() {
    let t0 = Instant::now();
    let inv = invite();
    let mut t = ServerInvite::new(t0, inv.clone(), true, Timers::default());
    t.poll_transmit();
    t.send_response(t0, resp(&inv, 603)).unwrap();
    t.poll_transmit();
    assert_eq!(
        t.poll_timeout(),
        Some(t0 + Timers::default().t64()),
        "H only"
    );
    t.handle_message(t0 + ms(50), ack_of(&inv).into());
    assert_eq!(t.poll_timeout(), Some(t0 + ms(50)));
    t.handle_timeout(t0 + ms(50));
    assert_eq!(t.state(), ServerInviteState::Terminated);
}

#[test]
fn two_xx_retransmitter_doubles_to_t2_and_stops_on_ack_or_gives_up() {
    let t0 = Instant::now();
    let inv = invite();
    let mut r = TwoXxRetransmitter::new(t0, resp(&inv, 200), Timers::default());
    let sent = run_until!(r, t0, ms(12_000));
    assert_eq!(sent, vec![500, 1500, 3500, 7500, 11500]);
    r.ack_received();
    assert!(r.is_done());
    assert_eq!(r.poll_timeout(), None);

    let mut r = TwoXxRetransmitter::new(t0, resp(&inv, 200), Timers::default());
    run_until!(r, t0, Duration::from_secs(40));
    assert_eq!(r.poll_event(), Some(Event::TimedOut));
    assert!(r.is_done());
}

#[test]
fn transport_errors_fail_the_transaction() {
    let t0 = Instant::now();
    let mut t = ClientNonInvite::new(t0, register(), false, Timers::default());
    t.handle_transport_error();
    assert_eq!(t.poll_event(), Some(Event::TransportError));
    assert_eq!(t.poll_event(), Some(Event::Terminated));
}

#[test]
fn keys_map_ack_to_invite_and_keep_cancel_apart() {
    let inv = invite();
    let k = TransactionKey::of(&inv.clone().into()).unwrap();
    assert_eq!(k.method, "INVITE");
    assert_eq!(k.branch, "z9hG4bK776asdhds");
    assert_eq!(k.sent_by, "pc33.example.com");
    assert_eq!(TransactionKey::of(&ack_of(&inv).into()), Some(k.clone()));
    let cancel = req(&INVITE
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("314159 INVITE", "314159 CANCEL"));
    let cancel_key = TransactionKey::of(&cancel.into()).unwrap();
    assert_eq!(cancel_key.method, "CANCEL");
    assert_eq!(cancel_key.cancelled_invite(), Some(k.clone()));
    assert_eq!(k.cancelled_invite(), None);
    let resp_key = TransactionKey::of(&resp(&inv, 180).into()).unwrap();
    assert_eq!(resp_key.side, Side::Client);
    assert_eq!(
        resp_key,
        TransactionKey {
            side: Side::Client,
            ..k
        }
    );
    // RFC 2543 branch: keyed on Call-ID, From tag and CSeq instead.
    let old = req(&INVITE.replace("branch=z9hG4bK776asdhds", "branch=1"));
    let k = TransactionKey::of(&old.into()).unwrap();
    assert!(
        k.branch
            .starts_with("2543:a84b4c76e66710@pc33.example.com:1928301774:314159")
    );
}

#[test]
fn table_creates_server_transactions_and_absorbs_retransmissions() {
    let t0 = Instant::now();
    let mut table = Transactions::new(Timers::default());
    let inv = invite();
    let Routed::NewServer(key, _) = table.handle_message(t0, inv.clone().into(), false) else {
        panic!("new server transaction expected")
    };
    assert!(
        matches!(table.poll_transmit(), Some((k, _)) if k == key),
        "100 Trying"
    );
    assert_eq!(
        table.handle_message(t0 + ms(500), inv.clone().into(), false),
        Routed::Matched(key.clone())
    );
    assert!(table.poll_transmit().is_some(), "100 Trying again");
    table
        .send_response(t0 + ms(600), &key, resp(&inv, 486))
        .unwrap();
    table.poll_transmit();
    assert_eq!(
        table.handle_message(t0 + ms(700), ack_of(&inv).into(), false),
        Routed::Matched(key.clone())
    );
    assert_eq!(table.poll_event(), Some((key.clone(), Event::AckReceived)));
    // An ACK for a 2xx carries its own branch: it belongs to the dialog.
    let other_ack = req(&ack_of(&inv)
        .to_string()
        .replace("z9hG4bK776asdhds", "z9hG4bKother"));
    assert!(matches!(
        table.handle_message(t0, other_ack.into(), false),
        Routed::AckForDialog(_)
    ));
    let at = table.poll_timeout().unwrap();
    table.handle_timeout(at);
    assert_eq!(table.poll_event(), Some((key, Event::Terminated)));
    assert!(table.is_empty());
}

#[test]
fn table_routes_responses_to_client_transactions() {
    let t0 = Instant::now();
    let mut table = Transactions::new(Timers::default());
    let reg = register();
    let key = table.start_client(t0, reg.clone(), false).unwrap();
    assert!(table.poll_transmit().is_some());
    assert_eq!(
        table.handle_message(t0 + ms(50), resp(&reg, 200).into(), false),
        Routed::Matched(key.clone())
    );
    assert!(matches!(table.poll_event(), Some((k, Event::Response(_))) if k == key));
    // Our own request looping back is a new server transaction, not a match.
    assert!(matches!(
        table.handle_message(t0, reg.clone().into(), false),
        Routed::NewServer(k, _) if k.side == Side::Server
    ));
    assert_eq!(table.len(), 2);
    let stray = resp(&invite(), 200);
    assert!(matches!(
        table.handle_message(t0, stray.into(), false),
        Routed::Stray(_)
    ));
}
