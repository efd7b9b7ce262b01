//! Hardening of the HTTP front and the store (issue #15), through the real interfaces: store
//! files readable by the engine's user only, logins that cannot exhaust memory and lock an
//! account under guessing, connections that time out and are capped per address, and deep
//! callback pages that stay cheap.

use crate::common;

use std::path::Path;

use boomerang::api::admin::auth::hash_password;
use boomerang::clock::{ManualClock, SharedClock};
use boomerang::engine::Engine;
use serde_json::Value;

const KEY: &str = "test-key";
const PASSWORD: &str = "correct horse";

use crate::common::monday_9am_utc as t0;

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
    common::start_engine_from_file(dir, yaml, clock).await
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

/// A client whose connections leave from `127.0.0.{n}` (all of 127/8 is loopback on Linux),
/// so a test can play many client addresses.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap()
}

async fn login_as(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{url}/admin/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Item 1: password checks are bounded engine-wide. 60 logins at once from 60 addresses (each
/// within its per-address budget) against one check slot and a 10 ms wait: the excess gets 503
/// with `Retry-After` and a JSON body instead of 60 Argon2 hashes (19 MiB each) at once; the
/// engine still logs in the right user afterwards.
#[tokio::test]
async fn concurrent_logins_beyond_the_bound_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, clock) = manual();
    let (e, url) = engine(
        dir.path(),
        clock,
        "",
        "  login_concurrency: 1\n  login_wait_ms: 10\n",
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..60u8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let r = login_as(&client_from(10 + i), &url, &format!("guess{i}"), "nope").await;
            let retry = r.headers().get("retry-after").cloned();
            let (status, body) = json_of(r).await;
            (status, retry, body)
        }));
    }
    let (mut busy, mut wrong) = (0, 0);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            503 => {
                busy += 1;
                assert_eq!(body["code"], 50303, "{body}");
                assert!(retry.is_some(), "503 carries Retry-After");
            }
            401 => wrong += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        busy > 0,
        "one slot cannot check 60 passwords within 10 ms ({wrong} checked)"
    );
    assert!(wrong > 0, "the slot did check some");
    let r = login_as(&client_from(200), &url, "root", PASSWORD).await;
    assert_eq!(r.status().as_u16(), 200);
    e.shutdown();
}

/// Item 1: wrong passwords for one account lock it whatever address they come from; during the
/// lockout even the right password is refused (429, JSON, `Retry-After`); after the backoff (on
/// the engine's clock) it works again; the audit log shows the failures with their address.
#[tokio::test]
async fn wrong_passwords_lock_the_account_from_any_address() {
    let dir = tempfile::tempdir().unwrap();
    let (c, clock) = manual();
    let (e, url) = engine(
        dir.path(),
        clock,
        "",
        "  lockout_failures: 3\n  lockout_seconds: 30\n",
    )
    .await;
    for n in 2..5u8 {
        let r = login_as(&client_from(n), &url, "root", "wrong").await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = login_as(&client_from(5), &url, "root", PASSWORD).await;
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, body) = json_of(r).await;
    assert_eq!(status, 429, "locked: {body}");
    assert_eq!(body["code"], 42903, "{body}");
    assert_eq!(retry.as_deref(), Some("30"));
    c.advance(chrono::TimeDelta::seconds(29));
    let r = login_as(&client_from(6), &url, "root", PASSWORD).await;
    assert_eq!(
        r.status().as_u16(),
        429,
        "still locked one second before the end"
    );
    c.advance(chrono::TimeDelta::seconds(2));
    let r = login_as(&client_from(7), &url, "root", PASSWORD).await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["accessToken"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(format!("{url}/admin/audit?action=login."))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, audit) = json_of(r).await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["data"].as_array().unwrap();
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "login.failed")
        .collect();
    assert_eq!(failed.len(), 3, "{audit}");
    assert!(failed.iter().all(|e| e["user"] == "root"));
    let mut addresses: Vec<&str> = failed
        .iter()
        .map(|e| e["detail"]["address"].as_str().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "login.locked" && e["detail"]["seconds"] == 30),
        "{audit}"
    );
    e.shutdown();
}

