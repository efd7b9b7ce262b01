//! Out of file descriptors, the SIP/TCP accept loop must back off instead of spinning on
//! EMFILE (a pending connection makes every accept fail at once). Own test binary: it lowers
//! this process's descriptor limit for a moment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn set_soft_fd_limit(n: u64) -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let old = lim.rlim_cur as u64;
    lim.rlim_cur = n as libc::rlim_t;
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    old
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let (_dir, engine) = common::start_demo(|_| {}).await;
    let target = engine.sip.tcp[0];
    // Fill every descriptor but one, which the client's socket takes: the engine's accept of
    // it then fails with EMFILE.
    let old = set_soft_fd_limit(open_fds() + 16);
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    hog.pop();
    let mut client = tokio::net::TcpStream::connect(target).await.unwrap();
    let options = "OPTIONS sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKemfile\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCall-ID: emfile\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    client.write_all(options.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_time();
    let mut buf = vec![0u8; 4096];
    // Not accepted while out of descriptors: no answer yet (else the test proves nothing).
    let early = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf)).await;
    let used = cpu_time() - before;
    set_soft_fd_limit(old);
    drop(hog);
    assert!(
        early.is_err(),
        "the connection was accepted: no EMFILE happened: {early:?} {:?}",
        String::from_utf8_lossy(&buf[..64])
    );
    // Spinning on EMFILE burned 0.8–1.3 s of CPU in these 2 s; backing off a few ms.
    assert!(used < Duration::from_millis(250), "{used:?} of CPU in 2 s");
    // With descriptors back, the pending connection is accepted and served.
    let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the connection was not served once descriptors were back")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200 "));
}
