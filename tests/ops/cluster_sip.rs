//! Several nodes on the wire (issue #21), with the real binary: Kamailio's dispatcher in front
//! of three engine nodes spreading SIPp callers over them and failing over when one is killed;
//! and two nodes on one PostgreSQL, a caller on node A bridged to an agent registered with
//! node B (A asks B, the agent's arbiter, then dials the contact B gave).
//!
//! The Kamailio test is skipped (with a message) when `kamailio` is not installed; the
//! PostgreSQL one when `BOOMERANG_TEST_PG_URL` is unset (`./test.sh` installs both and sets it).

use crate::common;
use crate::common::cluster::{kamailio, start_kamailio};

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use boomerang::config::ConfigSpec;

const SECRET: &str = "cluster-sip-test-secret-01234";

struct EngineNode {
    child: Child,
    url: String,
    sip: SocketAddr,
    _dir: tempfile::TempDir,
    _flows: tempfile::TempDir,
}

impl Drop for EngineNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `boomerang serve` process on the demo configuration with route point 8009 queueing for
/// Sales_VQ, SIP on a free UDP port, and `edit` applied.
fn engine_node(edit: impl FnOnce(&mut ConfigSpec)) -> EngineNode {
    let dir = tempfile::tempdir().unwrap();
    let flows = common::flows_with_ringing_queue();
    let mut spec = common::demo_spec();
    common::route_8009_to_ringing_queue(&mut spec, flows.path());
    let sip = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    spec.listeners.sip_udp = vec![sip];
    spec.store.data_dir = dir.path().join("data").display().to_string();
    edit(&mut spec);
    std::fs::write(dir.path().join("boomerang.yaml"), common::spec_text(&spec)).unwrap();
    let (child, url) = start_logged(dir.path());
    EngineNode {
        child,
        url,
        sip,
        _dir: dir,
        _flows: flows,
    }
}