/// Reads until the server closes (EOF or reset) or `limit` passes; what arrived, and whether
/// the connection was closed within the limit.
async fn read_until_closed(
    s: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = boomerang::clock::tokio_now() + limit;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect_from(n: u8, to: std::net::SocketAddr) -> tokio::net::TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(([127, 0, 0, n], 0).into()).unwrap();
    s.connect(to).await.unwrap()
}

/// Item 4: a partial request head, a silent connection and a short body do not hold a
/// connection: the first two are closed after `api.header_timeout_seconds`, the third answered
/// 408 (JSON) after `api.body_timeout_seconds`.
#[tokio::test]
async fn slow_clients_are_cut_off_after_the_timeouts() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (_c, clock) = manual();
    let (e, _url) = engine(
        dir.path(),
        clock,
        "  header_timeout_seconds: 1\n  body_timeout_seconds: 1\n",
        "",
    )
    .await;
    let addr = e.http_addr;
    let started = boomerang::clock::monotonic_now();
    let mut partial = tokio::net::TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /engagement/v3/callbacks HTTP/1.1\r\nHost: x\r\nx-api-key: ")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut short = tokio::net::TcpStream::connect(addr).await.unwrap();
    short
        .write_all(
            format!(
                "POST /engagement/v3/callbacks/create HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n\
                 content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"serviceName\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let limit = std::time::Duration::from_secs(5);
    let (_, closed) = read_until_closed(&mut partial, limit).await;
    assert!(closed, "a partial request head is cut off");
    let (_, closed) = read_until_closed(&mut silent, limit).await;
    assert!(closed, "a silent connection is cut off");
    let (answer, _) = read_until_closed(&mut short, limit).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a short body gets 408: {answer}"
    );
    assert!(answer.contains("body_timeout_seconds"), "{answer}");
    // A connection that stays idle after an answer is closed after the same timeout.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut idle, limit).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(closed, "an idle keep-alive connection is closed");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900)
            && waited < std::time::Duration::from_secs(5),
        "cut off after the 1 s timeouts, not before nor much later: {waited:?}"
    );
    e.shutdown();
}

/// Item 4: one address may not hold more than `api.max_connections_per_address` connections
/// (the next gets 503 and is closed); other addresses are still served, and a freed place is
/// usable again.
#[tokio::test]
async fn connections_per_address_are_capped() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (_c, clock) = manual();
    let (e, _url) = engine(dir.path(), clock, "  max_connections_per_address: 3\n", "").await;
    let addr = e.http_addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(1, addr).await);
    }
    let mut fourth = connect_from(1, addr).await;
    let (answer, closed) = read_until_closed(&mut fourth, std::time::Duration::from_secs(5)).await;
    assert!(closed, "the connection over the cap is closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":50304"), "{answer}");
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nconnection: close\r\n\r\n";
    let mut other = connect_from(2, addr).await;
    other.write_all(request).await.unwrap();
    let (answer, _) = read_until_closed(&mut other, std::time::Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "another address is served: {answer}"
    );
    drop(held.pop());
    // Up to 250 tries (5 s of pauses), not 50: the engine may see the close late when loaded.
    let mut served = false;
    for _ in 0..250 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut again = connect_from(1, addr).await;
        again.write_all(request).await.unwrap();
        let (answer, _) = read_until_closed(&mut again, std::time::Duration::from_secs(5)).await;
        if answer.starts_with("HTTP/1.1 401") {
            served = true;
            break;
        }
    }
    assert!(served, "a closed connection frees its place");
    e.shutdown();
}

/// Books `n` immediate callbacks straight through the service, the clock moving one second
/// every seven (so that pages have ties on the desired time); their ids in booking order.
async fn book_many(e: &Engine, c: &ManualClock, n: usize) -> Vec<String> {
    use boomerang::callback::service::{CreateRequest, api_callback};
    let mut ids = Vec::new();
    for i in 0..n {
        if i % 7 == 0 {
            c.advance(chrono::TimeDelta::seconds(1));
        }
        let rec = e
            .callbacks
            .create(CreateRequest {
                callback: api_callback("Sales_VQ_CB", &format!("+3361{i:07}"), None),
                check_slot: false,
                ewt_at_offer_seconds: None,
                position_at_offer: None,
            })
            .await
            .unwrap();
        ids.push(rec.id.to_string());
    }
    ids
}

