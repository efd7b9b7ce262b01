//! Scenario: an app books 10,000 callbacks over the REST API while the engine is killed with
//! SIGKILL mid-stream; after a restart every acknowledged callback is there, in order. And the
//! engine killed while a customer's phone rings (SIPp trunk) or while they talk with an agent
//! (SIPp phones) resolves those callbacks at restart by the README's restart rule.

use crate::common;

use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use boomerang::store::{SqliteStore, Store};
use tokio::sync::Mutex;

const KEY: &str = "crash-test-key";

fn start(dir: &Path) -> (Child, String) {
    common::start_engine_in(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_callback_survives_sigkill_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("boomerang.yaml"),
        format!(
            "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}\napi:\n  keys: [{{name: t, key: {KEY}}}]\n  rate_limit_per_second: 100000\nqueues:\n  - name: Sales_VQ_CB\n    callback_purge_time_minutes: 10080\n"
        ),
    )
    .unwrap();
    let (mut child, url) = start(dir.path());
    let client = reqwest::Client::new();
    // Each worker books callbacks one after another and keeps the ids acknowledged to it,
    // in the order they were acknowledged.
    let acked: Arc<Mutex<Vec<Vec<String>>>> = Arc::new(Mutex::new(vec![Vec::new(); 16]));
    let total = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..16usize {
        let (client, url, acked, total) =
            (client.clone(), url.clone(), acked.clone(), total.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..625usize {
                let body = serde_json::json!({
                    "serviceName": "Sales_VQ_CB",
                    "phoneNumber": format!("+336{:02}{:06}", w, i),
                    "userData": {"worker": w, "seq": i},
                });
                let resp = client
                    .post(format!("{url}/engagement/v3/callbacks/create"))
                    .header("x-api-key", KEY)
                    .json(&body)
                    .send()
                    .await;
                let Ok(resp) = resp else { return };
                let Ok(v) = resp.json::<serde_json::Value>().await else {
                    return;
                };
                let id = v["data"]["id"].as_str().unwrap().to_string();
                acked.lock().await[w].push(id);
                total.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Kill the engine once about half the callbacks are acknowledged, with requests in flight.
    while total.load(Ordering::SeqCst) < 5000 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    let acknowledged: usize = acked.iter().map(Vec::len).sum();
    assert!(
        (5000..10_000).contains(&acknowledged),
        "acknowledged {acknowledged}"
    );

    // Everything acknowledged is in the store, each worker's callbacks in acknowledgement order.
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    let stored: Vec<String> = store
        .active_callbacks()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    drop(store);
    let position: std::collections::HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for ids in &acked {
        let mut last = None;
        for id in ids {
            let p = *position
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged {id} is lost"));
            assert!(last.is_none_or(|l| l < p), "{id} is out of order");
            last = Some(p);
        }
    }

    // The restarted engine serves them.
    let (mut child, url) = start(dir.path());
    let first = &acked[0][0];
    let (_, v) = api(&url, "retrieve", serde_json::json!({"id": first})).await;
    assert_eq!(v["data"]["callbackState"], "QUEUED", "{v}");
    assert_eq!(v["data"]["userData"]["seq"], "0");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `boomerang serve` on the demo configuration (SIP trunk to `trunk_port`, API key
/// [`KEY`]) in `dir`; returns the process, the API's URL and the SIP UDP address.
fn start_sip(dir: &Path, trunk_port: u16) -> (Child, String, std::net::SocketAddr) {
    let file = dir.join("boomerang.yaml");
    if !file.exists() {
        let mut spec = common::demo_spec();
        common::demo_trunk(&mut spec).port = trunk_port;
        spec.store.data_dir = dir.join("data").display().to_string();
        spec.api.keys.push(common::api_key("t", KEY));
        std::fs::write(&file, common::spec_text(&spec)).unwrap();
    }
    common::serve(&file, "engine")
}

async fn api(url: &str, op: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    common::callbacks_api(url, KEY, op, body).await
}

/// Books a callback for `phone` on Sales_VQ_CB and waits (up to 20 s) until it is `state`.
async fn book_until(url: &str, phone: &str, state: &str) -> String {
    let (s, v) = api(
        url,
        "create",
        serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": phone}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_string();
    for _ in 0..400 {
        let (_, v) = api(url, "retrieve", serde_json::json!({ "id": id })).await;
        if v["data"]["callbackState"] == state {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("callback {id} never reached {state}");
}

fn sigkill(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_killed_while_the_customer_rings_is_queued_again_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let trunk_port = common::free_port();
    // The customer's phone rings and nobody answers (yet).
    let _trunk = common::sipp_server("customer-no-answer.xml", trunk_port, 1);
    let (mut child, url, sip) = start_sip(dir.path(), trunk_port);
    common::register_alice(sip, &format!("127.0.0.1:{}", common::free_port())).await;
    let id = book_until(&url, "+33612345670", "ROUTING").await;
    sigkill(&mut child);

    let (mut child, url, _) = start_sip(dir.path(), trunk_port);
    let (s, v) = api(&url, "retrieve", serde_json::json!({ "id": id })).await;
    assert_eq!(s, 200, "{v}");
    // Back in its queue, the cut dial counted as a failed attempt (1 of 3).
    assert_eq!(v["data"]["callbackState"], "QUEUED", "{v}");
    assert_eq!(v["data"]["dialAttempts"], 1, "{v}");
    // And it can be cancelled.
    let (s, v) = api(&url, "cancel", serde_json::json!({ "id": id })).await;
    assert_eq!(s, 200, "{v}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_killed_during_the_call_with_the_agent_completes_as_engine_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let trunk_port = common::free_port();
    let agent_port = common::free_port();
    let _trunk = common::sipp_server("customer-answers.xml", trunk_port, 1);
    let _phone = common::sipp_server("agent-answers.xml", agent_port, 1);
    let (mut child, url, sip) = start_sip(dir.path(), trunk_port);
    common::register_alice(sip, &format!("127.0.0.1:{agent_port}")).await;
    let id = book_until(&url, "+33612345671", "PROCESSING").await;
    sigkill(&mut child);

    let (mut child, url, _) = start_sip(dir.path(), trunk_port);
    let (s, v) = api(&url, "retrieve", serde_json::json!({ "id": id })).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["callbackState"], "COMPLETED", "{v}");
    assert_eq!(v["data"]["callbackReason"], "ENGINE_RESTARTED", "{v}");
    child.kill().unwrap();
    child.wait().unwrap();
}
