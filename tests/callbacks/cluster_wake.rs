//! Two engine processes on one PostgreSQL (issue #21): a booking wakes the node that can serve
//! it at once through `NOTIFY boomerang_callbacks` (no poll needed: the poll is set to a minute
//! here), and a callback whose only ready agent is homed on a node that may not dial it (its
//! region is ignored by the queue's affinity rule) is dialled by another node — its deputy —
//! and the answered customer is bridged to that agent through its home (reserve, connected,
//! release), the agent's phone ringing on the deputy's INVITE.
//!
//! Needs PostgreSQL (`source .ci/pg-cluster.sh; pg_start`, or `./test.sh`); skipped otherwise.
//! The latency comparison (wake-ups against the old 250 ms poll, same run) is the ignored test
//! `claim_latency_with_wakeups_against_polling` (`benches/cluster-wake.sh` runs it).

use crate::common;
use crate::common::cluster::rule_for_queue;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boomerang::callback::model::{CallbackRecord, CallbackState, CompletionReason};
use boomerang::config::ConfigSpec;
use tokio::sync::Mutex;

const KEY: &str = "cluster-wake-key";
const PASSWORD: &str = "correct horse";
const SECRET: &str = "cluster-wake-test-secret-0123456";

/// One `boomerang serve` process.
struct EngineNode {
    child: Child,
    url: String,
    sip: SocketAddr,
}

impl Drop for EngineNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts node `id` on `db` with its trunk at `trunk_port`, the demo configuration and `edit`.
fn start_node(
    dir: &Path,
    id: &str,
    db: &str,
    trunk_port: u16,
    edit: impl FnOnce(&mut ConfigSpec),
) -> EngineNode {
    let dir = dir.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut spec = common::demo_spec();
    common::demo_trunk(&mut spec).port = trunk_port;
    spec.store.data_dir = dir.join("data").display().to_string();
    spec.store.kind = boomerang::config::StoreKind::Postgres;
    spec.store.url = db.to_string();
    spec.store.pool_size = 4;
    spec.cluster.node_id = id.to_string();
    let hash = boomerang::api::admin::auth::hash_password(PASSWORD).unwrap();
    spec.admin.users.push(common::administrator("root", &hash));
    spec.api.keys.push(common::api_key("t", KEY));
    edit(&mut spec);
    let file = dir.join("boomerang.yaml");
    std::fs::write(&file, common::spec_text(&spec)).unwrap();
    let (child, url, sip) = common::serve(&file, id);
    EngineNode { child, url, sip }
}

