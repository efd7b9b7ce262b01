//! Hardening of the HTTP front and the store (issue #15), through the real interfaces: store
//! files readable by the engine's user only, logins that cannot exhaust memory and lock an
//! account under guessing, connections that time out and are capped per address, and deep
//! callback pages that stay cheap.

use std::path::Path;
use std::sync::Arc;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::config::Config;
use boomerang::engine::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// An engine with an administrator `root`, one queue, and `extra` YAML appended (sections not
/// otherwise written here: `admin` lockout settings go through `admin_extra`).
async fn engine(
    dir: &Path,
    clock: SharedClock,
    api_extra: &str,
    admin_extra: &str,
) -> (Engine, String) {
    let hash = hash_password(PASSWORD).unwrap();
    let yaml = format!(
        "listeners: {{http: '127.0.0.1:0', sip_udp: [], sip_tcp: []}}
store: {{data_dir: '{data}'}}
api:
  keys: [{{name: t, key: {KEY}}}]
{api_extra}
admin:
  users:
    - {{name: root, password_hash: '{hash}', roles: [Administrator]}}
{admin_extra}
queues:
  - {{name: Sales_VQ_CB}}
",
        data = dir.join("data").display()
    );
    let file = dir.join("boomerang.yaml");
    std::fs::write(&file, yaml).unwrap();
    let cfg = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::start(Arc::new(cfg), clock).await.unwrap();
    let url = format!("http://{}", e.http_addr);
    (e, url)
}

fn manual() -> (ManualClock, SharedClock) {
    let c = ManualClock::new(t0());
    let s = c.shared();
    (c, s)
}

#[allow(dead_code)]
async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Item 9: the database and its WAL and shared-memory files are created 0600, and an existing
/// world-readable database is narrowed at start.
#[tokio::test]
async fn store_files_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_c, clock) = manual();
    let (e, url) = engine(dir.path(), clock, "", "").await;
    // A write, so that the WAL and shared-memory files exist.
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", KEY)
        .json(&serde_json::json!({"serviceName": "Sales_VQ_CB", "phoneNumber": "+33123456789"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let data = dir.path().join("data");
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    for f in ["boomerang.db", "boomerang.db-wal", "boomerang.db-shm"] {
        assert_eq!(mode(f), 0o600, "{f} must be 0600, is {:o}", mode(f));
    }
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o077,
        0,
        "the data directory is closed to group and others"
    );
    e.shutdown();
    // A database left world-readable by an older version is narrowed when the engine starts.
    for f in ["boomerang.db", "boomerang.db-wal", "boomerang.db-shm"] {
        let p = data.join(f);
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let (_c, clock) = manual();
    let (e, _url) = engine(dir.path(), clock, "", "").await;
    assert_eq!(mode("boomerang.db"), 0o600);
    e.shutdown();
}
