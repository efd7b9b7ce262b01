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

/// A request carrying one header of every kind rsip knows, plus extension headers.
fn every_header() -> rsip::Request {
    let names = [
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Authentication-Info",
        "Authorization",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Type",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "In-Reply-To",
        "Mime-Version",
        "Min-Expires",
        "Organization",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Record-Route",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "Unsupported",
        "User-Agent",
        "Warning",
        "WWW-Authenticate",
        "X-Queue",
        "x",
    ];
    let mut text = OPTIONS.replace("Content-Length: 0\r\n\r\n", "");
    for name in names {
        let value = match name {
            "Date" => "Sat, 13 Nov 2010 23:29:00 GMT",
            "Expires" | "Min-Expires" | "Retry-After" => "60",
            "Contact" | "Record-Route" | "Route" => "<sip:p.example.com;lr>",
            _ => "v1 ; p=2",
        };
        text.push_str(&format!("{name}:  {value} \r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    request(&text)
}

#[test]
fn header_names_and_values_are_read_as_rsip_writes_them_without_formatting() {
    let r = every_header();
    assert_eq!(r.headers.iter().count(), 48, "{r}");
    for h in r.headers.iter() {
        let text = h.to_string();
        let (name, value) = text.split_once(':').unwrap();
        assert_eq!(header_name(h), name.trim(), "{text}");
        assert_eq!(header_text(h), value.trim(), "{text}");
    }
    assert_eq!(header_str(&r, "x-QUEUE"), Some("v1 ; p=2"));
    assert_eq!(header_str(&r, "x"), Some("v1 ; p=2"));
    assert_eq!(
        header_str(&r, "Session-Expires"),
        None,
        "helpers do not fold"
    );
    assert_eq!(header_strs(&r, "Via").count(), 1);
    assert_eq!(top_via(&r).unwrap().branch(), Some("z9hG4bK776asdhds"));
}

#[test]
fn the_index_folds_compact_names_keeps_order_and_reads_each_name() {
    let text = "INVITE sip:a@example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/TCP h2;branch=z9hG4bK2\r\n\
        f: <sip:b@example.com>;tag=1\r\nt: sip:a@example.com\r\ni: x@y\r\n\
        Route: <sip:r1>\r\nX-A: 1\r\nroute: <sip:r2>\r\nx: 90;refresher=uac\r\n\
        CSeq: 7 INVITE\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
    let m = IndexedMessage::parse(text.as_bytes()).unwrap();
    let SipMessage::Request(r) = m.message() else {
        panic!("request expected")
    };
    assert_eq!(m.len(), r.headers.iter().count());
    assert!(!m.is_empty());
    for name in ["Call-ID", "call-id", "i", "I"] {
        assert_eq!(m.value(name), Some("x@y"), "{name}");
    }
    assert_eq!(m.value("Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(m.value("x"), Some("90;refresher=uac"));
    assert_eq!(
        m.values("ROUTE").collect::<Vec<_>>(),
        ["<sip:r1>", "<sip:r2>"]
    );
    assert_eq!(m.value("x-a"), Some("1"));
    assert_eq!(m.value("X-Missing"), None);
    assert_eq!(m.values("Accept").count(), 0);
    let hops: Vec<String> = m.vias().iter().map(|v| v.sent_by.clone()).collect();
    assert_eq!(hops, ["h1", "h2"]);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK1"));
    assert_eq!(m.cseq(), Some((7, "INVITE")));
    // The index agrees with the helpers on every header a message has.
    let r = every_header();
    let m = IndexedMessage::from(SipMessage::Request(r.clone()));
    for h in r.headers.iter() {
        let name = header_name(h);
        assert_eq!(
            m.values(name).collect::<Vec<_>>(),
            header_strs(&r, name).collect::<Vec<_>>(),
            "{name}"
        );
    }
    assert_eq!(m.into_message(), SipMessage::Request(r));
}
