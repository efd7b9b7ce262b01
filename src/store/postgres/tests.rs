//! PostgreSQL's own checks (the shared contract runs in `store::contract`): migrations, the
//! error when the server is away, reconnection, and the cluster primitives — exactly-once
//! claims under contention and a survivor resolving a dead node's work.
//!
//! They need a server: `./test.sh` starts a throwaway one and sets `BOOMERANG_TEST_PG_URL`;
//! without it each test says it is skipped and passes.

use std::collections::HashSet;
use std::time::Duration;

use chrono::TimeDelta;
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::*;
use crate::callback::{CallbackState, CompletionReason};
use crate::store::contract::{rec, t0};

/// The test server's URL, or `None` (with a notice) when the tests run without one.
fn test_url() -> Option<tokio_postgres::Config> {
    match std::env::var("BOOMERANG_TEST_PG_URL") {
        Ok(url) => Some(
            url.parse()
                .expect("BOOMERANG_TEST_PG_URL is a PostgreSQL URL"),
        ),
        Err(_) => {
            eprintln!(
                "BOOMERANG_TEST_PG_URL is not set: PostgreSQL test skipped (./test.sh sets it)"
            );
            None
        }
    }
}

/// A fresh empty schema on the test server, and the configuration that uses it: each test
/// (and each store sharing one in a test) sees only its own tables.
pub(crate) async fn fresh_schema() -> Option<tokio_postgres::Config> {
    let base = test_url()?;
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let (client, conn) = base.connect(NoTls).await.expect("the test server answers");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let mut cfg = base;
    cfg.options(format!("-c search_path={schema}"));
    // Named after the schema, so a test can find its own connections among the others.
    cfg.application_name(&schema);
    Some(cfg)
}

/// A store on a fresh schema, for the contract suite.
pub(crate) async fn fresh_store() -> Option<PostgresStore> {
    let cfg = fresh_schema().await?;
    Some(PostgresStore::connect_with(cfg, 4).await.unwrap())
}

#[tokio::test]
async fn migrations_are_recorded_once_and_a_newer_schema_is_refused() {
    let Some(cfg) = fresh_schema().await else {
        return;
    };
    let first = PostgresStore::connect_with(cfg.clone(), 2).await.unwrap();
    // A second node starting on the same database applies nothing again.
    let _second = PostgresStore::connect_with(cfg.clone(), 2).await.unwrap();
    let client = first.client().await.unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=schema::latest()).collect::<Vec<_>>());
    client
        .execute("INSERT INTO schema_version (version) VALUES (999)", &[])
        .await
        .unwrap();
    let err = PostgresStore::connect_with(cfg, 2)
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error_not_a_hang() {
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://boomerang@127.0.0.1:{port}/boomerang");
    let outcome = tokio::time::timeout(Duration::from_secs(20), PostgresStore::connect(&url, 2))
        .await
        .expect("connect gives up within the pool's timeout");
    let err = outcome.err().expect("nothing listens there");
    assert!(err.to_string().contains("cannot reach PostgreSQL"), "{err}");
}

#[tokio::test]
async fn the_store_reconnects_after_its_connections_are_cut() {
    let Some(cfg) = fresh_schema().await else {
        return;
    };
    let store = PostgresStore::connect_with(cfg.clone(), 2).await.unwrap();
    let before = rec("+33100000001", t0());
    store.save_callbacks(vec![before.clone()]).await.unwrap();
    // What a server restart does to a client: every backend of the store is terminated.
    let (admin, conn) = cfg.connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    let name = cfg.get_application_name().unwrap_or_default().to_string();
    assert!(name.starts_with("t_"));
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND application_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert!(!cut.is_empty(), "the store's connections were found");
    // The first statements may meet a dead connection; within a few tries the pool has
    // opened new ones, and what was stored before is there.
    let after = rec("+33100000002", t0());
    reconnects(&store, before, after, 20, "the store reconnected").await;
}

