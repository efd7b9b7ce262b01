//! Several nodes on one PostgreSQL database (issue #21), on loopback: three `boomerang serve`
//! processes (own ports, own node ids, agents registered with each), callbacks booked through
//! every node's API, a SIPp customer on the trunk that rings then is busy, every INVITE traced
//! so the dials of each callback can be counted. Each callback is dialled exactly once; a node
//! killed with SIGKILL under load loses nothing and its in-flight work is resolved by a
//! survivor within the lease; the database restarted under load: the nodes reconnect,
//! `/readyz` says 503 with the reason meanwhile, nothing acknowledged is lost.
//!
//! Needs PostgreSQL (`source .ci/pg-cluster.sh; pg_start`, or `./test.sh`); skipped otherwise.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use crate::common::cluster::{
    assert_dialled_once, assert_each_dialled_once_but_the_cut, book, book_through, customer,
    customer_playing, db, rule_for_queue, until_all_completed, until_dialling, until_taken_over,
};

pub(crate) const KEY: &str = "cluster-test-key";
const QUEUE: &str = "Sales_VQ_CB";
const LEASE_SECONDS: u32 = 3;
/// Long enough that Paris, two dials at a time, claims all six of its callbacks first even on a
/// loaded machine (at 4 s, London took the last one once).
const FALLBACK_DELAY_SECONDS: u32 = 10;
const PASSWORD: &str = "correct horse";

/// One engine process of the cluster.
pub(crate) struct EngineNode {
    child: Child,
    pub(crate) url: String,
    /// Its SIP UDP port: the one its INVITEs come from.
    sip_port: u16,
}

impl Drop for EngineNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts node `id` (in `region`) on `db` with its trunk at `trunk_port`, registers agents
/// alice and bob (phones nobody answers: they only need to be ready) with it, and returns it.
async fn start_node(dir: &Path, id: &str, region: &str, db: &str, trunk_port: u16) -> EngineNode {
    start_node_with(dir, id, region, db, trunk_port, true, |_| {}).await
}

/// [`start_node`] with its configuration adjusted by `tweak` (after the defaults above), and
/// no agent registered unless `agents` (a node without a ready agent never claims a callback).
pub(crate) async fn start_node_with(
    dir: &Path,
    id: &str,
    region: &str,
    db: &str,
    trunk_port: u16,
    agents: bool,
    tweak: impl FnOnce(&mut boomerang::config::ConfigSpec),
) -> EngineNode {
    let dir = dir.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut spec = common::demo_spec();
    common::demo_trunk(&mut spec).port = trunk_port;
    spec.store.data_dir = dir.join("data").display().to_string();
    spec.store.kind = boomerang::config::StoreKind::Postgres;
    spec.store.url = db.to_string();
    spec.cluster.node_id = id.to_string();
    spec.cluster.lease_seconds = LEASE_SECONDS;
    spec.cluster.region = region.to_string();
    spec.cluster.fallback_delay_seconds = FALLBACK_DELAY_SECONDS;
    let hash = boomerang::api::admin::auth::hash_password(PASSWORD).unwrap();
    spec.admin.users.push(common::administrator("root", &hash));
    spec.api.keys.push(common::api_key("t", KEY));
    spec.api.rate_limit_per_second = 100_000;
    let q = common::demo_queue(&mut spec, QUEUE);
    // One dial per callback: a busy line completes it, so any second INVITE is a double dial.
    q.max_dial_attempts = 1;
    tweak(&mut spec);
    let file = dir.join("boomerang.yaml");
    std::fs::write(&file, common::spec_text(&spec)).unwrap();
    let (child, url, sip) = common::serve(&file, id);
    if !agents {
        return EngineNode {
            child,
            url,
            sip_port: sip.port(),
        };
    }
    common::register_alice(sip, &format!("127.0.0.1:{}", common::free_port())).await;
    common::sipp_register(
        &common::repo().join("tests/sipp/agent-register-as.xml"),
        sip,
        &format!("127.0.0.1:{}", common::free_port()),
        &["-s", "1002", "-au", "1002", "-ap", "bob-1002"],
    )
    .await;
    EngineNode {
        child,
        url,
        sip_port: sip.port(),
    }
}

