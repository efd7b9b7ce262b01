//! What the transaction tests share: sample requests, responses, and a timer runner. Each
//! machine's tests sit in its own file and import this module whole.

pub(super) use std::time::Duration;

pub(super) use rsip::SipMessage;

pub(super) use super::*;
use crate::sip::message::response_with_tag;
pub(super) use crate::sip::message::{self, cseq, header_value, tag_of};

/// The sample INVITE: the message tests' OPTIONS, as an INVITE sent through one proxy.
pub(super) fn invite_text() -> String {
    OPTIONS.replacen("OPTIONS sip:", "INVITE sip:", 1).replace(
        "CSeq: 63104 OPTIONS\r\n",
        "CSeq: 314159 INVITE\r\nRoute: <sip:p1.example.com;lr>\r\n",
    )
}

pub(super) use crate::sip::message::test_support::{OPTIONS, request as req};

pub(super) fn invite() -> rsip::Request {
    req(&invite_text())
}

pub(super) fn register() -> rsip::Request {
    req(&invite_text()
        .replace("INVITE sip:bob", "REGISTER sip:bob")
        .replace("314159 INVITE", "1 REGISTER"))
}

pub(super) fn ack_of(r: &rsip::Request) -> rsip::Request {
    let text = r
        .to_string()
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("314159 INVITE", "314159 ACK");
    req(&text)
}

pub(super) fn resp(r: &rsip::Request, code: u16) -> rsip::Response {
    response_with_tag(r, code, "Reason", "totag")
}

pub(super) fn drain(t: &mut impl FnMut() -> Option<SipMessage>) -> Vec<SipMessage> {
    std::iter::from_fn(t).collect()
}

/// When (ms after the first send) a request or response is retransmitted with the default
/// timers when the interval doubles from T1 up to T2 until 64*T1 (Timers E and G).
pub(super) const BACKED_OFF_TO_T2: [u64; 10] = [
    500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

pub(super) fn ms(n: u64) -> Duration {
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
pub(super) use run_until;

/// Starts a machine (any of the four: they share `new`'s signature) at t0 = now with the
/// default timers for `request`, giving (t0, the request, the machine).
pub(super) fn start<T>(
    new: fn(std::time::Instant, rsip::Request, bool, Timers) -> T,
    request: rsip::Request,
    reliable: bool,
) -> (std::time::Instant, rsip::Request, T) {
    let t0 = crate::clock::monotonic_now();
    let machine = new(t0, request.clone(), reliable, Timers::default());
    (t0, request, machine)
}

/// Asserts that a machine's last timer is due at `at`, fires it, and that the machine ends.
macro_rules! assert_ends_at {
    ($t:expr, $at:expr) => {{
        let at = $at;
        assert_eq!($t.poll_timeout(), Some(at));
        $t.handle_timeout(at);
        assert_eq!($t.poll_event(), Some(Event::Terminated));
    }};
}
pub(super) use assert_ends_at;