/// `n` QUEUED callbacks due at t0, saved in batches.
async fn queued(store: &PostgresStore, n: usize) -> Vec<Uuid> {
    let recs: Vec<_> = (0..n).map(|i| rec(&format!("+3315{i:08}"), t0())).collect();
    assert!(recs.iter().all(|r| r.state == CallbackState::Queued));
    let ids = recs.iter().map(|r| r.id).collect();
    for chunk in recs.chunks(1000) {
        store.save_callbacks(chunk.to_vec()).await.unwrap();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_claims_give_every_callback_to_exactly_one_node() {
    let Some(cfg) = fresh_schema().await else {
        return;
    };
    const N: usize = 10_000;
    let first = PostgresStore::connect_with(cfg.clone(), 4).await.unwrap();
    let ids = queued(&first, N).await;
    // Three nodes, each with its own pool and four claimers taking one callback per claim.
    let mut tasks = Vec::new();
    for node in 0..3 {
        let store = PostgresStore::connect_with(cfg.clone(), 4).await.unwrap();
        let cluster = store.cluster(&format!("node-{node}"), "eu", Duration::from_secs(300));
        for _ in 0..4 {
            let cluster = cluster.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let claimed = cluster
                        .claim_due(None, t0() + TimeDelta::seconds(1), 1)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return got;
                    }
                    got.extend(
                        claimed
                            .into_iter()
                            .map(|r| (cluster.node_id().to_string(), r.id)),
                    );
                }
            }));
        }
    }
    let mut claims = Vec::new();
    for t in tasks {
        claims.extend(t.await.unwrap());
    }
    assert_eq!(claims.len(), N, "every callback claimed once, none twice");
    let distinct: HashSet<Uuid> = claims.iter().map(|(_, id)| *id).collect();
    assert_eq!(distinct, ids.into_iter().collect::<HashSet<_>>());
    let nodes: HashSet<&str> = claims.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(nodes.len(), 3, "the claims were contended by every node");
    // The database agrees: each row names the node that was given it.
    let client = first.client().await.unwrap();
    for node in ["node-0", "node-1", "node-2"] {
        let n: i64 = client
            .query_one("SELECT count(*) FROM callbacks WHERE owner = $1", &[&node])
            .await
            .unwrap()
            .get(0);
        let given = claims.iter().filter(|(n, _)| n == node).count();
        assert_eq!(n as usize, given, "{node}");
    }
}

#[tokio::test]
async fn a_dead_nodes_in_flight_callbacks_are_resolved_by_a_survivor_by_the_restart_rule() {
    let Some(cfg) = fresh_schema().await else {
        return;
    };
    let lease = Duration::from_millis(1500);
    let a_store = PostgresStore::connect_with(cfg.clone(), 2).await.unwrap();
    let b_store = PostgresStore::connect_with(cfg, 2).await.unwrap();
    let (a, b) = (
        a_store.cluster("node-a", "eu", lease),
        b_store.cluster("node-b", "eu", lease),
    );
    let ids = queued(&a_store, 3).await;
    a.heartbeat().await.unwrap();
    b.heartbeat().await.unwrap();
    let now = t0() + TimeDelta::seconds(1);
    let mut mine = a.claim_due(None, now, 2).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(
        b.claim_due(None, now, 5).await.unwrap().len() == 1,
        "B gets only the third"
    );
    // A dials the first and bridges the second, then dies.
    for r in mine.iter_mut() {
        r.transition(CallbackState::Routing, now, "engine", "dial")
            .unwrap();
    }
    mine[1]
        .transition(CallbackState::Processing, now, "engine", "bridged")
        .unwrap();
    assert_eq!(a.save_owned(&mine, false).await.unwrap().len(), 2);

    // While A beats, its work is not taken, even past the lease.
    for _ in 0..4 {
        tokio::time::sleep(lease / 3).await;
        assert_eq!(a.heartbeat().await.unwrap(), 2, "A renews its two leases");
        b.heartbeat().await.unwrap();
        assert!(b.take_over_lapsed(10).await.unwrap().is_empty());
    }
    // A stops beating (kill -9); B goes on. After A's lease, B takes both over, once.
    for _ in 0..4 {
        tokio::time::sleep(lease / 3).await;
        b.heartbeat().await.unwrap();
    }
    let mut taken = b.take_over_lapsed(10).await.unwrap();
    assert_eq!(
        taken.iter().map(|r| r.id).collect::<HashSet<_>>(),
        mine.iter().map(|r| r.id).collect::<HashSet<_>>()
    );
    assert!(
        b.take_over_lapsed(10).await.unwrap().is_empty(),
        "given once"
    );
    let q: crate::config::QueueSpec = serde_json::from_value(serde_json::json!({
        "name": "Sales_VQ_CB", "max_dial_attempts": 3, "retry_interval_seconds": 60
    }))
    .unwrap();
    let later = now + TimeDelta::seconds(30);
    for r in taken.iter_mut() {
        crate::callback::restart::resolve_in_flight(r, &q, later).unwrap();
    }
    assert_eq!(b.save_owned(&taken, true).await.unwrap().len(), 2);

    // A comes back as a zombie: its writes and renewals miss what it lost.
    let stale = mine.clone();
    assert!(
        a.save_owned(&stale, true).await.unwrap().is_empty(),
        "fenced"
    );
    assert_eq!(a.heartbeat().await.unwrap(), 0);

    let dialled = b_store.callback(mine[0].id).await.unwrap().unwrap();
    assert_eq!(
        dialled.state,
        CallbackState::Queued,
        "ROUTING goes back to QUEUED"
    );
    assert_eq!(dialled.attempts(), 1, "with the cut dial counted");
    let bridged = b_store.callback(mine[1].id).await.unwrap().unwrap();
    assert_eq!(
        bridged.state,
        CallbackState::Completed(CompletionReason::EngineRestarted)
    );
    // The re-queued one is due again after the retry interval, for any node.
    assert!(a.claim_due(None, later, 5).await.unwrap().is_empty());
    let again = a
        .claim_due(None, later + TimeDelta::seconds(61), 5)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![mine[0].id]
    );
    assert!(ids.contains(&mine[0].id));
    let nodes = b.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
}