/// The SIP port each number's (first) INVITE came from: which node dialled it.
fn dialled_from(trace: &Path) -> HashMap<String, u16> {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    let mut out = HashMap::new();
    let mut user = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("INVITE sip:") {
            user = rest.split('@').next().map(str::to_string);
        } else if let (Some(u), Some(via)) = (&user, line.strip_prefix("Via: SIP/2.0/UDP ")) {
            let port = via
                .split(';')
                .next()
                .and_then(|hp| hp.rsplit(':').next())
                .and_then(|p| p.parse().ok());
            if let Some(port) = port {
                out.entry(u.clone()).or_insert(port);
            }
            user = None;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_dial_each_callback_once_and_survive_a_sigkill() {
    let Some(pg) = tokio::task::spawn_blocking(common::pg::PgServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let trace = dir.path().join("customer.trace");
    let _customer = customer(trunk, &trace);
    let mut nodes = Vec::new();
    for id in ["n1", "n2", "n3"] {
        nodes.push(start_node(dir.path(), id, "", &pg.url(), trunk).await);
    }
    // Every node has been up a full lease, so survivors may take over at once.
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS.into())).await;
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let (acked, tasks) = book_through(urls, KEY, QUEUE, 40, Duration::from_millis(100));

    // Kill n1 once it is dialling.
    let client = db(&pg.url()).await;
    until_dialling(&client, "n1").await;
    unsafe {
        libc::kill(nodes[0].child.id() as i32, libc::SIGKILL);
    }
    let killed = boomerang::clock::monotonic_now();
    let _ = nodes[0].child.wait();
    // Its in-flight work is resolved by a survivor within the lease (plus one heartbeat).
    let limit = Duration::from_secs(2 * u64::from(LEASE_SECONDS) + 2);
    until_taken_over(&client, "n1", killed, limit).await;
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 80,
        "only {} bookings acknowledged",
        acked.len()
    );
    let bodies = until_all_completed(&pg.url(), &acked, Duration::from_secs(90)).await;
    assert_each_dialled_once_but_the_cut(&trace, &acked, &bodies, "n1").await;
}

