//! Delay the customer ↔ agent RTP relay adds (issue 4: no more than one packet, 20 ms).
//!
//! Two `MediaSession`s on loopback are bridged as a call's two legs are. A "phone" socket
//! sends an RTP packet to leg A; leg A relays it out of leg B to a "far phone" socket; the
//! time from the send to the receipt is the relay's delay plus two loopback hops. The baseline
//! in the same run is the least a relay can do: a tokio task that reads a datagram and sends
//! it on (a plain UDP forwarder), timed the same way. One packet is in flight at a time, so
//! the figures are latency, not queueing.
//!
//! Before criterion's own measurement it sends 5,000 packets, 1 ms apart, through each path
//! and prints p50/p99/max and the ratio to the baseline (`RELAY_BENCH_PACKETS` overrides the
//! count). Under `cargo test` criterion only smoke-runs each path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use boomerang::media::g711::Law;
use boomerang::media::rtp::RtpSender;
use boomerang::media::sdp::{MediaDirection, Negotiated};
use boomerang::media::session::{DigitBuffer, MediaSession};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::net::UdpSocket;
use tokio::runtime::Runtime;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn negotiated(remote: SocketAddr, codec: Law) -> Negotiated {
    Negotiated {
        remote,
        codec,
        payload_type: codec.payload_type(),
        telephone_event: None,
        ptime: 20,
        direction: MediaDirection::SendRecv,
        rtcp_mux: false,
    }
}

/// One measured path: a socket to send into, and the socket where the packet comes out.
struct Path {
    phone: UdpSocket,
    entry: SocketAddr,
    far: UdpSocket,
    sender: RtpSender,
    _keep: Vec<Arc<MediaSession>>,
}

impl Path {
    /// Leg A (where `phone` talks) bridged to leg B (which talks to `far`); leg B uses `law_b`.
    async fn engine(law_b: Law) -> Path {
        let phone = UdpSocket::bind((LO, 0)).await.expect("phone socket");
        let far = UdpSocket::bind((LO, 0)).await.expect("far socket");
        let a = MediaSession::open(LO, (0, 0), Arc::new(DigitBuffer::default()))
            .await
            .expect("leg A");
        let b = MediaSession::open(LO, (0, 0), Arc::new(DigitBuffer::default()))
            .await
            .expect("leg B");
        a.configure(&negotiated(phone.local_addr().expect("addr"), Law::Ulaw));
        b.configure(&negotiated(far.local_addr().expect("addr"), law_b));
        // As SipLeg::bridge does: each leg relays what it hears to the other.
        a.bridge_to(&b);
        b.bridge_to(&a);
        Path {
            entry: a.local_addr(),
            phone,
            far,
            sender: RtpSender::new(0),
            _keep: vec![a, b],
        }
    }

    /// The baseline: a task that forwards each datagram as it is read.
    async fn forwarder() -> Path {
        let phone = UdpSocket::bind((LO, 0)).await.expect("phone socket");
        let far = UdpSocket::bind((LO, 0)).await.expect("far socket");
        let relay = UdpSocket::bind((LO, 0)).await.expect("relay socket");
        let entry = relay.local_addr().expect("addr");
        let to = far.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, _)) = relay.recv_from(&mut buf).await {
                let _ = relay.send_to(&buf[..n], to).await;
            }
        });
        Path {
            phone,
            entry,
            far,
            sender: RtpSender::new(0),
            _keep: Vec::new(),
        }
    }

    /// Sends one 20 ms PCMU packet in and waits for it to come out; the time it took.
    async fn one(&mut self, buf: &mut Vec<u8>, scratch: &mut [u8]) -> Duration {
        buf.clear();
        self.sender.audio_packet(&[0x55; 160], 160, buf);
        let t0 = boomerang::clock::monotonic_now();
        self.phone.send_to(buf, self.entry).await.expect("send");
        loop {
            let got = tokio::time::timeout(Duration::from_secs(1), self.far.recv_from(scratch))
                .await
                .expect("the packet never came out")
                .expect("receive");
            // Only the relayed packet counts (not an RTCP report).
            if got.0 > 12 && scratch[1] & 0x7F < 72 {
                return t0.elapsed();
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Times `n` packets 1 ms apart through `path`; returns the sorted delays.
async fn sample(path: &mut Path, n: usize) -> Vec<Duration> {
    let (mut buf, mut scratch) = (Vec::with_capacity(200), vec![0u8; 2048]);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(path.one(&mut buf, &mut scratch).await);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    out.sort();
    out
}

fn report(rt: &Runtime) {
    let n: usize = std::env::var("RELAY_BENCH_PACKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let (base, same, transcoded) = rt.block_on(async {
        let mut forwarder = Path::forwarder().await;
        let mut same = Path::engine(Law::Ulaw).await;
        let mut transcoded = Path::engine(Law::Alaw).await;
        // Interleaved in blocks so that machine load hits all three alike.
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..10 {
            a.extend(sample(&mut forwarder, n / 10).await);
            b.extend(sample(&mut same, n / 10).await);
            c.extend(sample(&mut transcoded, n / 10).await);
        }
        for v in [&mut a, &mut b, &mut c] {
            v.sort();
        }
        (a, b, c)
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "relay delay, {} packets each, phone → leg A → leg B → far phone:",
        base.len()
    );
    for (name, v) in [
        ("UDP forwarder (baseline)", &base),
        ("engine relay, PCMU → PCMU", &same),
        ("engine relay, PCMU → PCMA", &transcoded),
    ] {
        println!(
            "  {name:28} p50 {:7.1} µs  p99 {:7.1} µs  max {:8.1} µs  (p50 {:.2}× baseline, p99 {:.2}×)",
            us(percentile(v, 0.5)),
            us(percentile(v, 0.99)),
            us(percentile(v, 1.0)),
            us(percentile(v, 0.5)) / us(percentile(&base, 0.5)),
            us(percentile(v, 0.99)) / us(percentile(&base, 0.99)),
        );
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::args().any(|a| a == "--bench") {
        report(&rt);
    }
    let mut g = c.benchmark_group("relay_delay");
    let paths = rt.block_on(async {
        [
            ("udp_forwarder", Path::forwarder().await),
            ("engine_pcmu_pcmu", Path::engine(Law::Ulaw).await),
            ("engine_pcmu_pcma", Path::engine(Law::Alaw).await),
        ]
    });
    for (name, mut path) in paths {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let (mut buf, mut scratch) = (Vec::with_capacity(200), vec![0u8; 2048]);
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += path.one(&mut buf, &mut scratch).await;
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
