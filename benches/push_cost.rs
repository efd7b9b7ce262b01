//! What push costs the dialer (issue #17): the same 10,000 callback state changes (5,000 dial
//! attempts that are not answered: QUEUED → ROUTING → QUEUED, each raising ATTEMPT_FAILED)
//! with push off (no receiver configured) and with push on (the queue's webhook, a local
//! receiver, the delivery worker running), alternated in the same run. With push on, every
//! change also writes its outbox entry in the same SQLite transaction.
//!
//! `cargo bench --bench push_cost` (add `-- N` for N attempts per round).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use boomerang::call::{CallLeg, Dial, DialResult, Dialer};
use boomerang::callback::service::{CallbackService, api_callback};
use boomerang::clock::{SystemClock, monotonic_now};
use boomerang::config::Config;
use boomerang::push::{Channels, MemoryNotifier, PushMetrics, Worker};
use boomerang::store::{SqliteStore, Store};

/// A customer who never answers.
struct NoAnswer;

#[async_trait]
impl Dialer for NoAnswer {
    async fn dial(&self, _: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        Err(DialResult::NoAnswer)
    }
}

/// A local webhook receiver answering 200; counts what it got.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let got = Arc::new(AtomicUsize::new(0));
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// One round: `n` unanswered attempts; (seconds for the changes, events delivered).
async fn round(n: usize, hook: Option<(&str, &Arc<AtomicUsize>)>) -> (f64, usize) {
    let queue = match hook {
        Some((url, _)) => format!(
            "queues:\n  - name: Q\n    push_webhook_url: '{url}'\n    push_webhook_secret: s\n"
        ),
        None => "queues:\n  - name: Q\n".to_string(),
    };
    let config = Arc::new(Config::from_str_in(&queue, Path::new("/")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let clock = SystemClock::shared();
    let svc = Arc::new(CallbackService::new(
        config.clone(),
        clock.clone(),
        store.clone(),
        Arc::new(MemoryNotifier::new()),
    ));
    let before = hook
        .map(|(_, got)| got.load(Ordering::Relaxed))
        .unwrap_or(0);
    if hook.is_some() {
        let channels = Channels::from_config(&config, clock.clone());
        svc.push_hub().set_channels(channels.clone());
        let worker = Arc::new(Worker {
            store: store.clone(),
            clock: clock.clone(),
            channels,
            hub: svc.push_hub().clone(),
            settings: config.spec.push.clone(),
            metrics: PushMetrics::default(),
        });
        tokio::spawn(worker.run());
    }
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let rec = svc
            .create(api_callback("Q", &format!("+3361{i:07}"), None).into())
            .await
            .unwrap();
        ids.push(rec.id);
    }
    let start = monotonic_now();
    for id in &ids {
        svc.attempt(*id, "alice", &NoAnswer, 1).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let delivered = match hook {
        Some((_, got)) => {
            // Delivery is asynchronous; wait (bounded) for the receiver to have them all.
            let until = monotonic_now() + Duration::from_secs(120);
            while got.load(Ordering::Relaxed) - before < n && monotonic_now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            got.load(Ordering::Relaxed) - before
        }
        None => 0,
    };
    (secs, delivered)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this once without it,
    // as a quick check: then 50 attempts a round.
    let bench = std::env::args().any(|a| a == "--bench");
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(if bench { 5_000 } else { 50 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (url, got) = receiver().await;
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for r in 0..3 {
            let (s, _) = round(n, None).await;
            off.push(s);
            let (t, delivered) = round(n, Some((&url, &got))).await;
            on.push(t);
            assert_eq!(delivered, n, "every ATTEMPT_FAILED reaches the receiver");
            println!(
                "round {r}: {} changes, push off {:.0}/s, push on {:.0}/s ({delivered} delivered)",
                2 * n,
                2.0 * n as f64 / s,
                2.0 * n as f64 / t
            );
        }
        let (off, on) = (median(off), median(on));
        println!(
            "push_cost: {} state changes; median push off {:.3} s, push on {:.3} s; on/off {:.2}",
            2 * n,
            off,
            on,
            on / off
        );
    });
}