/// The test server's URL on a fresh schema of its own, or `None` (with a notice).
async fn fresh_pg_url() -> Option<String> {
    let Ok(base) = std::env::var("BOOMERANG_TEST_PG_URL") else {
        eprintln!("BOOMERANG_TEST_PG_URL is not set: PostgreSQL test skipped (./test.sh sets it)");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let client = db(&base).await;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

async fn db(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Books a callback for `phone` in Sales_VQ_CB through the node at `url`; its id.
async fn book(url: &str, phone: &str) -> String {
    let body = serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": phone});
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["data"]["id"].as_str().unwrap().to_string()
}

/// The callback `id` as stored, once COMPLETED (waits up to `secs`).
async fn completed(client: &tokio_postgres::Client, id: &str, secs: u64) -> CallbackRecord {
    for _ in 0..secs * 5 {
        let row = client
            .query_opt(
                "SELECT state, body FROM callbacks WHERE id::text = $1",
                &[&id],
            )
            .await
            .unwrap();
        if let Some(r) = row
            && r.get::<_, String>(0) == "COMPLETED"
        {
            return serde_json::from_str(&r.get::<_, String>(1)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("callback {id} not completed within {secs} s");
}

/// One INVITE the customer's trunk received: when, and from which port.
#[derive(Clone, Copy)]
struct Dial {
    at: Instant,
    from: u16,
}

/// The customer's trunk: answers every INVITE "486 Busy Here" and keeps, per called number,
/// the distinct dials (by Call-ID, so retransmissions count once).
type Dials = Arc<Mutex<HashMap<String, HashMap<String, Dial>>>>;

async fn busy_trunk(port: u16) -> Dials {
    let sock = tokio::net::UdpSocket::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let dials: Dials = Default::default();
    let seen = dials.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let at = boomerang::clock::monotonic_now();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let Some(rest) = text.strip_prefix("INVITE sip:") else {
                continue;
            };
            let number = rest.split(['@', ' ', ';']).next().unwrap_or("").to_string();
            let header = |name: &str| -> Vec<&str> {
                text.lines()
                    .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
                    .collect()
            };
            let call_id = header("call-id").first().map(|l| l[8..].trim().to_string());
            let mut reply = String::from("SIP/2.0 486 Busy Here\r\n");
            for l in header("via") {
                reply.push_str(&format!("{l}\r\n"));
            }
            for l in header("from")
                .into_iter()
                .chain(header("call-id"))
                .chain(header("cseq"))
            {
                reply.push_str(&format!("{l}\r\n"));
            }
            for l in header("to") {
                reply.push_str(&format!("{l};tag=busy\r\n"));
            }
            reply.push_str("Content-Length: 0\r\n\r\n");
            let _ = sock.send_to(reply.as_bytes(), from).await;
            if let Some(call_id) = call_id {
                seen.lock()
                    .await
                    .entry(number)
                    .or_default()
                    .entry(call_id)
                    .or_insert(Dial {
                        at,
                        from: from.port(),
                    });
            }
        }
    });
    dials
}

/// Waits up to `secs` for the first dial of `number`.
async fn dialled(dials: &Dials, number: &str, secs: u64) -> Option<Dial> {
    for _ in 0..secs * 200 {
        if let Some(d) = dials
            .lock()
            .await
            .get(number)
            .and_then(|m| m.values().min_by_key(|d| d.at).copied())
        {
            return Some(d);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Node A (no agent) and node B (alice's phone registered, Ready) on a fresh schema, the
/// trunk answering busy; `n` callbacks booked through A one after the other, each once the
/// previous one completed. Asserts each is dialled once, by B, within `within` seconds of its
/// booking; returns the booking→INVITE latencies.
async fn booked_on_a_dialled_by_b(
    url: &str,
    n: usize,
    wakeups: bool,
    poll_ms: u32,
    within: u64,
) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let dials = busy_trunk(trunk).await;
    let settings = move |spec: &mut ConfigSpec| {
        spec.cluster.callback_wakeups = wakeups;
        spec.cluster.claim_poll_milliseconds = poll_ms;
        // One dial per callback: busy completes it, so a second INVITE is a double dial.
        common::demo_queue(spec, "Sales_VQ_CB").max_dial_attempts = 1;
    };
    let a = start_node(dir.path(), "node-a", url, trunk, settings);
    let b = start_node(dir.path(), "node-b", url, trunk, settings);
    common::register_alice(b.sip, &format!("127.0.0.1:{}", common::free_port())).await;
    // B has looked at its new room (alice Ready) before the first booking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = db(url).await;
    let mut latencies = Vec::new();
    for i in 0..n {
        let phone = format!("+3367{i:07}");
        let booked = boomerang::clock::monotonic_now();
        let id = book(&a.url, &phone).await;
        let d = dialled(&dials, &phone, within).await.unwrap_or_else(|| {
            panic!("callback {id} booked on A was not dialled within {within} s")
        });
        assert_eq!(d.from, b.sip.port(), "{id} not dialled by B");
        latencies.push(d.at.duration_since(booked));
        let r = completed(&client, &id, 30).await;
        assert_eq!(
            r.state,
            CallbackState::Completed(CompletionReason::RedialLimitReached)
        );
        assert_eq!(dials.lock().await[&phone].len(), 1, "{id} dialled twice");
    }
    drop(a);
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_booked_on_one_node_wakes_the_node_with_the_ready_agent_at_once() {
    let Some(url) = fresh_pg_url().await else {
        return;
    };
    // The safety-net poll is a minute: only the NOTIFY can get these dialled in 10 s.
    let l = booked_on_a_dialled_by_b(&url, 3, true, 60_000, 10).await;
    eprintln!("booking on A -> INVITE from B: {l:?}");
}

/// Booking→INVITE latency with wake-ups (poll 1 s) against the old 250 ms poll without them,
/// in the same run; prints both and their ratio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: benches/cluster-wake.sh"]
async fn claim_latency_with_wakeups_against_polling() {
    let Some(url) = fresh_pg_url().await else {
        return;
    };
    let n = 31;
    let polled = booked_on_a_dialled_by_b(&url, n, false, 250, 10).await;
    let Some(url) = fresh_pg_url().await else {
        return;
    };
    let woken = booked_on_a_dialled_by_b(&url, n, true, 1000, 10).await;
    // The first booking of each run warms the nodes' pools and statements up: left out.
    let stats = |mut l: Vec<Duration>| {
        l.remove(0);
        l.sort();
        let mean = l.iter().sum::<Duration>() / l.len() as u32;
        (l[l.len() / 2], mean, l[l.len() - 1])
    };
    let (pm, pa, px) = stats(polled);
    let (wm, wa, wx) = stats(woken);
    println!(
        "booking->INVITE over {} callbacks after a warm-up one (median / mean / max):",
        n - 1
    );
    println!("  poll 250 ms, no wake-ups: {pm:?} / {pa:?} / {px:?}");
    println!("  NOTIFY wake-ups, poll 1 s: {wm:?} / {wa:?} / {wx:?}");
    println!(
        "  ratio (poll / wake-ups): median {:.1}x, mean {:.1}x",
        pm.as_secs_f64() / wm.as_secs_f64(),
        pa.as_secs_f64() / wa.as_secs_f64()
    );
}

/// Signs in as the administrator; a bearer token.
async fn admin_token(url: &str) -> String {
    common::admin_login(url, "root", PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_whose_agents_home_may_not_dial_is_dialled_by_another_node_and_bridged_to_her() {
    let Some(url) = fresh_pg_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let mut customer = common::sipp_server("customer-rings-then-answers.xml", trunk, 1);
    let node = |region: &'static str| {
        move |spec: &mut ConfigSpec| {
            spec.cluster.region = region.into();
            spec.cluster.secret = SECRET.into();
        }
    };
    // Paris dials Sales_VQ_CB's callbacks; New York never does.
    let a = start_node(dir.path(), "node-a", &url, trunk, node("paris"));
    let token = admin_token(&a.url).await;
    let rule = serde_json::json!({"name": "eu", "preferred": ["paris"], "ignored": ["nyc"]});
    let assignment = serde_json::json!({"affinityRule": "eu"});
    rule_for_queue(&a.url, &token, "affinity", rule, "Sales_VQ_CB", assignment).await;
    let b = start_node(dir.path(), "node-b", &url, trunk, node("nyc"));
    // Alice's phone (a SIPp UAS that answers) registers with B only.
    let phone_port = common::free_port();
    let mut phone = common::sipp_server("agent-answers.xml", phone_port, 1);
    common::register_alice(b.sip, &format!("127.0.0.1:{phone_port}")).await;
    let client = db(&url).await;
    let ready_on_b = async || {
        client
            .query_opt(
                "SELECT 1 FROM documents WHERE kind = 'cluster_agent' AND id = 'alice'
                 AND body::jsonb->>'node' = 'node-b' AND body::jsonb->>'state' = 'ready'",
                &[],
            )
            .await
            .unwrap()
            .is_some()
    };
    let mut waited = 0;
    while !ready_on_b().await {
        waited += 1;
        assert!(waited < 50, "alice never Ready on B in the shared view");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Booked on A: B may not dial it, A has no agent of its own; A dials the customer, who
    // presses 1, and is bridged to alice's phone registered with B.
    let id = book(&a.url, "+33612345678").await;
    let r = completed(&client, &id, 60).await;
    assert_eq!(
        r.state,
        CallbackState::Completed(CompletionReason::Agent),
        "{:?}",
        r.history
    );
    assert_eq!(r.metrics.connected_agent.as_deref(), Some("alice"));
    assert_eq!(r.attempts(), 1, "the customer was dialled once");
    common::sipp_succeeded(&mut phone, "alice's phone (registered with B)").await;
    common::sipp_succeeded(&mut customer, "the customer").await;
    drop(b);
}
