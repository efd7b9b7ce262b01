//! Durable callback creations per second through the embedded store: many concurrent creators
//! (group commit) against the baseline of one creator awaiting each commit in turn.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use boomerang::callback::{CallbackRecord, NewCallback, Origin};
use boomerang::config::CallDirection;
use boomerang::store::{SqliteStore, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn record(i: u64) -> CallbackRecord {
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
        boomerang::clock::SystemClock::shared().now(),
    )
    .expect("bench data is within limits")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("store");
    let mut g = c.benchmark_group("durable_callback_create");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    const BATCH: u64 = 2000;
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("group_commit_512_concurrent_creators", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for it in 0..iters {
                let recs: Vec<_> = (0..BATCH).map(|i| record(it * BATCH + i)).collect();
                let start = boomerang::clock::monotonic_now();
                rt.block_on(async {
                    let mut pending = Vec::new();
                    for chunk in recs.chunks((BATCH / 512).max(1) as usize) {
                        for r in chunk {
                            let s = store.clone();
                            let r = r.clone();
                            pending
                                .push(tokio::spawn(async move { s.save_callbacks(vec![r]).await }));
                        }
                    }
                    for p in pending {
                        p.await.expect("task").expect("saved");
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.throughput(Throughput::Elements(200));
    g.bench_function("baseline_one_commit_per_callback", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for it in 0..iters {
                let recs: Vec<_> = (0..200)
                    .map(|i| record(10_000_000 + it * 200 + i))
                    .collect();
                let start = boomerang::clock::monotonic_now();
                rt.block_on(async {
                    for r in recs {
                        store.save_callbacks(vec![r]).await.expect("saved");
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
