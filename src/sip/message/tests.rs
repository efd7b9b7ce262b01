//! Tests of parsing, framing, header access and building.

use rsip::SipMessage;

use super::*;

const OPTIONS: &str = "OPTIONS sip:bob@example.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
    Max-Forwards: 70\r\n\
    To: Bob <sip:bob@example.com>\r\n\
    From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710@pc33.example.com\r\n\
    CSeq: 63104 OPTIONS\r\n\
    Content-Length: 0\r\n\r\n";

fn request(text: &str) -> rsip::Request {
    match parse(text.as_bytes()).unwrap() {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

#[test]
fn ipv6_request_uris_parse_and_print_back_unchanged() {
    // SIPp's INVITE over IPv6 loopback.
    let text = "INVITE sip:8000@[::1]:35781 SIP/2.0\r\n\
Via: SIP/2.0/UDP [::1]:51918;branch=z9hG4bK-1;rport\r\n\
From: <sip:+33612345678@[::1]:51918>;tag=1\r\n\
To: <sip:8000@[::1]:35781>\r\n\
Call-ID: 1-32673@::1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@[::1]:51918;transport=UDP>\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";
    let Ok(SipMessage::Request(r)) = parse(text.as_bytes()) else {
        panic!("the IPv6 INVITE does not parse");
    };
    assert_eq!(r.uri.to_string(), "sip:8000@[::1]:35781");
    assert!(
        String::from_utf8(to_bytes(&SipMessage::Request(r)))
            .unwrap()
            .starts_with("INVITE sip:8000@[::1]:35781 SIP/2.0\r\n")
    );
    for uri in [
        "sip:caller@[::1]:51918;transport=UDP",
        "sip:[2001:db8::1]",
        "sips:+33612345678@[2001:db8::9]:5061;user=phone",
        "sip:8000@127.0.0.1:5060",
    ] {
        assert_eq!(parse_uri(uri).unwrap().to_string(), uri);
    }
    assert!(parse_uri("sip:8000@[::1]:port").is_err());
}

#[test]
fn received_and_rport_are_stamped_on_the_top_via_with_bare_ipv6() {
    let request = |via: &str| {
        let text = format!(
            "OPTIONS sip:8000@h SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy:5060;branch=z9hG4bKp\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:8000@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    };
    let top = |r: &rsip::Request| vias(r).first().unwrap().to_string();
    let v6: std::net::SocketAddr = "[::1]:5098".parse().unwrap();
    let mut r = request("SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;rport");
    stamp_via(&mut r, v6);
    assert_eq!(
        top(&r),
        "SIP/2.0/UDP [::1]:5098;branch=z9hG4bK1;received=::1;rport=5098"
    );
    // The second hop is untouched and the transaction key still reads the branch.
    assert_eq!(vias(&r).len(), 2);
    assert_eq!(branch(&r).as_deref(), Some("z9hG4bK1"));
    // Behind NAT: another address, no rport asked.
    let nat: std::net::SocketAddr = "[2001:db8::9]:40000".parse().unwrap();
    let mut r = request("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2");
    stamp_via(&mut r, nat);
    assert_eq!(
        top(&r),
        "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2;received=2001:db8::9"
    );
    // Same address, no rport: nothing to say.
    let v4: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
    let mut r = request("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3");
    stamp_via(&mut r, v4);
    assert_eq!(top(&r), "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK3");
    // A host name and rport over IPv4.
    let mut r = request("SIP/2.0/TCP phone.example;rport;branch=z9hG4bK4");
    stamp_via(&mut r, "192.0.2.7:61000".parse().unwrap());
    assert_eq!(
        top(&r),
        "SIP/2.0/TCP phone.example;branch=z9hG4bK4;received=192.0.2.7;rport=61000"
    );
}

#[test]
fn parses_a_plain_request() {
    let r = request(OPTIONS);
    assert_eq!(r.method, rsip::Method::Options);
    assert_eq!(branch(&r).as_deref(), Some("z9hG4bK776asdhds"));
    assert_eq!(cseq(&r), Some((63104, "OPTIONS".into())));
    assert_eq!(header_value(&r, "max-forwards").as_deref(), Some("70"));
}

#[test]
fn missing_required_headers_are_named() {
    let text = OPTIONS.replace("Call-ID: a84b4c76e66710@pc33.example.com\r\n", "");
    assert_eq!(
        parse(text.as_bytes()),
        Err(ParseError::MissingHeader("Call-ID"))
    );
    // RFC 2543 requests have no Max-Forwards and are served (RFC 4475 §3.4.1).
    let text = OPTIONS.replace("Max-Forwards: 70\r\n", "");
    assert!(parse(text.as_bytes()).is_ok());
}

#[test]
fn extension_headers_are_reachable_by_name() {
    let text = OPTIONS.replace("Content-Length: 0", "X-Queue : sales\r\nContent-Length: 0");
    let r = request(&text);
    assert_eq!(header_value(&r, "x-queue").as_deref(), Some("sales"));
    assert_eq!(header_values(&r, "X-Missing"), Vec::<String>::new());
}

#[test]
fn cseq_method_must_match() {
    let text = OPTIONS.replace("63104 OPTIONS", "63104 INVITE");
    assert_eq!(parse(text.as_bytes()), Err(ParseError::CSeqMismatch));
}

#[test]
fn numeric_ranges_are_enforced() {
    let text = OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 256");
    assert_eq!(
        parse(text.as_bytes()),
        Err(ParseError::OutOfRange("Max-Forwards"))
    );
    let text = OPTIONS.replace("63104 OPTIONS", "2147483648 OPTIONS");
    assert_eq!(parse(text.as_bytes()), Err(ParseError::OutOfRange("CSeq")));
}

#[test]
fn content_length_longer_than_body_is_refused_and_extra_bytes_dropped() {
    let text = OPTIONS.replace("Content-Length: 0", "Content-Length: 5");
    assert_eq!(parse(text.as_bytes()), Err(ParseError::TruncatedBody));
    let text = format!(
        "{}hello world",
        OPTIONS.replace("Content-Length: 0", "Content-Length: 5")
    );
    let r = request(&text);
    assert_eq!(r.body, b"hello");
}

#[test]
fn limits_refuse_huge_messages_and_header_floods() {
    let big = vec![b'a'; MAX_MESSAGE_SIZE + 1];
    assert_eq!(parse(&big), Err(ParseError::TooLarge));
    let flood = "X-A: b\r\n".repeat(MAX_HEADERS + 1);
    let text = OPTIONS.replace("Content-Length: 0\r\n", &flood);
    assert_eq!(parse(text.as_bytes()), Err(ParseError::TooManyHeaders));
}

#[test]
fn folded_compact_headers_are_normalised() {
    let text = "INVITE sip:a@example.com SIP/2.0\r\n\
        v: SIP / 2.0 / UDP host.example.com ;\r\n branch = z9hG4bKabc, SIP/2.0/TCP h2\r\n\
        f : <sip:b@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x@y\r\n\
        CSeq: 1\r\n INVITE\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
    let r = request(text);
    let hops = vias(&r);
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0].transport, "UDP");
    assert_eq!(hops[0].sent_by, "host.example.com");
    assert_eq!(hops[0].branch(), Some("z9hG4bKabc"));
    assert_eq!(hops[1].sent_by, "h2");
    assert_eq!(header_value(&r, "Call-ID").as_deref(), Some("x@y"));
}

#[test]
fn response_for_copies_dialog_headers_and_adds_a_tag() {
    let r = request(OPTIONS);
    let resp = response_with_tag(&r, 486, "Busy Here", "abc");
    assert_eq!(resp.status_code.code(), 486);
    assert_eq!(
        header_value(&resp, "To").as_deref(),
        Some("Bob <sip:bob@example.com>;tag=abc")
    );
    assert_eq!(branch(&resp), branch(&r));
    assert_eq!(
        header_value(&resp, "CSeq").as_deref(),
        Some("63104 OPTIONS")
    );
    let trying = response_for(&r, 100, "Trying");
    assert_eq!(tag_of(&header_value(&trying, "To").unwrap()), None);
    // What we produce, we parse back.
    let wire = to_bytes(&SipMessage::Response(resp));
    assert!(parse(&wire).is_ok(), "{}", String::from_utf8_lossy(&wire));
}

#[test]
fn branch_cookie_is_recognised() {
    assert!(is_rfc3261_branch("z9hG4bK776asdhds"));
    assert!(!is_rfc3261_branch("z9hG4bK"));
    assert!(!is_rfc3261_branch("390skdjuw"));
    assert!(is_rfc3261_branch(&new_branch()));
}

#[test]
fn framing_waits_for_the_body_and_skips_keepalives() {
    let msg = OPTIONS.replace("Content-Length: 0", "Content-Length: 4") + "abcd";
    let mut buf = b"\r\n\r\n".to_vec();
    buf.extend_from_slice(msg.as_bytes());
    assert_eq!(framing(&buf[..buf.len() - 1]), Ok(None));
    assert_eq!(
        framing(&buf),
        Ok(Some(Frame::Message {
            skip: 4,
            len: msg.len()
        }))
    );
    assert_eq!(framing(b"\r\n\r\n"), Ok(Some(Frame::KeepAlive { len: 4 })));
    assert_eq!(framing(b""), Ok(None));
    assert_eq!(framing(b"OPTIONS sip:a SIP/2.0\r\nVia: x"), Ok(None));
}

#[test]
fn framing_needs_content_length_on_streams() {
    let msg = OPTIONS.replace("Content-Length: 0\r\n", "");
    assert_eq!(framing(msg.as_bytes()), Err(ParseError::BadContentLength));
    let endless = vec![b'a'; MAX_MESSAGE_SIZE + 2];
    assert_eq!(framing(&endless), Err(ParseError::TooLarge));
}
