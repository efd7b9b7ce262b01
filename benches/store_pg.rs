//! PostgreSQL against SQLite in the same run (issue #21): durable callback creations per second
//! with many concurrent creators, and the statements (database round trips) one callback's
//! lifecycle costs — created, claimed (PostgreSQL: the cluster claim under a lease), ROUTING,
//! PROCESSING, COMPLETED. Run by `benches/store_pg.sh`, which starts a throwaway PostgreSQL
//! with fsync on (as durable as SQLite's `synchronous=FULL`) and sets BOOMERANG_TEST_PG_URL.
//! Usage: store_pg [CALLBACKS] [CONCURRENT_CREATORS]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use boomerang::callback::{CallbackRecord, CallbackState, CompletionReason, NewCallback, Origin};
use boomerang::config::CallDirection;
use boomerang::store::{PostgresStore, SqliteStore, Store};
use chrono::{DateTime, Utc};

fn record(i: u64, now: DateTime<Utc>) -> CallbackRecord {
    CallbackRecord::create(
        NewCallback {
            queue: "Sales_VQ_CB".into(),
            phone: format!("+3361{i:07}"),
            desired_time: None,
            origin: Origin::Api,
            direction: CallDirection::BusinessToCustomer,
            priority: 0,
            queue_time: None,
            user_data: BTreeMap::from([("order".to_string(), i.to_string())]),
            created_by: "bench".into(),
        },
        now,
    )
    .expect("bench data is within limits")
}

/// Creations per second: `n` callbacks saved one per call by `concurrent` creators.
async fn creates_per_second(store: Arc<dyn Store>, n: u64, concurrent: u64) -> f64 {
    let now = boomerang::clock::SystemClock::shared().now();
    let start = boomerang::clock::monotonic_now();
    let mut tasks = Vec::new();
    for c in 0..concurrent {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < n {
                store
                    .save_callbacks(vec![record(i, now)])
                    .await
                    .expect("saved");
                i += concurrent;
            }
        }));
    }
    for t in tasks {
        t.await.expect("creator");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The lifecycle's state changes after creation, in order.
fn advance(r: &mut CallbackRecord, step: usize, now: DateTime<Utc>) {
    let to = match step {
        0 => CallbackState::Routing,
        1 => CallbackState::Processing,
        _ => CallbackState::Completed(CompletionReason::Agent),
    };
    r.transition(to, now, "engine", "bench").expect("lifecycle");
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(20_000);
    let concurrent = args.get(1).copied().unwrap_or(64);
    let Ok(url) = std::env::var("BOOMERANG_TEST_PG_URL") else {
        eprintln!("store_pg: BOOMERANG_TEST_PG_URL is not set; run benches/store_pg.sh");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("sqlite"));
        let pg = PostgresStore::connect(&url, 16).await.expect("postgres");
        let pg_dyn: Arc<dyn Store> = Arc::new(pg.clone());
        // Warm both (connections, caches) before measuring.
        creates_per_second(sqlite.clone(), 500, concurrent).await;
        creates_per_second(pg_dyn.clone(), 500, concurrent).await;
        let s = creates_per_second(sqlite.clone(), n, concurrent).await;
        let p = creates_per_second(pg_dyn.clone(), n, concurrent).await;
        println!(
            "durable creates/s, {concurrent} concurrent creators, {n} callbacks: \
             SQLite {s:.0}/s, PostgreSQL {p:.0}/s, PostgreSQL/SQLite {:.2}",
            p / s
        );
        let one_s = creates_per_second(sqlite.clone(), n / 10, 1).await;
        let one_p = creates_per_second(pg_dyn.clone(), n / 10, 1).await;
        println!(
            "durable creates/s, one creator awaiting each: SQLite {one_s:.0}/s, \
             PostgreSQL {one_p:.0}/s, PostgreSQL/SQLite {:.2}",
            one_p / one_s
        );

        // Statements per lifecycle. SQLite: one upsert per save (BEGIN/COMMIT shared by the
        // group commit's batch). PostgreSQL: counted round trips, the claim included.
        let lifecycles = 200u64;
        let now = boomerang::clock::SystemClock::shared().now();
        let cluster = pg.cluster("bench", "eu", Duration::from_secs(60));
        let before = pg.statements();
        for i in 0..lifecycles {
            pg.save_callbacks(vec![record(50_000_000 + i, now)])
                .await
                .expect("created");
        }
        let mut claimed = Vec::new();
        while claimed.len() < lifecycles as usize {
            let got = cluster.claim_due(None, now, 1).await.expect("claimed");
            assert!(!got.is_empty(), "every created callback is claimable");
            claimed.extend(got);
        }
        for mut r in claimed {
            for step in 0..3 {
                advance(&mut r, step, now);
                // As the engine writes a claimed callback (engine::node, Leases::save_owned).
                let written = cluster
                    .save_owned_with(&r, &[], &[], step == 2)
                    .await
                    .expect("saved");
                assert!(written);
            }
        }
        let pg_per = (pg.statements() - before) as f64 / lifecycles as f64;
        let start = boomerang::clock::monotonic_now();
        for i in 0..lifecycles {
            let mut r = record(60_000_000 + i, now);
            sqlite
                .save_callbacks(vec![r.clone()])
                .await
                .expect("created");
            for step in 0..3 {
                advance(&mut r, step, now);
                sqlite.save_callbacks(vec![r.clone()]).await.expect("saved");
            }
        }
        let sqlite_secs = start.elapsed().as_secs_f64();
        println!(
            "statements per callback lifecycle (create, claim, ROUTING, PROCESSING, COMPLETED): \
             PostgreSQL {pg_per:.1} round trips (claim under a lease, fenced writes); \
             SQLite 4 upserts, no claim (one node); one lifecycle after another: \
             SQLite {:.2} ms",
            sqlite_secs * 1000.0 / lifecycles as f64
        );
    });
}
