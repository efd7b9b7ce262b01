//! Resident memory per 100,000 waiting callbacks: an engine's callback service and router hold
//! them all in memory (records, deadlines, queue entries). Prints the RSS growth per 100,000
//! and, as the baseline from the same run, the bytes of the records' own JSON.
//! Under `cargo test` (no `--bench` argument) it runs with 1,000 callbacks as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use boomerang::callback::service::{CallbackService, CreateRequest, QueueEvent, api_callback};
use boomerang::clock::SystemClock;
use boomerang::config::Config;
use boomerang::push::LogNotifier;
use boomerang::routing::{Router, Waiting};
use boomerang::store::SqliteStore;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full { 100_000 } else { 1_000 };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Arc::new(
        Config::from_str_in(
            "queues:\n  - name: Sales_VQ_CB\n    callback_purge_time_minutes: 10080\n",
            dir.path(),
        )
        .expect("config"),
    );
    let store = Arc::new(SqliteStore::open(dir.path()).expect("store"));
    let router = Arc::new(Router::from_config(&config).expect("router"));
    let svc = Arc::new(CallbackService::new(
        config,
        SystemClock::shared(),
        store,
        Arc::new(LogNotifier),
    ));
    {
        let router = router.clone();
        svc.set_queue_sink(Arc::new(move |e| {
            if let QueueEvent::Enqueue {
                id,
                queue,
                priority,
                queue_time,
            } = e
            {
                let _ = router.enqueue(
                    &queue,
                    Waiting {
                        id,
                        priority,
                        enqueued_at: queue_time,
                    },
                    queue_time,
                );
            }
        }));
    }
    let before = rss_bytes();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for chunk in 0..(n / 1000) {
            let svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..1000 {
                    let mut cb =
                        api_callback("Sales_VQ_CB", &format!("+336{:08}", chunk * 1000 + i), None);
                    cb.user_data
                        .insert("order".into(), format!("{}", chunk * 1000 + i));
                    svc.create(CreateRequest {
                        callback: cb,
                        check_slot: false,
                        ewt_at_offer_seconds: None,
                        position_at_offer: None,
                    })
                    .await
                    .expect("created");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let after = rss_bytes();
    let waiting = router.waiting("Sales_VQ_CB").expect("queue");
    assert_eq!(waiting, n, "every callback waits in the router");
    let json: usize = svc
        .active()
        .iter()
        .map(|r| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0))
        .sum();
    let per_100k = (after.saturating_sub(before)) as f64 * 100_000.0 / n as f64 / 1e6;
    println!(
        "{n} waiting callbacks: RSS +{:.1} MB ({per_100k:.1} MB per 100,000); their JSON alone: {:.1} MB per 100,000",
        (after.saturating_sub(before)) as f64 / 1e6,
        json as f64 * 100_000.0 / n as f64 / 1e6
    );
}
