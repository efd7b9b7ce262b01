//! Concurrent prompt streams: N `MediaSession`s on loopback, each playing the shipped
//! `prompts/hold-music.wav` in a loop to its own receiver socket. The receivers live in a
//! child process (this binary re-run with `--receiver`), so the engine's CPU figure
//! (`getrusage` of this process) is the engine's alone and the receivers cannot stall the
//! sender's threads.
//!
//! The receivers take the kernel's arrival timestamp of every packet (`SO_TIMESTAMPNS`), so
//! the figures measure when the engine's packets reached the socket, not when the receiver
//! process got round to reading them. After a warm-up they measure, per stream:
//! - RFC 3550 interarrival jitter (§6.4.1, J += (|D| − J)/16, reported in ms);
//! - |arrival gap − 20 ms| for consecutive sequence numbers, pooled over all streams (p50,
//!   p99, p99.9, max) and the worst stream's own p99;
//! - loss from sequence gaps (expected = highest − lowest extended sequence + 1, minus
//!   received), reordered/duplicate packets, and streams that were silent;
//! - the delivered rate against the nominal 50 packets/s per stream: a sender that falls
//!   behind real time shows no sequence gap but starves the far end's jitter buffer.
//!
//! The engine side reports its CPU time over the same window as % of one core and µs per
//! packet. Goal (issue 4): 3,000 streams with p99 jitter < 5 ms and no loss on 2 cores.
//!
//! `cargo bench --bench media_streams` runs N = 100, 1000, 3000 for each pacing mode
//! (override with `MEDIA_BENCH_N=100,3000`, `MEDIA_BENCH_SECS=10`, `MEDIA_BENCH_WARMUP=3`).
//! Under `cargo test` (no `--bench` argument) it smoke-runs 5 streams for half a second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use boomerang::media::g711::Law;
use boomerang::media::prompts::PromptLibrary;
use boomerang::media::sdp::{MediaDirection, Negotiated};
use boomerang::media::session::{
    DigitBuffer, MediaSession, PacerOptions, Pacing, set_pacer_options, set_pacing,
    take_pacer_stats,
};

const PERIOD_NS: i64 = 20_000_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--receiver") {
        let n: usize = args[i + 1].parse().expect("n");
        let warmup = Duration::from_millis(args[i + 2].parse().expect("warmup"));
        let measure = Duration::from_millis(args[i + 3].parse().expect("measure"));
        receiver_main(n, warmup, measure);
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let (ns, warmup, measure): (Vec<usize>, Duration, Duration) = if full {
        let ns = std::env::var("MEDIA_BENCH_N")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![100, 1000, 3000]);
        (
            ns,
            Duration::from_secs(env_or("MEDIA_BENCH_WARMUP", 3)),
            Duration::from_secs(env_or("MEDIA_BENCH_SECS", 10)),
        )
    } else {
        (
            vec![5],
            Duration::from_millis(300),
            Duration::from_millis(500),
        )
    };
    let modes = modes(full);
    let options = pacer_options();
    set_pacer_options(options);
    let library = PromptLibrary::load(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
        .expect("prompt library");
    let hold = library.require("hold-music").expect("hold-music").clone();
    let frames = hold.frames(Law::Ulaw).clone();
    println!(
        "media_streams: hold-music {} ms, warm-up {:?}, measuring {:?}, {} cores, shared driver {:?}",
        hold.duration_ms(),
        warmup,
        measure,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        options
    );
    println!(
        "{:<12} {:>5} | {:>9} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>9} | {:>8} {:>8} | {:>6} {:>6} {:>6} | {:>6}",
        "pacing",
        "N",
        "received",
        "lost",
        "dev p50",
        "dev p99",
        "p99.9",
        "max",
        "worst p99",
        "J mean",
        "J max",
        "cpu %",
        "us/pkt",
        "rx %",
        "goal"
    );
    let mut rows = Vec::new();
    for &n in &ns {
        for mode in &modes {
            let row = run(mode, n, frames.clone(), warmup, measure);
            row.print();
            if !full {
                assert!(row.received > 0, "smoke run received nothing: {row:?}");
            }
            rows.push(row);
        }
    }
    if full {
        // Ratios against the first mode (the baseline) at the same N, same run.
        for &n in &ns {
            let base = rows.iter().find(|r| r.n == n && r.mode == modes[0]);
            for r in rows.iter().filter(|r| r.n == n && r.mode != modes[0]) {
                if let Some(b) = base {
                    println!(
                        "N={n}: {} vs {}: cpu {:.2}x, cpu/packet {:.2}x, dev p99 {:.2}x, rate {:.1} % vs {:.1} %, lost {} vs {}",
                        r.mode,
                        b.mode,
                        r.cpu_pct / b.cpu_pct.max(1e-9),
                        r.us_per_packet / b.us_per_packet.max(1e-9),
                        r.dev_p99_ms / b.dev_p99_ms.max(1e-9),
                        r.rate_pct(),
                        b.rate_pct(),
                        r.lost,
                        b.lost
                    );
                }
            }
        }
    }
}

