//! Agents across nodes (issue #21): one arbiter per agent. Three nodes' arbiters in this
//! process, each serving its internal endpoints on a loopback port, each the home of a third
//! of the agents; claims race from every node for the same agents — local claims on the home
//! (the router's own claim for a local call) and reservations over `/internal/reserve` from
//! the other two — and a counter per agent checks that no agent is ever held twice at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use boomerang::clock::{SharedClock, SystemClock};
use boomerang::cluster::Arbiter;
use boomerang::config::{EwtMethod, SelectionPolicy};
use boomerang::routing::agents::AgentInfo;
use boomerang::routing::router::QueueDef;
use boomerang::routing::{Dispatch, Router, StateKind};
use serde_json::{Value, json};
use uuid::Uuid;

const SECRET: &str = "cluster-test-secret-0123456789";
const NODES: usize = 3;
const AGENTS: usize = 12;
const CLAIMS: u64 = 10_000;

struct TestNode {
    dispatch: Arc<Dispatch>,
    arbiter: Arc<Arbiter>,
    url: String,
}

fn router() -> Router {
    Router::new(
        vec![QueueDef {
            name: "Q".into(),
            skill_expression: "Sales > 0".into(),
            selection: SelectionPolicy::LongestIdle,
            ewt_method: EwtMethod::QueueLength,
        }],
        (0..AGENTS)
            .map(|i| AgentInfo {
                id: format!("a{i}"),
                name: format!("Agent {i}"),
                sip_user: format!("10{i:02}"),
                skills: vec![("Sales".to_string(), 5u8)],
            })
            .collect(),
    )
    .unwrap()
}

