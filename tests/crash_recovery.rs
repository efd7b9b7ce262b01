//! Scenario: an app books 10,000 callbacks over the REST API while the engine is killed with
//! SIGKILL mid-stream; after a restart every acknowledged callback is there, in order.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use boomerang::store::{SqliteStore, Store};
use tokio::sync::Mutex;

const KEY: &str = "crash-test-key";

fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["serve", "--config"])
        .arg(dir.join("boomerang.yaml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "engine said: {line}");
    (child, url)
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
    let v: serde_json::Value = client
        .post(format!("{url}/engagement/v3/callbacks/retrieve"))
        .header("x-api-key", KEY)
        .json(&serde_json::json!({"id": first}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"]["callbackState"], "QUEUED", "{v}");
    assert_eq!(v["data"]["userData"]["seq"], "0");
    child.kill().unwrap();
    child.wait().unwrap();
}