/// `boomerang serve` on `dir/boomerang.yaml`, its output in `dir/engine.log` (read for its
/// HTTP URL); (the process, that URL).
fn start_logged(dir: &Path) -> (Child, String) {
    let log = dir.join("engine.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(dir.join("boomerang.yaml"))
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|l| l.strip_prefix("boomerang: REST API on "))
        {
            return (child, url.trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the engine did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// Inbound calls to route point `rp` a node has ended, from its `/metrics`.
async fn calls(url: &str, rp: &str) -> u64 {
    let prefix = format!("boomerang_calls_total{{route_point=\"{rp}\"");
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `calls` SIPp callers (one second each, 10 per second) to the sales line (8000, answered
/// at once) through `target`; true when every one succeeded.
async fn place_calls(target: SocketAddr, calls: u32) -> bool {
    let out = tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(common::repo().join("tests/sipp/cluster-caller.xml"))
        .arg(target.to_string())
        .args(["-s", "8000", "-d", "1000", "-r", "10", "-l", "10"])
        .args(["-m", &calls.to_string(), "-i", "127.0.0.1", "-nostdin"])
        .args(["-timeout", "60s"])
        .args(["-p", &common::free_port().to_string()])
        .args(["-mp", &common::free_port().to_string()])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run sipp: {e}"));
    if !out.status.success() {
        eprintln!("{}", common::sipp_report(&out));
    }
    out.status.success()
}

/// Polls `f` every 200 ms for up to `secs` seconds until it holds.
async fn until(secs: u64, mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..secs * 5 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_spreads_callers_over_the_nodes_and_fails_over_when_one_is_killed() {
    let Some(kamailio) = kamailio() else {
        eprintln!(
            "kamailio is not installed: Kamailio front test skipped \
             (apt-get install kamailio; ./test.sh installs it)"
        );
        return;
    };
    let mut nodes: Vec<EngineNode> = (0..3).map(|_| engine_node(|_| {})).collect();
    let dir = tempfile::tempdir().unwrap();
    let sips: Vec<SocketAddr> = nodes.iter().map(|n| n.sip).collect();
    let (_kamailio, front) = start_kamailio(&kamailio, dir.path(), &sips);
    let log = || std::fs::read_to_string(dir.path().join("kamailio.log")).unwrap_or_default();
    // Kamailio is up once it answers (the first calls may race its start: retried).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        place_calls(front, 9).await,
        "calls through Kamailio failed:\n{}",
        log()
    );
    let mut counts = Vec::new();
    for n in &nodes {
        counts.push(calls(&n.url, "8000").await);
    }
    eprintln!("9 calls through Kamailio, per node: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 9, "{counts:?}");
    assert!(counts.iter().all(|&c| c >= 2), "not spread: {counts:?}");
    // One node dies: new calls all succeed, on the two others.
    let dead = nodes.remove(2);
    drop(dead);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        place_calls(front, 6).await,
        "calls after a node died failed:\n{}",
        log()
    );
    let survivors = [
        calls(&nodes[0].url, "8000").await,
        calls(&nodes[1].url, "8000").await,
    ];
    eprintln!("after the kill, survivors: {survivors:?} (before: {counts:?})");
    assert_eq!(
        survivors.iter().sum::<u64>(),
        counts[0] + counts[1] + 6,
        "{survivors:?}"
    );
    assert!(
        survivors[0] > counts[0] && survivors[1] > counts[1],
        "{survivors:?}"
    );
}

/// The test server's URL on a fresh schema of its own, or `None` (with a notice).
pub(crate) async fn fresh_pg_url() -> Option<String> {
    let Ok(base) = std::env::var("BOOMERANG_TEST_PG_URL") else {
        eprintln!("BOOMERANG_TEST_PG_URL is not set: PostgreSQL test skipped (./test.sh sets it)");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("the test server answers");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

fn cluster_node(url: &str, id: &str) -> impl FnOnce(&mut ConfigSpec) {
    let (url, id) = (url.to_string(), id.to_string());
    move |spec| {
        spec.store.kind = boomerang::config::StoreKind::Postgres;
        spec.store.url = url;
        spec.store.pool_size = 4;
        spec.cluster.node_id = id;
        spec.cluster.secret = SECRET.into();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_on_node_a_is_bridged_to_the_agent_registered_with_node_b() {
    let Some(url) = fresh_pg_url().await else {
        return;
    };
    let a = engine_node(cluster_node(&url, "node-a"));
    let b = engine_node(cluster_node(&url, "node-b"));
    // Alice's phone (a SIPp UAS) registers with B only.
    let phone_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", phone_port, 1);
    common::register_alice(b.sip, &format!("127.0.0.1:{phone_port}")).await;
    // A sees her Ready on B through the shared view.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let home = async || {
        client
            .query_opt(
                "SELECT body::jsonb->>'node', body::jsonb->>'state' FROM documents
                 WHERE kind = 'cluster_agent' AND id = 'alice'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
    };
    assert!(
        until(10, async || home().await
            == Some(("node-b".into(), "ready".into())))
        .await,
        "alice's presence: {:?}",
        home().await
    );
    let reg: Option<String> = client
        .query_opt(
            "SELECT body::jsonb->>'node' FROM documents
             WHERE kind = 'sip_registration' AND id = '1001'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(
        reg.as_deref(),
        Some("node-b"),
        "the registration names its home"
    );
    // A caller on A's route point: A has no ready agent, asks B, dials the phone and bridges.
    let mut caller = tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(common::repo().join("tests/sipp/cluster-caller-bridged.xml"))
        .arg(a.sip.to_string())
        .args(["-s", "8009", "-m", "1", "-i", "127.0.0.1", "-nostdin"])
        .args(["-timeout", "40s"])
        .args(["-p", &common::free_port().to_string()])
        .args(["-mp", &common::free_port().to_string()])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    common::sipp_succeeded(&mut phone, "alice's phone (registered with B)").await;
    let done = tokio::time::timeout(Duration::from_secs(30), caller.wait()).await;
    assert!(
        done.is_ok_and(|s| s.is_ok_and(|s| s.success())),
        "the caller on A was not bridged and hung up"
    );
    // After the talk B, her arbiter, has her Ready again (published to the view).
    assert!(
        until(10, async || home().await
            == Some(("node-b".into(), "ready".into())))
        .await,
        "alice after the call: {:?}",
        home().await
    );
    assert_eq!(calls(&a.url, "8009").await, 1);
    assert_eq!(calls(&b.url, "8009").await, 0);
}
