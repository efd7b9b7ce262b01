//! Scenario: a callback is purged (a push event is raised) while the app's webhook does not
//! answer; the engine is killed with SIGKILL before it could deliver; after a restart the
//! event is delivered, with the event id it had before the kill (the receiver can drop a
//! repeat). Real binary, real time (the shortest purge time, one minute).

use crate::common;

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use boomerang::push::OutboxState;
use boomerang::store::{SqliteStore, Store};

const KEY: &str = "push-kill-key";

fn start(dir: &Path) -> (Child, String) {
    common::start_engine_in(dir)
}

async fn outbox(dir: &Path, state: OutboxState) -> Vec<boomerang::push::OutboxEntry> {
    let store = SqliteStore::open(&dir.join("data")).unwrap();
    store.outbox_list(Some(state), 0).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_event_survives_sigkill_before_delivery_and_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver's port is held but not served yet: connections hang until the timeout.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", held.local_addr().unwrap());
    std::fs::write(
        dir.path().join("boomerang.yaml"),
        format!(
            "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
api:
  keys: [{{name: t, key: {KEY}}}]
queues:
  - {{name: Sales_VQ_CB, callback_purge_time_minutes: 1}}
push:
  webhook_secret: kill-secret
  max_attempts: 100
  initial_backoff_seconds: 1
  max_backoff_seconds: 2
  timeout_seconds: 1
"
        ),
    )
    .unwrap();
    let (mut child, url) = start(dir.path());
    let client = reqwest::Client::new();
    let v: serde_json::Value = client
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(
            &serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33612345678",
            "pushTargets": [{"channel": "WEBHOOK", "target": hook_url}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["data"]["id"].as_str().unwrap().to_string();
    // The purge comes a minute later; the event is stored with it.
    let mut purged = false;
    for _ in 0..150 {
        let v: serde_json::Value = client
            .post(format!("{url}/engagement/v3/callbacks/retrieve"))
            .header("x-api-key", KEY)
            .json(&serde_json::json!({ "id": id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"]["callbackState"] == "COMPLETED" {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(purged, "the callback was never purged");
    // Let an attempt or two time out, then kill the engine before any delivery.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    let pending = outbox(dir.path(), OutboxState::Pending).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    let event_id = pending[0].id.to_string();
    assert_eq!(pending[0].event.callback_id.to_string(), id);
    assert!(pending[0].attempts >= 1, "it was tried before the kill");

    // The receiver comes up; the engine restarts and delivers what the outbox kept.
    held.set_nonblocking(true).unwrap();
    let hook =
        common::push::Webhook::start_on(tokio::net::TcpListener::from_std(held).unwrap(), vec![]);
    let (mut child, _url) = start(dir.path());
    let seen = hook.wait_for(1).await;
    // The engine records the delivery once the 200 is in: wait for that before stopping it.
    for _ in 0..100 {
        if !outbox(dir.path(), OutboxState::Delivered).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let delivered: Vec<_> = seen
        .iter()
        .filter(|r| r.answered == 200 && !r.raw.is_empty())
        .collect();
    assert!(!delivered.is_empty(), "{seen:?}");
    for r in &delivered {
        assert_eq!(r.event_id, event_id, "the id it had before the kill");
        assert_eq!(r.body["event"], "CALLBACK_PURGED");
        assert_eq!(r.body["callbackId"], id.as_str());
        assert_eq!(
            r.signature,
            boomerang::push::webhook::signature(b"kill-secret", &r.raw)
        );
    }
    let done = outbox(dir.path(), OutboxState::Delivered).await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id.to_string(), event_id);
    assert!(outbox(dir.path(), OutboxState::Pending).await.is_empty());
}