/// Node `n`: the home of agents `i % NODES == n` (registered and Ready there, logged out
/// elsewhere), its internal endpoints served on a free loopback port.
async fn node(n: usize, secret: &str) -> TestNode {
    let clock: SharedClock = SystemClock::shared();
    let dispatch = Arc::new(Dispatch::new(Arc::new(router()), clock.clone()));
    for i in (0..AGENTS).filter(|i| i % NODES == n) {
        let agents = dispatch.router().agents();
        agents
            .get(agents.index_of(&format!("a{i}")).unwrap())
            .set_phone(true);
        dispatch
            .set_agent_state(&format!("a{i}"), StateKind::Ready, None)
            .unwrap();
    }
    let arbiter = Arc::new(Arbiter::new(
        &format!("node-{n}"),
        secret,
        dispatch.clone(),
        clock,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = arbiter.routes();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestNode {
        dispatch,
        arbiter,
        url,
    }
}

async fn post(http: &reqwest::Client, url: &str, secret: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(url)
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_agent_is_ever_held_twice_across_10000_contended_claims_over_3_nodes() {
    let mut nodes = Vec::new();
    for n in 0..NODES {
        nodes.push(node(n, SECRET).await);
    }
    let nodes = Arc::new(nodes);
    let holders: Arc<Vec<AtomicI32>> = Arc::new((0..AGENTS).map(|_| AtomicI32::new(0)).collect());
    let (attempts, local, remote, twice) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let http = reqwest::Client::new();
    let mut racers = Vec::new();
    for me in 0..NODES {
        for task in 0..6usize {
            let (nodes, holders, http) = (nodes.clone(), holders.clone(), http.clone());
            let (attempts, local, remote, twice) = (
                attempts.clone(),
                local.clone(),
                remote.clone(),
                twice.clone(),
            );
            racers.push(tokio::spawn(async move {
                let mut k = task;
                while attempts.fetch_add(1, Ordering::Relaxed) < CLAIMS {
                    k = (k * 7 + 3 + me) % AGENTS;
                    let agent = format!("a{k}");
                    let home = k % NODES;
                    let interaction = Uuid::new_v4();
                    // On the home: the claim a local caller's routing makes. Elsewhere: ask it.
                    let granted = if home == me {
                        nodes[me].dispatch.router().claim_agent(&agent).unwrap()
                    } else {
                        let (status, body) = post(
                            &http,
                            &format!("{}/internal/reserve", nodes[home].url),
                            SECRET,
                            json!({"agent": agent, "interaction": interaction,
                                   "node": format!("node-{me}"), "ring_seconds": 30}),
                        )
                        .await;
                        assert!(status == 200 || status == 409, "{status} {body}");
                        (status == 200).then_some(0)
                    };
                    let Some(idx) = granted else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    if holders[k].fetch_add(1, Ordering::SeqCst) != 0 {
                        twice.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                    holders[k].fetch_sub(1, Ordering::SeqCst);
                    if home == me {
                        local.fetch_add(1, Ordering::Relaxed);
                        nodes[me]
                            .dispatch
                            .router()
                            .release(idx, nodes[me].dispatch.clock().now())
                            .unwrap();
                    } else {
                        remote.fetch_add(1, Ordering::Relaxed);
                        let (status, body) = post(
                            &http,
                            &format!("{}/internal/release", nodes[home].url),
                            SECRET,
                            json!({"agent": agent, "interaction": interaction, "outcome": "unused"}),
                        )
                        .await;
                        assert_eq!(status, 200, "{body}");
                    }
                }
            }));
        }
    }
    for r in racers {
        r.await.unwrap();
    }
    let (local, remote) = (
        local.load(Ordering::Relaxed),
        remote.load(Ordering::Relaxed),
    );
    eprintln!("{CLAIMS} contended claims: {local} granted locally, {remote} remotely");
    assert_eq!(twice.load(Ordering::SeqCst), 0, "an agent was held twice");
    assert!(
        local > 100 && remote > 100,
        "{local} local, {remote} remote"
    );
    // Every agent is back Ready on its home, and no reservation is left.
    for (n, node) in nodes.iter().enumerate() {
        assert_eq!(node.arbiter.held(), 0);
        let counts = node.dispatch.router().agent_counts("Q").unwrap();
        assert_eq!(counts.ready, (0..AGENTS).filter(|i| i % NODES == n).count());
    }
}

#[tokio::test]
async fn internal_endpoints_refuse_without_the_secret_and_reservations_lapse() {
    let home = node(0, SECRET).await;
    let http = reqwest::Client::new();
    let reserve = format!("{}/internal/reserve", home.url);
    let body = json!({"agent": "a0", "interaction": Uuid::new_v4(), "node": "node-9",
                      "ring_seconds": 1});
    // No secret, a wrong one: 401 with a JSON reason, and nothing reserved.
    let r = http.post(&reserve).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let (status, _) = post(&http, &reserve, "not-the-secret", body.clone()).await;
    assert_eq!(status, 401);
    // A node without a secret refuses even an empty one.
    let closed = node(0, "").await;
    let (status, err) = post(
        &http,
        &format!("{}/internal/reserve", closed.url),
        "",
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("cluster.secret"));
    // Bad and oversized bodies are refused with 4xx.
    let (status, _) = post(&http, &reserve, SECRET, json!({"agent": 5})).await;
    assert_eq!(status, 400);
    let big = json!({"agent": "x".repeat(10_000), "interaction": Uuid::new_v4(), "node": "n"});
    let (status, _) = post(&http, &reserve, SECRET, big).await;
    assert_eq!(status, 413);
    // An agent homed elsewhere (no phone here) is refused; the home grants one of its own.
    let (status, _) = post(
        &http,
        &reserve,
        SECRET,
        json!({"agent": "a1",
        "interaction": Uuid::new_v4(), "node": "node-9"}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, granted) = post(&http, &reserve, SECRET, body.clone()).await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["granted"], true);
    let ready = || home.dispatch.router().agents().get(0).state();
    assert_eq!(ready(), StateKind::Reserved);
    // The same request again (a lost answer retried) gets the same grant, another is refused.
    let (status, _) = post(&http, &reserve, SECRET, body.clone()).await;
    assert_eq!(status, 200);
    let other = json!({"agent": "a0", "interaction": Uuid::new_v4(), "node": "node-8"});
    let (status, _) = post(&http, &reserve, SECRET, other).await;
    assert_eq!(status, 409);
    // Never answered: the reservation lapses after the ring time (1 s + 2 s margin); looked
    // for from 3.5 s on, for up to 15 s, as the lapse may run late on a loaded machine.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for _ in 0..115 {
        if ready() == StateKind::Ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(), StateKind::Ready);
    assert_eq!(home.arbiter.held(), 0);
    let (status, _) = post(
        &http,
        &format!("{}/internal/release", home.url),
        SECRET,
        json!({"agent": "a0", "interaction": body["interaction"]}),
    )
    .await;
    assert_eq!(status, 404);
}

/// Heartbeats `node` every 200 ms on `store` until the task is aborted.
fn beating(
    store: &boomerang::store::PostgresStore,
    node: &str,
    lease: Duration,
) -> tokio::task::JoinHandle<()> {
    let cluster = store.cluster(node, "", lease);
    tokio::spawn(async move {
        loop {
            cluster.heartbeat().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Reserves `agent` on `home` for `asker` (ringing `ring_seconds`), reporting it answered
/// when `connected`.
async fn reserve_for(
    home: &TestNode,
    agent: &str,
    asker: &str,
    ring_seconds: u32,
    connected: bool,
) {
    let http = reqwest::Client::new();
    let interaction = Uuid::new_v4();
    let body = json!({"agent": agent, "interaction": interaction, "node": asker,
                      "ring_seconds": ring_seconds});
    let (status, granted) = post(
        &http,
        &format!("{}/internal/reserve", home.url),
        SECRET,
        body,
    )
    .await;
    assert_eq!(status, 200, "{granted}");
    if connected {
        let (status, ok) = post(
            &http,
            &format!("{}/internal/connected", home.url),
            SECRET,
            json!({"agent": agent, "interaction": interaction}),
        )
        .await;
        assert_eq!(status, 200, "{ok}");
    }
}

/// Node 0 (home of a0, a3, a6, a9) on a fresh schema, beating and settled, watching its
/// askers; node-dead beat once, node-live keeps beating. The home, the store, the beats.
async fn watched_home(lease: Duration) -> Option<(TestNode, Vec<tokio::task::JoinHandle<()>>)> {
    let url = super::cluster_sip::fresh_pg_url().await?;
    let store = boomerang::store::PostgresStore::connect(&url, 4)
        .await
        .unwrap();
    store
        .cluster("node-dead", "", lease)
        .heartbeat()
        .await
        .unwrap();
    let beats = vec![
        beating(&store, "node-live", lease),
        beating(&store, "node-0", lease),
    ];
    let home = node(0, SECRET).await;
    tokio::spawn(
        home.arbiter
            .clone()
            .watch_askers(store.cluster("node-0", "", lease), lease),
    );
    Some((home, beats))
}

/// An agent's state on `home`.
fn state_of(home: &TestNode, agent: &str) -> StateKind {
    let agents = home.dispatch.router().agents();
    agents.get(agents.index_of(agent).unwrap()).state()
}

/// Issue #21: a remote agent whose asking node dies mid-call (after `/internal/connected`,
/// before `/internal/release`) is freed by its home once the asker's heartbeat is older than
/// the lease; the agent of an asker that keeps beating stays Busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_agent_is_freed_when_its_asking_node_stops_heartbeating() {
    let Some((home, beats)) = watched_home(Duration::from_secs(1)).await else {
        return;
    };
    for (agent, asker) in [("a0", "node-dead"), ("a3", "node-live")] {
        reserve_for(&home, agent, asker, 1, true).await;
    }
    assert_eq!(state_of(&home, "a0"), StateKind::Busy);
    assert_eq!(state_of(&home, "a3"), StateKind::Busy);
    // node-dead never beats again: once the home is settled (a lease after its first beat)
    // and past the ring-time lapse, which connected reservations ignore, its agent is Ready;
    // node-live's is still Busy. Looked for from 3.5 s on, for up to 15 s, as the home's
    // sweep may run late on a loaded machine.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for _ in 0..115 {
        if state_of(&home, "a0") == StateKind::Ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state_of(&home, "a0"),
        StateKind::Ready,
        "the dead asker's agent is freed"
    );
    assert_eq!(
        state_of(&home, "a3"),
        StateKind::Busy,
        "the live asker's agent stays Busy"
    );
    assert_eq!(home.arbiter.held(), 1);
    beats.into_iter().for_each(|b| b.abort());
}

/// Issue #21: an asking node that dies after `/internal/reserve` granted and before
/// `/internal/connected` (its call to the agent never answered) does not leave the agent
/// Reserved for the whole ring time it asked (60 s here): the home ends the grant once the
/// asker's heartbeat is older than the lease; a live asker's grant is kept until it lapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_agent_is_freed_when_its_asking_node_dies_before_the_answer() {
    let Some((home, beats)) = watched_home(Duration::from_secs(1)).await else {
        return;
    };
    reserve_for(&home, "a0", "node-dead", 60, false).await;
    reserve_for(&home, "a3", "node-live", 60, false).await;
    assert_eq!(state_of(&home, "a0"), StateKind::Reserved);
    assert_eq!(state_of(&home, "a3"), StateKind::Reserved);
    let start = boomerang::clock::monotonic_now();
    while state_of(&home, "a0") != StateKind::Ready {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dead asker's grant still holds a0 after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state_of(&home, "a3"),
        StateKind::Reserved,
        "the live asker's grant is kept"
    );
    assert_eq!(home.arbiter.held(), 1);
    beats.into_iter().for_each(|b| b.abort());
}
