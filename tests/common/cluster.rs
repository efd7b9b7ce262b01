//! Several nodes on the wire (issue #21): Kamailio in front (the shipped
//! `deploy/kamailio/kamailio.cfg`), `boomerang serve` processes, the customer on the trunk
//! whose INVITEs are traced so the dials of each callback can be counted, and bookings through
//! each node's API.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

/// A Kamailio process group, killed on drop.
pub struct Kamailio(pub Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio forks its main process and workers, which outlive a kill of the process we
        // started and go on probing the dispatcher's ports (taken by later tests' SIPp, whose
        // scenarios an OPTIONS aborts): the whole process group goes.
        if let Ok(group) = i32::try_from(self.0.id()) {
            // SAFETY: killpg takes plain integers; the group is the one `start_kamailio` made.
            unsafe { libc::killpg(group, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `kamailio` binary (on the PATH, or where Debian puts it), when installed.
pub fn kamailio() -> Option<String> {
    ["kamailio", "/usr/sbin/kamailio"]
        .into_iter()
        .find(|k| {
            std::process::Command::new(k)
                .arg("-v")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

/// The shipped `deploy/kamailio/kamailio.cfg` on a free loopback port in `dir`, in front of
/// `nodes` (probed every second; a node silent for one second is skipped); its log is
/// `dir/kamailio.log`.
pub fn start_kamailio(bin: &str, dir: &Path, nodes: &[SocketAddr]) -> (Kamailio, SocketAddr) {
    let list: String = nodes.iter().map(|n| format!("1 sip:{n}\n")).collect();
    let list_path = dir.join("dispatcher.list");
    std::fs::write(&list_path, list).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
    let child = std::process::Command::new(bin)
        .process_group(0)
        .args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
        .arg(super::repo().join("deploy/kamailio/kamailio.cfg"))
        .arg("-A")
        .arg(format!("LISTEN=udp:{addr}"))
        .arg("-A")
        .arg(format!("DISPATCHER_LIST=\"{}\"", list_path.display()))
        .args(["-A", "PING_INTERVAL=1", "-A", "FR_TIMER=1000"])
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .arg("-Y")
        .arg(dir)
        .arg("-w")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap())
        .spawn()
        .unwrap();
    (Kamailio(child), addr)
}

/// The customer on the trunk at `port`: rings then busy, every message traced to `trace`.
pub fn customer(port: u16, trace: &Path) -> tokio::process::Child {
    customer_playing("customer-rings-then-busy.xml", port, trace)
}

/// The customer on the trunk at `port` playing `scenario` (of tests/sipp), traced to `trace`.
pub fn customer_playing(scenario: &str, port: u16, trace: &Path) -> tokio::process::Child {
    tokio::process::Command::new("sipp")
        .arg("-sf")
        .arg(super::repo().join("tests/sipp").join(scenario))
        .args(["-i", "127.0.0.1", "-nostdin", "-trace_msg", "-message_file"])
        .arg(trace)
        .args(["-p", &port.to_string()])
        .args(["-mp", &super::free_port().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (apt-get install -y sip-tester): {e}"))
}

/// The distinct dials (INVITE Call-IDs, so retransmissions count once) per called number.
pub fn dials(trace: &Path) -> HashMap<String, HashSet<String>> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    let mut user = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("INVITE sip:") {
            user = rest.split('@').next().map(str::to_string);
        } else if let Some(u) = &user {
            let lower = line.to_ascii_lowercase();
            if let Some(id) = lower.strip_prefix("call-id:") {
                out.entry(u.clone())
                    .or_default()
                    .insert(id.trim().to_string());
                user = None;
            }
        }
    }
    out
}

/// Asserts every acknowledged callback's number was dialled exactly once.
pub fn assert_dialled_once(trace: &Path, acked: &[(String, String)]) {
    let dials = dials(trace);
    for (id, phone) in acked {
        let n = dials.get(phone).map_or(0, HashSet::len);
        assert_eq!(n, 1, "callback {id} ({phone}) was dialled {n} times");
    }
}

/// After a node was killed: asserts at least one callback was "cut by an engine restart"
/// (resolved by a survivor), that no callback was dialled twice, and that every callback not
/// cut was dialled exactly once. A cut one may have died before its INVITE left (the restart
/// rule counts the attempt all the same): once or not at all. `bodies` by id, from
/// [`until_all_completed`]; how many were cut.
pub async fn assert_each_dialled_once_but_the_cut(
    trace: &Path,
    acked: &[(String, String)],
    bodies: &HashMap<String, serde_json::Value>,
    victim: &str,
) -> usize {
    let is_cut = |id: &String| bodies[id].to_string().contains("cut by an engine restart");
    let (cut, whole): (Vec<_>, Vec<_>) = acked.iter().cloned().partition(|(id, _)| is_cut(id));
    assert!(
        !cut.is_empty(),
        "no in-flight dial of {victim} was resolved by a survivor"
    );
    // Give the trace time to be flushed (every callback not cut was dialled before it
    // completed: up to 10 s until each shows in it, rather than a fixed 500 ms), then count.
    for _ in 0..100 {
        let seen = dials(trace);
        if whole.iter().all(|(_, phone)| seen.contains_key(phone)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_dialled_once(trace, &whole);
    let dials = dials(trace);
    for (id, phone) in &cut {
        let n = dials.get(phone).map_or(0, HashSet::len);
        assert!(n <= 1, "callback {id} ({phone}) was dialled {n} times");
    }
    cut.len()
}

/// Books a callback in `queue` for `phone` through the node at `url` with API key `key`; its
/// id when acknowledged.
pub async fn book(url: &str, key: &str, queue: &str, phone: &str) -> Option<String> {
    let body = serde_json::json!({"serviceName": queue, "phoneNumber": phone});
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/create"))
        .header("x-api-key", key)
        .json(&body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    v["data"]["id"].as_str().map(str::to_string)
}

/// The acknowledged (id, phone) pairs, filled as bookings are acknowledged.
pub type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// Books `per_node` callbacks in `queue` through each node (one booking task per node),
/// numbers `+33 6 <node> <seq>`; the acknowledged (id, phone) pairs.
pub fn book_through(
    urls: Vec<String>,
    key: &str,
    queue: &str,
    per_node: usize,
    pause: Duration,
) -> (Acked, Vec<tokio::task::JoinHandle<()>>) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (n, url) in urls.into_iter().enumerate() {
        let (acked, key, queue) = (acked.clone(), key.to_string(), queue.to_string());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_node {
                let phone = format!("+336{n}{i:07}");
                if let Some(id) = book(&url, &key, &queue, &phone).await {
                    acked.lock().await.push((id, phone));
                }
                tokio::time::sleep(pause).await;
            }
        }));
    }
    (acked, tasks)
}

/// Waits (up to `limit`) until every id in `ids` is COMPLETED in the database at `url`,
/// asserting none is missing; the rows' bodies by id.
pub async fn until_all_completed(
    url: &str,
    ids: &[(String, String)],
    limit: Duration,
) -> HashMap<String, serde_json::Value> {
    let start = boomerang::clock::monotonic_now();
    loop {
        if let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            let rows = client
                .query(
                    "SELECT id::text, state, body, coalesce(owner, '-') FROM callbacks",
                    &[],
                )
                .await
                .unwrap_or_default();
            let by_id: HashMap<String, (String, String)> = rows
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            let owners: HashMap<String, String> =
                rows.iter().map(|r| (r.get(0), r.get(3))).collect();
            let missing: Vec<&String> = ids
                .iter()
                .map(|(id, _)| id)
                .filter(|id| !by_id.contains_key(*id))
                .collect();
            assert!(
                missing.is_empty(),
                "acknowledged callbacks lost: {missing:?}"
            );
            let open_ids: Vec<String> = ids
                .iter()
                .filter(|(id, _)| by_id[id].0 != "COMPLETED")
                .map(|(id, _)| format!("{id} {} owner {}", by_id[id].0, owners[id]))
                .collect();
            let open = open_ids.len();
            if open == 0 {
                return by_id
                    .into_iter()
                    .map(|(id, (_, body))| (id, serde_json::from_str(&body).unwrap()))
                    .collect();
            }
            assert!(
                start.elapsed() < limit,
                "{open} callbacks still not completed after {limit:?}: {open_ids:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A direct client on the test database, to watch states and owners.
pub async fn db(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Waits (up to 10 s) until node `node` owns a callback in ROUTING (it is dialling).
pub async fn until_dialling(client: &tokio_postgres::Client, node: &str) {
    for _ in 0..200 {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM callbacks WHERE owner = $1 AND state = 'ROUTING'",
                &[&node],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{node} never dialled");
}

/// Waits until no callback is owned by `node` any more, asserting it happens within `limit`
/// of `since` (a survivor took its in-flight work over).
pub async fn until_taken_over(
    client: &tokio_postgres::Client,
    node: &str,
    since: std::time::Instant,
    limit: Duration,
) {
    loop {
        let n: i64 = client
            .query_one("SELECT count(*) FROM callbacks WHERE owner = $1", &[&node])
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(
            since.elapsed() < limit,
            "{node}'s callbacks not taken over {:?} after the kill",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates a `kind` rule (`affinity`, `number`, `capacity`) through the admin API at `url` and
/// assigns it to `queue` with `assignment` (the queue's rules body, e.g. `{"affinityRule":
/// "eu"}`), asserting both were accepted.
pub async fn rule_for_queue(
    url: &str,
    token: &str,
    kind: &str,
    rule: serde_json::Value,
    queue: &str,
    assignment: serde_json::Value,
) {
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{url}/admin/rules/{kind}"))
        .bearer_auth(token)
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    let r = http
        .put(format!("{url}/admin/rules/queues/{queue}"))
        .bearer_auth(token)
        .json(&assignment)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
}