/// Pacing modes to compare; the first is the baseline (`MEDIA_BENCH_MODES=shared` for one).
fn modes(full: bool) -> Vec<String> {
    match std::env::var("MEDIA_BENCH_MODES") {
        Ok(v) => v.split(',').map(|m| m.trim().to_string()).collect(),
        Err(_) if full => vec!["per-session".into(), "shared".into()],
        Err(_) => vec!["shared".into()],
    }
}

/// `MEDIA_BENCH_PACER="threads=1,slots=4,rt=10"` (rt=0: normal priority) tunes the shared
/// driver for this process; defaults are `PacerOptions::DEFAULT`.
fn pacer_options() -> PacerOptions {
    let mut o = PacerOptions::DEFAULT;
    for kv in std::env::var("MEDIA_BENCH_PACER")
        .unwrap_or_default()
        .split(',')
    {
        match kv.split_once('=') {
            Some(("threads", v)) => o.threads = v.parse().expect("threads"),
            Some(("slots", v)) => o.slots = v.parse().expect("slots"),
            Some(("rt", v)) => {
                o.realtime_priority = Some(v.parse().expect("rt")).filter(|p: &i32| *p > 0)
            }
            _ => {}
        }
    }
    o
}

fn set_mode(mode: &str) {
    set_pacing(match mode {
        "per-session" => Pacing::PerSession,
        "shared" => Pacing::Shared,
        other => panic!("unknown pacing mode {other:?} (per-session, shared)"),
    });
}

#[derive(Debug, Default, Clone)]
struct Row {
    mode: String,
    n: usize,
    received: u64,
    expected_nominal: u64,
    lost: u64,
    reordered: u64,
    silent: u64,
    dev_p50_ms: f64,
    dev_p99_ms: f64,
    dev_p999_ms: f64,
    dev_max_ms: f64,
    worst_stream_p99_ms: f64,
    jitter_mean_ms: f64,
    jitter_max_ms: f64,
    cpu_pct: f64,
    us_per_packet: f64,
    rx_cpu_pct: f64,
    /// Shared pacer: slot ticks, those started > 2 ms late, and the latest start (0 ticks in
    /// per-session mode).
    pacer_ticks: u64,
    pacer_late_ticks: u64,
    pacer_max_late_ms: f64,
}

impl Row {
    /// Packets received as a share of the nominal 50 per stream per second: below 100 % the
    /// sender fell behind real time (the far end's jitter buffer underruns) even without
    /// sequence gaps.
    fn rate_pct(&self) -> f64 {
        100.0 * self.received as f64 / self.expected_nominal.max(1) as f64
    }

    fn ok(&self) -> bool {
        self.dev_p99_ms < 5.0 && self.lost == 0 && self.silent == 0 && self.rate_pct() > 99.5
    }

