//! SIP message handling per INVITE: parse, the header lookups a UAS makes, and building its
//! responses. The header lookups are measured three ways in the same run: the previous path
//! (each header formatted with rsip's `Display`, then split on `:`, kept here verbatim as the
//! baseline), today's helpers (headers matched on their name, nothing formatted) and the
//! `IndexedMessage` (headers filed by name once, then a binary search per lookup).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use boomerang::sip::message::{
    self, IndexedMessage, ParseError, Via, cseq, header_value, response_with_tag, tag_of, to_bytes,
    vias,
};
use boomerang::sip::transaction::TransactionKey;
use criterion::{Criterion, criterion_group, criterion_main};
use rsip::SipMessage;
use rsip::message::HasHeaders;

/// A SIPp-style INVITE with SDP, as the UAS receives it.
const INVITE: &str = "INVITE sip:8000@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4121-1-0;rport\r\n\
From: sipp <sip:+33612345678@127.0.0.1:5061>;tag=4121SIPpTag001\r\n\
To: <sip:8000@127.0.0.1:5060>\r\n\
Call-ID: 1-4121@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@127.0.0.1:5061>\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Supported: timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: SIPp\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

/// The names a UAS reads off one INVITE (dialog, transaction, session timer, auth, routing).
const LOOKUPS: &[&str] = &[
    "Call-ID",
    "From",
    "To",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Session-Expires",
    "Supported",
    "Require",
    "Authorization",
    "Contact",
    "Record-Route",
];

/// The previous helpers, verbatim: every header of the message is formatted to find one.
mod before {
    use super::*;

    pub fn header_values(msg: &impl HasHeaders, name: &str) -> Vec<String> {
        msg.headers()
            .iter()
            .filter_map(|h| {
                let text = h.to_string();
                let (n, v) = text.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }

    pub fn header_value(msg: &impl HasHeaders, name: &str) -> Option<String> {
        header_values(msg, name).into_iter().next()
    }

    pub fn vias(msg: &impl HasHeaders) -> Vec<Via> {
        header_values(msg, "Via")
            .iter()
            .flat_map(|v| {
                v.split(',')
                    .filter_map(|hop| Via::parse(hop.trim()).ok())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn cseq(msg: &impl HasHeaders) -> Option<(u32, String)> {
        let v = header_value(msg, "CSeq")?;
        let (n, m) = v.split_once([' ', '\t'])?;
        Some((n.trim().parse().ok()?, m.trim().to_string()))
    }
}

fn parsed() -> rsip::Request {
    match message::parse(INVITE.as_bytes()) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("the bench INVITE must parse: {other:?}"),
    }
}

/// The lookups through the previous helpers.
fn lookups_before(r: &rsip::Request) -> usize {
    let mut n = 0;
    for name in LOOKUPS {
        n += before::header_value(r, name).map_or(0, |v| v.len());
    }
    n += before::vias(r).len();
    n += before::cseq(r).map_or(0, |(s, _)| s as usize);
    n += before::header_value(r, "From")
        .and_then(|f| tag_of(&f))
        .map_or(0, |t| t.len());
    n
}

/// The same lookups through today's helpers.
fn lookups_now(r: &rsip::Request) -> usize {
    let mut n = 0;
    for name in LOOKUPS {
        n += header_value(r, name).map_or(0, |v| v.len());
    }
    n += vias(r).len();
    n += cseq(r).map_or(0, |(s, _)| s as usize);
    n += message::header_str(r, "From")
        .and_then(tag_of)
        .map_or(0, |t| t.len());
    n
}

/// The same lookups on an indexed message (index built inside, as a UAS would per message).
fn lookups_indexed(m: &IndexedMessage) -> usize {
    let mut n = 0;
    for name in LOOKUPS {
        n += m.value(name).map_or(0, str::len);
    }
    n += m.vias().len();
    n += m.cseq().map_or(0, |(s, _)| s as usize);
    n += m.value("From").and_then(tag_of).map_or(0, |t| t.len());
    n
}

/// The UAS's answer to one INVITE: 100 by the transaction, 180 and 200 with one To tag.
fn respond(r: &rsip::Request) -> usize {
    [(100, "Trying"), (180, "Ringing"), (200, "OK")]
        .iter()
        .map(|(code, reason)| {
            to_bytes(&SipMessage::Response(response_with_tag(
                r, *code, reason, "abc123",
            )))
            .len()
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    let r = parsed();
    assert_eq!(lookups_before(&r), lookups_now(&r));
    let indexed = IndexedMessage::from(SipMessage::Request(r.clone()));
    assert_eq!(lookups_before(&r), lookups_indexed(&indexed));

    let mut g = c.benchmark_group("sip_message");
    g.bench_function("parse", |b| {
        b.iter(|| message::parse(black_box(INVITE.as_bytes())).map(|_| ()))
    });
    g.bench_function("lookups/before", |b| {
        b.iter(|| lookups_before(black_box(&r)))
    });
    g.bench_function("lookups/now", |b| b.iter(|| lookups_now(black_box(&r))));
    g.bench_function("lookups/indexed_incl_index", |b| {
        b.iter_batched(
            || SipMessage::Request(r.clone()),
            // The message is handed back so that dropping it is not timed.
            |m| {
                let m = IndexedMessage::from(m);
                (lookups_indexed(&m), m)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("transaction_key", |b| {
        let m = SipMessage::Request(r.clone());
        b.iter(|| TransactionKey::of(black_box(&m)))
    });
    g.bench_function("responses", |b| b.iter(|| respond(black_box(&r))));
    // One INVITE end to end: parse, read, answer.
    g.bench_function("invite/before", |b| {
        b.iter(|| -> Result<usize, ParseError> {
            let SipMessage::Request(r) = message::parse(black_box(INVITE.as_bytes()))? else {
                return Ok(0);
            };
            Ok(lookups_before(&r) + respond(&r))
        })
    });
    g.bench_function("invite/now", |b| {
        b.iter(|| -> Result<usize, ParseError> {
            let SipMessage::Request(r) = message::parse(black_box(INVITE.as_bytes()))? else {
                return Ok(0);
            };
            Ok(lookups_now(&r) + respond(&r))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