async fn get_json(url: &str) -> (u16, Value) {
    json_of(
        reqwest::Client::new()
            .get(url)
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Item 5: the callback listing pages by cursor (`after` = the previous page's `nextCursor`):
/// following cursors lists every callback once, in the same order as `page=1,2,3`, ties on the
/// desired time included; `page` is bounded, and bad or mixed paging parameters get 400.
#[tokio::test]
async fn callback_listing_pages_by_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (c, clock) = manual();
    let (e, url) = engine(dir.path(), clock, "  rate_limit_per_second: 100000\n", "").await;
    let booked = book_many(&e, &c, 600).await;
    let list = format!("{url}/engagement/v3/callbacks?serviceName=Sales_VQ_CB");
    let ids = |v: &Value| -> Vec<String> {
        v["data"]["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut by_page = Vec::new();
    for page in 1..=3 {
        let (s, v) = get_json(&format!("{list}&page={page}")).await;
        assert_eq!(s, 200, "{v}");
        by_page.extend(ids(&v));
        assert_eq!(v["data"]["hasMore"], page < 3, "page {page}");
    }
    let mut by_cursor = Vec::new();
    let mut after: Option<String> = None;
    for round in 0.. {
        assert!(round < 10, "cursors must end");
        let u = match &after {
            Some(a) => format!("{list}&after={a}"),
            None => list.clone(),
        };
        let (s, v) = get_json(&u).await;
        assert_eq!(s, 200, "{v}");
        by_cursor.extend(ids(&v));
        match v["data"]["nextCursor"].as_str() {
            Some(next) => {
                assert_eq!(v["data"]["hasMore"], true);
                after = Some(next.to_string());
            }
            None => {
                assert_eq!(v["data"]["hasMore"], false);
                break;
            }
        }
    }
    assert_eq!(by_cursor.len(), 600);
    assert_eq!(by_cursor, by_page, "cursor pages follow the page order");
    let mut sorted = by_cursor.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 600, "each callback once");
    // Newest desired time first: the last booked comes first.
    assert_eq!(by_cursor.first(), booked.last());
    for bad in ["page=1001", "after=nonsense", "page=2&after=1_2"] {
        let (s, v) = get_json(&format!("{list}&{bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    e.shutdown();
}

/// Item 5: a bulk-cancel preview of a large range lists at most 1000 of each list, with the
/// totals, instead of every callback in it.
#[tokio::test]
async fn bulk_cancel_preview_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (c, clock) = manual();
    let (e, url) = engine(dir.path(), clock, "", "").await;
    book_many(&e, &c, 1200).await;
    let r = login_as(&reqwest::Client::new(), &url, "root", PASSWORD).await;
    let (_, v) = json_of(r).await;
    let token = v["data"]["accessToken"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{url}/admin/callbacks/bulk-cancel/preview"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "serviceName": "Sales_VQ_CB",
            "from": "2026-03-01T00:00:00Z",
            "to": "2026-03-03T00:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["toCancel"].as_array().unwrap().len(), 1000);
    assert_eq!(v["data"]["toCancelTotal"], 1200);
    assert_eq!(v["data"]["notCancellableTotal"], 0);
    assert_eq!(v["data"]["truncated"], true);
    e.shutdown();
}

/// Item 4: bodies larger than the per-connection buffer still arrive whole (the buffer bounds
/// what a connection holds, not what a request may carry): a 300 KB body, under a 1 MiB
/// `api.max_body_bytes`, is read and parsed (400 naming its unknown field), and one over the
/// limit gets 413.
#[tokio::test]
async fn large_bodies_pass_the_connection_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let (_c, clock) = manual();
    let (e, url) = engine(dir.path(), clock, "  max_body_bytes: 1048576\n", "").await;
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!("{url}/engagement/v3/callbacks/create"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let pad = "x".repeat(300_000);
    let (s, v) = json_of(
        post(format!(r#"{{"serviceName":"Sales_VQ_CB","pad":"{pad}"}}"#))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["status"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("pad"),
        "{v}"
    );
    let pad = "x".repeat(1_100_000);
    let (s, v) = json_of(post(format!(r#"{{"pad":"{pad}"}}"#)).await.unwrap()).await;
    assert_eq!(s, 413, "{v}");
    e.shutdown();
}
