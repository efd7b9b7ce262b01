//! A flood of malformed datagrams must not write a log line each: the user agent logs the
//! first few per interval, then one "N similar suppressed" line (src/throttle.rs). Own test
//! binary, because it installs its own log subscriber (info for the SIP endpoint).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_datagrams_is_logged_a_few_times_then_counted() {
    common::capture_logs_with("warn,boomerang::sip::endpoint=info");
    let (_dir, engine) = common::start_demo_engine(|t| t).await;
    let target = engine.sip.udp[0];
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bad = "OPTIONS sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKf\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCall-ID: flood\r\nCSeq: 1 OPTIONS\r\nContent-Length: zz\r\n\r\n";
    // Sent in paced bursts, read as they come, so that few are lost in socket buffers.
    let mut answered = 0;
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        for _ in 0..20 {
            sock.send_to(bad.as_bytes(), target).await.unwrap();
        }
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(20), sock.recv_from(&mut buf)).await
        {
            answered += 1;
        }
    }
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(1000), sock.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    // Every one that arrived is answered (400) even when its log line is suppressed.
    assert!(answered > 500, "only {answered} of 1000 answered");
    let logged = common::log_lines(&["malformed SIP message"]).len();
    assert!(
        (1..=10).contains(&logged),
        "{logged} lines for 1000 datagrams"
    );
    // The next interval's first one brings the count of those suppressed.
    tokio::time::sleep(Duration::from_secs(10)).await;
    sock.send_to(bad.as_bytes(), target).await.unwrap();
    // Its line is written once the engine has read it: wait (up to 10 s), not a fixed 500 ms.
    for _ in 0..100 {
        if !common::log_lines(&["similar suppressed"]).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = common::log_lines(&["similar suppressed"]);
    assert_eq!(summary.len(), 1, "{summary:?}");
    let count: usize = summary[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("suppressed="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"));
    assert_eq!(count + logged, answered, "{summary:?}");
}
