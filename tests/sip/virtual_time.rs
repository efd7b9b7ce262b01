//! The engine's SIP timers run on the engine's injected clock: with a manual clock a test
//! jumps through an RFC 4028 session in virtual time instead of waiting for it. SIPp calls a
//! route point whose flow answers and plays ten minutes of silence, asking for a 90 s session
//! with itself as refresher, and never refreshes; the engine's BYE is due at 60 s of the
//! engine's time (90 − min(32, 90/3)), which the test reaches by advancing the clock.

use std::sync::Arc;
use std::time::Duration;

use boomerang::clock::ManualClock;
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::{TimeDelta, TimeZone, Utc};

use crate::common;
use common::repo;

/// Route point 8000 answers and plays silence far longer than the test: only SIP can end it.
fn config_text(flows: &std::path::Path) -> String {
    format!(
        "listeners:\n  sip_udp: [\"127.0.0.1:0\"]\n  sip_tcp: []\n  http: \"127.0.0.1:0\"\n\
         media:\n  prompts_dir: {prompts}\n  rtp_timeout_seconds: 0\n\
         store:\n  data_dir: data\n\
         flows_dir: {flows}\n\
         route_points:\n  - number: \"8000\"\n    flow: long.yaml\n",
        prompts = repo().join("prompts").display(),
        flows = flows.display(),
    )
}

/// Ten minutes of silence (ten prompts of the longest silence allowed).
fn long_flow() -> String {
    let prompts = "      - silence_ms: 60000\n".repeat(10);
    format!(
        "application: answer-and-wait-long\ntype: default\nself_service:\n  \
         - type: play_message\n    prompts:\n{prompts}    barge_in: false\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_not_refreshed_gets_our_bye_when_the_engines_clock_reaches_its_expiry() {
    common::capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let flows = tempfile::tempdir().unwrap();
    std::fs::write(flows.path().join("long.yaml"), long_flow()).unwrap();
    let config = Config::from_str_in(&config_text(flows.path()), dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    let engine = Engine::start(Arc::new(config), clock.shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = boomerang::clock::monotonic_now();
    // SIPp waits up to 80 s of real time for the BYE; its own timeout is 40 s.
    let mut caller = common::sipp_caller("timer-no-refresh.xml", engine.sip.udp[0]);
    // The call is up once the engine has answered it (SIPp's ACK follows the 200, whose
    // sending armed the session timer): wait (up to 30 s) for that ACK rather than a fixed
    // 1.5 s, which a slow SIPp start on a loaded machine could outlast. Advancing the clock
    // before the timer is armed would move its deadline past the test's.
    let http = engine.http_addr;
    let ack = "boomerang_sip_requests_received_total{method=\"ACK\"}";
    assert!(
        common::wait_until(30, || async {
            common::metric(http, ack).await.unwrap_or(0.0) >= 1.0
        })
        .await,
        "the engine never got SIPp's ACK"
    );
    assert!(caller.try_wait().unwrap().is_none(), "SIPp ended early");
    // 59 s of the engine's time: the BYE is not due yet, whatever the real time.
    clock.advance(TimeDelta::seconds(59));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        caller.try_wait().unwrap().is_none(),
        "BYE before the session's refresh deadline"
    );
    // Past 60 s: the engine ends the session at once, seconds of real time after the start.
    clock.advance(TimeDelta::seconds(2));
    let done = tokio::time::timeout(Duration::from_secs(15), caller.wait()).await;
    assert!(
        done.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "no BYE once the engine's clock passed the session's expiry"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    engine.shutdown();
}