    fn print(&self) {
        println!(
            "{:<12} {:>5} | {:>9} {:>7} | {:>7.3} {:>7.3} {:>7.3} {:>7.2} {:>9.3} | {:>8.3} {:>8.3} | {:>6.1} {:>6.2} {:>6.1} | {:>6}",
            self.mode,
            self.n,
            self.received,
            self.lost,
            self.dev_p50_ms,
            self.dev_p99_ms,
            self.dev_p999_ms,
            self.dev_max_ms,
            self.worst_stream_p99_ms,
            self.jitter_mean_ms,
            self.jitter_max_ms,
            self.cpu_pct,
            self.us_per_packet,
            self.rx_cpu_pct,
            if self.ok() { "met" } else { "MISSED" }
        );
        println!(
            "             (nominal {} packets: rate {:.1} %, reordered/dup {}, silent streams {})",
            self.expected_nominal,
            self.rate_pct(),
            self.reordered,
            self.silent
        );
        if self.pacer_ticks > 0 {
            println!(
                "             (pacer: {} ticks, {} started > 2 ms late, latest {:.2} ms)",
                self.pacer_ticks, self.pacer_late_ticks, self.pacer_max_late_ms
            );
        }
    }
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn run(
    mode: &str,
    n: usize,
    frames: Arc<[boomerang::media::prompts::Frame]>,
    warmup: Duration,
    measure: Duration,
) -> Row {
    set_mode(mode);
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--receiver".to_string(),
            n.to_string(),
            warmup.as_millis().to_string(),
            measure.as_millis().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("receiver process");
    let mut child_out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    child_out.read_line(&mut line).expect("receiver ports");
    let ports: Vec<u16> = line
        .split_whitespace()
        .map(|p| p.parse().expect("port"))
        .collect();
    assert_eq!(ports.len(), n);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let sessions: Vec<Arc<MediaSession>> = rt.block_on(async {
        let mut v = Vec::with_capacity(n);
        for port in &ports {
            let s = MediaSession::open(lo, (10000, 30000), Arc::new(DigitBuffer::default()))
                .await
                .expect("open session");
            s.configure(&Negotiated {
                remote: SocketAddr::new(lo, *port),
                codec: Law::Ulaw,
                payload_type: 0,
                telephone_event: Some(101),
                ptime: 20,
                direction: MediaDirection::SendRecv,
                rtcp_mux: false,
            });
            v.push(s);
        }
        for s in &v {
            s.play(vec![frames.clone()], true);
        }
        v
    });
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "go").expect("go");
    stdin.flush().expect("flush");
    std::thread::sleep(warmup);
    let (c0, t0) = (cpu_time(), boomerang::clock::monotonic_now());
    take_pacer_stats();
    std::thread::sleep(measure);
    let (c1, t1) = (cpu_time(), boomerang::clock::monotonic_now());
    let pacer = take_pacer_stats();
    let mut result = String::new();
    child_out.read_line(&mut result).expect("receiver result");
    let _ = child.wait();
    for s in &sessions {
        s.close();
    }
    drop(sessions);
    rt.shutdown_timeout(Duration::from_secs(2));

