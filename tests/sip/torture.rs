//! RFC 4475 torture messages against `sip::message::parse`, plus property tests that parsing
//! never panics.
//!
//! Where a valid message needs an answer other than processing, the parser says which:
//!
//! | file        | RFC 4475 | our behaviour | why |
//! |-------------|----------|---------------|-----|
//! | intmeth.dat | 3.1.1.2 valid   | `UnknownMethod` → 501 | an extension method we do not implement |
//! | esc02.dat   | 3.1.1.5 valid   | `UnknownMethod` → 501 | `RE%47IST%45R` is not REGISTER: escapes do not apply to methods |
//! | semiuri.dat | 3.1.1.9 valid   | parses | the user part's `;` is escaped before rsip reads the URI |
//! | unkscm.dat  | 3.3.2 (416)     | `UnsupportedScheme` → 416 | |
//! | inv2543.dat | 3.4.1 accept    | parses | Max-Forwards is not required (RFC 2543 requests lack it) |
//! | insuf.dat   | 3.3.1 → 400     | `MissingHeader`  | as the RFC asks |
//! | multi01.dat | 3.3.8 → 400     | `MalformedHeader("From")` | several From values, as the RFC asks |
//! | mcl01.dat   | 3.3.9 → 400     | `BadContentLength` | conflicting Content-Length values, as the RFC asks |
//!
//! The other §3.2–3.4 messages are syntactically valid and parse; the responses they need
//! (483 for zeromf, 420 for bext01, 415 for invut, …) are decisions of the layers above.

use boomerang::sip::message::{ParseError, parse};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Must parse (RFC 4475 §3.1.1 and syntactically valid §3.2–3.4 messages).
    Accept,
    /// Must be refused with an error (§3.1.2 and the §3.3 cases needing a 400).
    Reject,
    /// Valid, but needs an error status other than 400 (501, 416): the parser's error says so.
    Status(u16),
}
use Expect::*;

const CASES: &[(&str, &str, Expect)] = &[
    ("3.1.1.1", "wsinv.dat", Accept),
    ("3.1.1.2", "intmeth.dat", Status(501)),
    ("3.1.1.3", "esc01.dat", Accept),
    ("3.1.1.4", "escnull.dat", Accept),
    ("3.1.1.5", "esc02.dat", Status(501)),
    ("3.1.1.6", "lwsdisp.dat", Accept),
    ("3.1.1.7", "longreq.dat", Accept),
    ("3.1.1.8", "dblreq.dat", Accept),
    ("3.1.1.9", "semiuri.dat", Accept),
    ("3.1.1.10", "transports.dat", Accept),
    ("3.1.1.11", "mpart01.dat", Accept),
    ("3.1.1.12", "unreason.dat", Accept),
    ("3.1.1.13", "noreason.dat", Accept),
    ("3.1.2.1", "badinv01.dat", Reject),
    ("3.1.2.2", "clerr.dat", Reject),
    ("3.1.2.3", "ncl.dat", Reject),
    ("3.1.2.4", "scalar02.dat", Reject),
    ("3.1.2.5", "scalarlg.dat", Reject),
    ("3.1.2.6", "quotbal.dat", Reject),
    ("3.1.2.7", "ltgtruri.dat", Reject),
    ("3.1.2.8", "lwsruri.dat", Reject),
    ("3.1.2.9", "lwsstart.dat", Reject),
    ("3.1.2.10", "trws.dat", Reject),
    ("3.1.2.11", "escruri.dat", Reject),
    ("3.1.2.12", "baddate.dat", Reject),
    ("3.1.2.13", "regbadct.dat", Reject),
    ("3.1.2.14", "badaspec.dat", Reject),
    ("3.1.2.15", "baddn.dat", Reject),
    ("3.1.2.16", "badvers.dat", Reject),
    ("3.1.2.17", "mismatch01.dat", Reject),
    ("3.1.2.18", "mismatch02.dat", Reject),
    ("3.1.2.19", "bigcode.dat", Reject),
    ("3.2.1", "badbranch.dat", Accept),
    ("3.3.1", "insuf.dat", Reject),
    ("3.3.2", "unkscm.dat", Status(416)),
    ("3.3.3", "novelsc.dat", Status(416)),
    ("3.3.4", "unksm2.dat", Accept),
    ("3.3.5", "bext01.dat", Accept),
    ("3.3.6", "invut.dat", Accept),
    ("3.3.7", "regaut01.dat", Accept),
    ("3.3.8", "multi01.dat", Reject),
    ("3.3.9", "mcl01.dat", Reject),
    ("3.3.10", "bcast.dat", Accept),
    ("3.3.11", "zeromf.dat", Accept),
    ("3.3.12", "cparam01.dat", Accept),
    ("3.3.13", "cparam02.dat", Accept),
    ("3.3.14", "regescrt.dat", Accept),
    ("3.3.15", "sdp01.dat", Accept),
    ("3.4.1", "inv2543.dat", Accept),
];

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/torture/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_torture_file_is_covered() {
    let dir = format!("{}/tests/torture", env!("CARGO_MANIFEST_DIR"));
    let files = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(files, 49);
    assert_eq!(CASES.len(), 49);
}