/// A private PostgreSQL server in a temporary directory (initdb + pg_ctl from
/// `BOOMERANG_TEST_PG_BIN`, run through `BOOMERANG_TEST_PG_AS` when root), stopped on drop;
/// for tests that restart the server, which the shared one must not be.
struct PrivateServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    run_as: Vec<String>,
    port: u16,
}

impl PrivateServer {
    fn start() -> Option<PrivateServer> {
        let Ok(bin) = std::env::var("BOOMERANG_TEST_PG_BIN") else {
            eprintln!(
                "BOOMERANG_TEST_PG_BIN is not set: PostgreSQL test skipped (./test.sh sets it)"
            );
            return None;
        };
        let run_as: Vec<String> = std::env::var("BOOMERANG_TEST_PG_AS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        if !run_as.is_empty() {
            let ok = std::process::Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the server's directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivateServer {
            dir,
            bin: bin.into(),
            run_as,
            port,
        };
        let data = server.dir.path().join("data");
        assert!(server.run(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "boomerang",
                "--auth=trust",
                "--no-sync",
            ]
        ));
        assert!(server.pg_ctl("start"), "the private server starts");
        Some(server)
    }

    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool);
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = std::process::Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => std::process::Command::new(&exe),
        };
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn pg_ctl(&self, action: &str) -> bool {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-m",
                "fast",
                "-o",
                &opts,
                action,
            ],
        )
    }

    fn url(&self) -> String {
        format!("postgres://boomerang@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"],
        );
    }
}

#[tokio::test]
async fn the_store_reconnects_after_the_database_restarts_and_fails_clearly_meanwhile() {
    let Some(server) = tokio::task::spawn_blocking(PrivateServer::start)
        .await
        .unwrap()
    else {
        return;
    };
    let store = PostgresStore::connect(&server.url(), 4).await.unwrap();
    let before = rec("+33100000001", t0());
    store.save_callbacks(vec![before.clone()]).await.unwrap();
    // Down: a write fails with a database error, nothing claims it was stored.
    let server = pg_ctl(server, "stop").await;
    let down = rec("+33100000002", t0());
    let err = store.save_callbacks(vec![down.clone()]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotStored(_) | StoreError::Database(_)),
        "{err}"
    );
    // Back: the pool opens new connections, the first write after it succeeds within a few
    // tries, and what was acknowledged before is there; the failed write is not.
    let server = pg_ctl(server, "start").await;
    let after = rec("+33100000003", t0());
    reconnects(
        &store,
        before,
        after,
        30,
        "the store reconnected after the restart",
    )
    .await;
    assert_eq!(store.callback(down.id).await.unwrap(), None);
    drop(server);
}

/// node-a joined on `store` (lease `lease_seconds`) on a manual clock at t0 + 1 s, and a
/// callback service of one queue (Sales_VQ_CB) writing through it as a cluster node does.
async fn service_on_node_a(
    store: &PostgresStore,
    lease_seconds: u32,
) -> (
    std::sync::Arc<crate::engine::node::Node>,
    crate::callback::service::CallbackService,
    crate::clock::ManualClock,
) {
    use crate::config::{ClusterSettings, Config};
    use std::sync::Arc;

    let config = Config::from_str_in(
        "queues:\n  - name: Sales_VQ_CB\n",
        std::path::Path::new("/"),
    )
    .unwrap();
    let clock = crate::clock::ManualClock::new(t0() + TimeDelta::seconds(1));
    let settings = ClusterSettings {
        node_id: "node-a".into(),
        lease_seconds,
        ..ClusterSettings::default()
    };
    let node = crate::engine::node::Node::join(store, &settings, clock.shared())
        .await
        .unwrap();
    let api = crate::callback::service::CallbackService::new(
        Arc::new(config),
        clock.shared(),
        Arc::new(store.clone()),
        Arc::new(crate::push::MemoryNotifier::new()),
    );
    api.set_leases(node.clone());
    (node, api, clock)
}