    let v: serde_json::Value = serde_json::from_str(&result).expect("receiver json");
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let cpu = (c1 - c0).as_secs_f64();
    let wall = (t1 - t0).as_secs_f64();
    let received = u("received");
    Row {
        mode: mode.to_string(),
        n,
        received,
        expected_nominal: (n as f64 * measure.as_secs_f64() * 50.0) as u64,
        lost: u("lost"),
        reordered: u("reordered"),
        silent: u("silent"),
        dev_p50_ms: f("dev_p50_ms"),
        dev_p99_ms: f("dev_p99_ms"),
        dev_p999_ms: f("dev_p999_ms"),
        dev_max_ms: f("dev_max_ms"),
        worst_stream_p99_ms: f("worst_stream_p99_ms"),
        jitter_mean_ms: f("jitter_mean_ms"),
        jitter_max_ms: f("jitter_max_ms"),
        cpu_pct: 100.0 * cpu / wall,
        us_per_packet: cpu * 1e6 / (received.max(1) as f64),
        rx_cpu_pct: f("cpu_pct"),
        pacer_late_ticks: pacer.late_ticks,
        pacer_ticks: pacer.ticks,
        pacer_max_late_ms: pacer.max_lateness.as_secs_f64() * 1e3,
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver process
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stream {
    received: u64,
    first_ext: i64,
    max_ext: i64,
    last_seq: u16,
    last_ext: i64,
    last_ns: i64,
    last_ts: u32,
    reordered: u64,
    /// RFC 3550 jitter in timestamp units (8 kHz), as f64.
    jitter: f64,
    /// |gap − 20 ms| in µs for consecutive sequence numbers.
    dev_us: Vec<u32>,
}

impl Stream {
    fn push(&mut self, seq: u16, ts: u32, ns: i64) {
        if self.received == 0 {
            self.first_ext = i64::from(seq);
            self.max_ext = self.first_ext;
            self.last_ext = self.first_ext;
        } else {
            let delta = i64::from(seq.wrapping_sub(self.last_seq) as i16);
            let ext = self.last_ext + delta;
            if delta <= 0 {
                self.reordered += 1;
            }
            if delta == 1 {
                let gap = ns - self.last_ns;
                self.dev_us.push(
                    ((gap - PERIOD_NS).unsigned_abs() / 1000).min(u64::from(u32::MAX)) as u32,
                );
            }
            // RFC 3550 §6.4.1, in timestamp units.
            let arrival = (ns - self.last_ns) as f64 * 8000.0 / 1e9;
            let sent = f64::from(ts.wrapping_sub(self.last_ts) as i32);
            let d = (arrival - sent).abs();
            self.jitter += (d - self.jitter) / 16.0;
            self.max_ext = self.max_ext.max(ext);
            self.last_ext = ext;
        }
        self.received += 1;
        self.last_seq = seq;
        self.last_ns = ns;
        self.last_ts = ts;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn receiver_main(n: usize, warmup: Duration, measure: Duration) {
    let sockets: Vec<std::net::UdpSocket> = (0..n)
        .map(|_| {
            let s = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind receiver");
            s.set_nonblocking(true).expect("nonblocking");
            let on: libc::c_int = 1;
            // SAFETY: plain setsockopt on our own socket with an int option.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    &on as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            s
        })
        .collect();
    let ports: Vec<String> = sockets
        .iter()
        .map(|s| s.local_addr().expect("addr").port().to_string())
        .collect();
    let mut out = std::io::stdout();
    writeln!(out, "{}", ports.join(" ")).expect("write ports");
    out.flush().expect("flush");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("go");
    let start = boomerang::clock::monotonic_now() + warmup;
    let end = start + measure;

    // SAFETY: epoll on our own sockets; the event array outlives every call.
    let ep = unsafe { libc::epoll_create1(0) };
    assert!(ep >= 0);
    for (i, s) in sockets.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
        assert_eq!(rc, 0);
    }
    let mut streams: Vec<Stream> = (0..n).map(|_| Stream::default()).collect();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; 2048];
    let mut cmsg = [0u64; 16];
    let mut c0 = None;
    loop {
        let now = boomerang::clock::monotonic_now();
        if now >= end {
            break;
        }
        if c0.is_none() && now >= start {
            c0 = Some(cpu_time());
        }
        let k = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 20) };
        for ev in events.iter().take(k.max(0) as usize) {
            let i = ev.u64 as usize;
            let fd = sockets[i].as_raw_fd();
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr() as *mut libc::c_void,
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of_val(&cmsg) as _;
            let got = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
            if got < 12 {
                continue;
            }
            // Sessions send RTCP to the RTP port + 1, which may be another stream's receiver
            // here: a real receiver tells RTCP apart, and so does this one.
            if boomerang::media::rtp::is_rtcp(&buf[..got as usize]) {
                continue;
            }
            let mut ns = None;
            // SAFETY: walking the control messages the kernel wrote into `cmsg`.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS
                    {
                        let ts =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                        ns = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            let ns = ns.unwrap_or_else(|| {
                let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
                unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
                ts.tv_sec * 1_000_000_000 + ts.tv_nsec
            });
            if boomerang::clock::monotonic_now() < start {
                continue;
            }
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            streams[i].push(seq, ts, ns);
        }
    }
    let cpu = c0.map_or(0.0, |c0| (cpu_time() - c0).as_secs_f64());

    let mut all: Vec<u32> = Vec::new();
    let (mut received, mut lost, mut reordered, mut silent) = (0u64, 0u64, 0u64, 0u64);
    let mut worst_p99: f64 = 0.0;
    let (mut jsum, mut jmax) = (0.0f64, 0.0f64);
    for s in &mut streams {
        if s.received == 0 {
            silent += 1;
            continue;
        }
        received += s.received;
        let expected = (s.max_ext - s.first_ext + 1) as u64;
        lost += expected.saturating_sub(s.received);
        reordered += s.reordered;
        let j = s.jitter / 8.0; // ms
        jsum += j;
        jmax = jmax.max(j);
        s.dev_us.sort_unstable();
        worst_p99 = worst_p99.max(percentile(&s.dev_us, 0.99));
        all.extend_from_slice(&s.dev_us);
    }
    all.sort_unstable();
    let live = (n as u64 - silent).max(1) as f64;
    let result = serde_json::json!({
        "received": received,
        "lost": lost,
        "reordered": reordered,
        "silent": silent,
        "dev_p50_ms": percentile(&all, 0.50),
        "dev_p99_ms": percentile(&all, 0.99),
        "dev_p999_ms": percentile(&all, 0.999),
        "dev_max_ms": all.last().map_or(f64::NAN, |m| f64::from(*m) / 1000.0),
        "worst_stream_p99_ms": worst_p99,
        "jitter_mean_ms": jsum / live,
        "jitter_max_ms": jmax,
        "cpu_pct": 100.0 * cpu / measure.as_secs_f64(),
    });
    writeln!(out, "{result}").expect("write result");
    out.flush().expect("flush");
}