#[test]
fn torture_messages_get_the_expected_verdict() {
    let mut failures = Vec::new();
    for (section, file, expect) in CASES {
        let result = parse(&load(file));
        let ok = match expect {
            Accept => result.is_ok(),
            Reject => result.is_err(),
            Status(code) => result.as_ref().is_err_and(|e| e.status() == *code),
        };
        if !ok {
            failures.push(format!(
                "{section} {file}: expected {expect:?}, got {result:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_messages_are_refused_for_the_right_reason() {
    let reason = |f: &str| parse(&load(f)).unwrap_err();
    assert_eq!(reason("clerr.dat"), ParseError::TruncatedBody);
    assert_eq!(reason("ncl.dat"), ParseError::BadContentLength);
    assert_eq!(reason("badvers.dat"), ParseError::BadVersion);
    assert_eq!(reason("mismatch01.dat"), ParseError::CSeqMismatch);
    assert_eq!(reason("mismatch02.dat"), ParseError::CSeqMismatch);
    assert_eq!(reason("bigcode.dat"), ParseError::OutOfRange("Status-Code"));
    assert_eq!(reason("scalar02.dat"), ParseError::OutOfRange("CSeq"));
    assert_eq!(reason("lwsstart.dat"), ParseError::BadStartLine);
    assert_eq!(reason("insuf.dat").reason_phrase(), "Missing From Header");
}

#[test]
fn valid_messages_keep_what_matters() {
    use boomerang::sip::message::{branch, header_value, vias};
    let wsinv = parse(&load("wsinv.dat")).unwrap();
    let hops = vias(&wsinv);
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[0].sent_by, "192.0.2.2");
    assert_eq!(hops[1].transport, "TCP");
    assert_eq!(hops[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(branch(&wsinv).as_deref(), Some("390skdjuw"));
    assert_eq!(wsinv.body().len(), 150);
    // dblreq: the datagram holds a second request after Content-Length: 0; it is discarded.
    let dbl = parse(&load("dblreq.dat")).unwrap();
    assert!(dbl.body().is_empty());
    let esc = parse(&load("esc01.dat")).unwrap();
    assert!(header_value(&esc, "Call-ID").unwrap().starts_with("esc01."));
}

/// Valid messages that carry a Content-Length, usable on a stream.
fn stream_cases() -> Vec<Vec<u8>> {
    CASES
        .iter()
        .filter(|(_, _, e)| *e == Accept)
        .map(|(_, f, _)| load(f))
        .filter(|b| matches!(boomerang::sip::message::framing(b), Ok(Some(_))))
        .collect()
}

#[test]
fn framing_finds_each_valid_message_on_a_stream() {
    use boomerang::sip::message::{Frame, framing};
    let cases = stream_cases();
    assert!(
        cases.len() >= 15,
        "most valid torture messages carry Content-Length"
    );
    for bytes in &cases {
        let Ok(Some(Frame::Message { skip: 0, len })) = framing(bytes) else {
            panic!("no frame")
        };
        assert!(parse(&bytes[..len]).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn framing_is_exact_however_the_stream_is_cut(
        a in 0usize..64, b in 0usize..64, keepalive in 0usize..3, cut in any::<prop::sample::Index>(),
    ) {
        use boomerang::sip::message::{Frame, framing};
        let cases = stream_cases();
        let (first, second) = (&cases[a % cases.len()], &cases[b % cases.len()]);
        let (Ok(Some(Frame::Message { len: first_len, .. })), Ok(Some(Frame::Message { len: second_len, .. }))) =
            (framing(first), framing(second)) else { panic!("cases frame") };
        let mut stream = b"\r\n\r\n".repeat(keepalive);
        stream.extend_from_slice(&first[..first_len]);
        stream.extend_from_slice(&second[..second_len]);
        let whole = keepalive * 4 + first_len;
        let cut = cut.index(stream.len() + 1);
        match framing(&stream[..cut]).unwrap() {
            None => prop_assert!(cut < whole),
            Some(Frame::KeepAlive { len }) => prop_assert!(cut <= keepalive * 4 && len == cut),
            Some(Frame::Message { skip, len }) => {
                prop_assert!(cut >= whole);
                prop_assert_eq!(skip, keepalive * 4);
                prop_assert_eq!(len, first_len);
                let rest = &stream[whole..];
                prop_assert_eq!(framing(rest).unwrap(), Some(Frame::Message { skip: 0, len: second_len }));
            }
        }
    }

    #[test]
    fn parse_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
        let _ = boomerang::sip::message::framing(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_torture_messages(
        case in 0..CASES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = load(CASES[case].1);
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let _ = parse(&bytes);
        let _ = boomerang::sip::message::framing(&bytes);
    }
}