/// Issue #21: an API cancel on one node of a callback it does not hold never overwrites a
/// claim another node just made (the row is being dialled there: refused, nothing written);
/// a callback nobody holds is cancelled as before.
#[tokio::test]
async fn an_api_cancel_never_overwrites_a_callback_another_node_claimed() {
    use crate::clock::Clock;

    let Some(store) = fresh_store().await else {
        return;
    };
    let (_, api, clock) = service_on_node_a(&store, 15).await;
    // node-b claims one callback (its dialler is about to dial it); the other is nobody's.
    let claimed = rec("+33611111111", t0());
    store.save_callbacks(vec![claimed.clone()]).await.unwrap();
    let node_b = store.cluster("node-b", "", Duration::from_secs(300));
    let got = node_b.claim_due(None, clock.now(), 1).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, claimed.id);
    let free = rec("+33622222222", t0());
    store.save_callbacks(vec![free.clone()]).await.unwrap();

    let refused = api.cancel(claimed.id, "api", false).await;
    let err = refused.expect_err("a callback another node holds is not cancelled under it");
    assert!(
        err.to_string().contains("being dialled by another node"),
        "{err}"
    );
    let stored = store.callback(claimed.id).await.unwrap().unwrap();
    assert!(!stored.state.is_completed(), "{:?}", stored.state);
    // node-b still owns it and writes it fenced, as if nothing happened.
    assert!(
        node_b
            .save_owned_with(&stored, &[], &[], false)
            .await
            .unwrap()
    );

    let done = api.cancel(free.id, "api", false).await.unwrap();
    assert!(done.state.is_completed());
    let stored = store.callback(free.id).await.unwrap().unwrap();
    assert!(stored.state.is_completed(), "{:?}", stored.state);
}

/// Issue #21: a callback the router hands to the dialler while its node is fenced (no
/// heartbeat for half a lease) is not dialled, and the node lets it go (it no longer renews
/// its lease, so it lapses and any node claims it again) instead of keeping it in hand
/// forever: the router has already taken it out of its queue, nothing would ever dial it.
#[tokio::test]
async fn a_callback_refused_while_fenced_is_let_go_not_kept_forever() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let (node, api, clock) = service_on_node_a(&store, 30).await;
    let cluster = store.cluster("node-a", "", Duration::from_secs(30));
    let booked = rec("+33611111111", t0());
    store.save_callbacks(vec![booked.clone()]).await.unwrap();
    let claimed = cluster.claim_due(None, t0(), 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    api.adopt(claimed);
    assert_eq!(api.held_ids(), vec![booked.id]);

    // 16 s without a heartbeat: fenced. The router's pick is refused, nothing is written…
    clock.advance(TimeDelta::seconds(16));
    assert!(node.fenced());
    let err = api.begin_attempt(booked.id, "alice").await.unwrap_err();
    assert!(err.to_string().contains("fenced"), "{err}");
    let stored = store.callback(booked.id).await.unwrap().unwrap();
    assert_eq!(stored.state, CallbackState::Queued);
    // …and the node no longer holds it: its next heartbeat does not renew the lease.
    assert!(api.held_ids().is_empty(), "{:?}", api.held_ids());
    assert_eq!(cluster.heartbeat_holding(&api.held_ids()).await.unwrap(), 0);
}

/// Checks that saving `after` succeeds within `tries` attempts 100 ms apart (while the pool
/// replaces the connections it lost), and that `before` and `after` are then both there.
async fn reconnects(
    store: &PostgresStore,
    before: CallbackRecord,
    after: CallbackRecord,
    tries: u32,
    what: &str,
) {
    let mut saved = false;
    for _ in 0..tries {
        if store.save_callbacks(vec![after.clone()]).await.is_ok() {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saved, "{what}");
    assert_eq!(store.callback(before.id).await.unwrap(), Some(before));
    assert_eq!(store.callback(after.id).await.unwrap(), Some(after));
}

/// Runs `pg_ctl action` on the private `server` (off the async threads), which must succeed.
async fn pg_ctl(server: PrivateServer, action: &'static str) -> PrivateServer {
    tokio::task::spawn_blocking(move || {
        assert!(server.pg_ctl(action), "pg_ctl {action}");
        server
    })
    .await
    .unwrap()
}