async fn readyz(url: &str) -> (u16, serde_json::Value) {
    match reqwest::Client::new()
        .get(format!("{url}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or_default())
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_reconnect_after_the_database_restarts_and_lose_nothing_acknowledged() {
    let Some(pg) = tokio::task::spawn_blocking(common::pg::PgServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let trace = dir.path().join("customer.trace");
    let _customer = customer(trunk, &trace);
    let mut nodes = Vec::new();
    for id in ["r1", "r2"] {
        nodes.push(start_node(dir.path(), id, "", &pg.url(), trunk).await);
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    assert_eq!(readyz(&urls[0]).await.0, 200);
    let (acked, tasks) = book_through(urls.clone(), KEY, QUEUE, 40, Duration::from_millis(150));
    // The database goes away while callbacks are being dialled (their outcome cannot be
    // written) and others wait, claimed, for a dial.
    let client = db(&pg.url()).await;
    for _ in 0..400 {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM callbacks WHERE state = 'ROUTING'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);

    // The database goes away: /readyz says so, with the reason.
    let pg = tokio::task::spawn_blocking(move || {
        assert!(pg.ctl("stop"));
        pg
    })
    .await
    .unwrap();
    let mut down = None;
    for _ in 0..60 {
        let (s, v) = readyz(&urls[1]).await;
        if s == 503 {
            down = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let down = down.expect("/readyz stayed 200 with the database down");
    assert_eq!(down["store"], false, "{down}");
    assert!(
        down["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{down}"
    );

    // Down for longer than a lease, as under load (a slow restart): every lease lapses, so
    // the nodes must sort out what they held when it comes back.
    let outage = std::env::var("BOOMERANG_TEST_OUTAGE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000 * u64::from(LEASE_SECONDS));
    tokio::time::sleep(Duration::from_millis(outage)).await;

    // Back: both nodes are ready again.
    let pg = tokio::task::spawn_blocking(move || {
        assert!(pg.ctl("start"));
        pg
    })
    .await
    .unwrap();
    for url in &urls {
        let mut ready = false;
        for _ in 0..80 {
            if readyz(url).await.0 == 200 {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(ready, "{url} not ready after the database came back");
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(!acked.is_empty());
    until_all_completed(&pg.url(), &acked, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_dialled_once(&trace, &acked);
}

/// Signs in as the administrator of [`start_node`]'s configuration; a bearer token.
pub(crate) async fn admin_token(url: &str) -> String {
    common::admin_login(url, "root", PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn region_affinity_orders_which_node_dials_a_queues_callbacks() {
    let Some(pg) = tokio::task::spawn_blocking(common::pg::PgServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let trace = dir.path().join("customer.trace");
    let _customer = customer(trunk, &trace);
    let mut paris = start_node(dir.path(), "paris1", "paris", &pg.url(), trunk).await;
    // Sales_VQ_CB: Paris first, London as a fallback, New York never.
    let token = admin_token(&paris.url).await;
    let rule = serde_json::json!({"name": "eu", "preferred": ["paris"], "fallback": ["london"], "ignored": ["nyc"]});
    let assignment = serde_json::json!({"affinityRule": "eu"});
    rule_for_queue(
        &paris.url,
        &token,
        "affinity",
        rule,
        "Sales_VQ_CB",
        assignment,
    )
    .await;
    let london = start_node(dir.path(), "london1", "london", &pg.url(), trunk).await;
    let nyc = start_node(dir.path(), "nyc1", "nyc", &pg.url(), trunk).await;

    // Every node has ready agents; callbacks booked through London and New York are dialled
    // by Paris.
    let mut first = Vec::new();
    for (i, url) in [&london.url, &nyc.url]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let phone = format!("+33670{i:06}");
        first.push((book(url, KEY, QUEUE, &phone).await.expect("booked"), phone));
    }
    until_all_completed(&pg.url(), &first, Duration::from_secs(60)).await;
    let from = dialled_from(&trace);
    for (id, phone) in &first {
        assert_eq!(
            from.get(phone),
            Some(&paris.sip_port),
            "{id} not dialled by Paris"
        );
    }

    // Paris gone: London dials them, but only once they have waited the fallback delay;
    // New York never does.
    unsafe {
        libc::kill(paris.child.id() as i32, libc::SIGKILL);
    }
    let _ = paris.child.wait();
    let booked_at = boomerang::clock::monotonic_now();
    let mut second = Vec::new();
    for (i, url) in [&london.url, &nyc.url]
        .into_iter()
        .cycle()
        .take(4)
        .enumerate()
    {
        let phone = format!("+33671{i:06}");
        second.push((book(url, KEY, QUEUE, &phone).await.expect("booked"), phone));
    }
    until_all_completed(&pg.url(), &second, Duration::from_secs(60)).await;
    assert!(
        booked_at.elapsed() >= Duration::from_secs(FALLBACK_DELAY_SECONDS.into()),
        "the fallback region did not wait for the preferred one"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from = dialled_from(&trace);
    for (id, phone) in &second {
        assert_eq!(
            from.get(phone),
            Some(&london.sip_port),
            "{id} not dialled by London"
        );
    }
    assert_dialled_once(&trace, &first);
    assert_dialled_once(&trace, &second);
}

/// A callback's row as the database has it: state, owner, body.
async fn row(client: &tokio_postgres::Client, id: &str) -> (String, Option<String>, String) {
    let r = client
        .query_one(
            "SELECT state, owner, body FROM callbacks WHERE id::text = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// Posts an API cancel of `id` to the node at `url`: the status and the JSON body.
async fn cancel(url: &str, id: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/engagement/v3/callbacks/cancel"))
        .header("x-api-key", KEY)
        .json(&serde_json::json!({"id": id}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Issue #21: an API cancel sent to one node of a callback another node is dialling (the
/// customer's phone ringing) is refused with 409 JSON and writes nothing, so the dialling node
/// keeps its claim; once that node's attempt ends (no answer, retry later, lease released),
/// the same cancel through the same node goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_through_another_node_is_refused_while_the_callback_is_dialled() {
    let Some(pg) = tokio::task::spawn_blocking(common::pg::PgServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trunk = common::free_port();
    let trace = dir.path().join("customer.trace");
    // The phone rings until the engine gives up (ring timeout), then 487.
    let _customer = customer_playing("customer-no-answer.xml", trunk, &trace);
    // One attempt rings 6 s; a failed one is retried only an hour later. A lease longer than
    // the ring, so that a node slowed by a loaded machine does not lose the callback mid-ring.
    let queue = |spec: &mut boomerang::config::ConfigSpec| {
        spec.cluster.lease_seconds = 12;
        let q = common::demo_queue(spec, "Sales_VQ_CB");
        q.max_dial_attempts = 2;
        q.ring_timeout_seconds = 6;
        q.retry_interval_seconds = 3600;
    };
    let dialler = start_node_with(dir.path(), "dialler", "", &pg.url(), trunk, true, queue).await;
    // No agent here: this node never claims, it only serves the API.
    let other = start_node_with(dir.path(), "other", "", &pg.url(), trunk, false, queue).await;
    let id = book(&other.url, KEY, QUEUE, "+33612345678")
        .await
        .expect("booked");

    let client = db(&pg.url()).await;
    let start = boomerang::clock::monotonic_now();
    let ringing = loop {
        let r = row(&client, &id).await;
        if r.0 == "ROUTING" && r.1.as_deref() == Some("dialler") {
            break r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the dialler never dialled the callback: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, body) = cancel(&other.url, &id).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("being dialled by another node"),
        "{body}"
    );
    assert_eq!(
        row(&client, &id).await,
        ringing,
        "the refused cancel changed nothing"
    );

    // The ring times out: the dialler puts it back in the queue, released, retried later.
    loop {
        let r = row(&client, &id).await;
        if r.0 == "QUEUED" && r.1.is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the attempt never ended: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = cancel(&other.url, &id).await;
    assert_eq!(status, 200, "{body}");
    let (state, owner, body) = row(&client, &id).await;
    assert_eq!((state.as_str(), owner), ("COMPLETED", None));
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body.to_string().contains("CANCELLED"), "{body}");
    drop(dialler);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_dialled_once(&trace, &[(id, "+33612345678".to_string())]);
}
