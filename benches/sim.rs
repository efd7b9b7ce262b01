//! Virtual-mode simulator speed, in simulated callers per second: the Erlang C scenario
//! (callers go straight to the queue) against the demo scenario (the shipped IVR with prompts,
//! callback offers, bookings and outbound callbacks), so the cost of the flows per caller shows
//! beside the bare queueing baseline. The million-caller figure comes from
//! `boomerang-sim run sim/scenarios/bench.yaml`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use boomerang_sim::{RunOptions, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn scenario(name: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sim/scenarios")
        .join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn virtual_mode(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_virtual");
    g.sample_size(10);
    for name in ["erlang-c.yaml", "demo.yaml"] {
        let s = scenario(name);
        let callers = boomerang_sim::run(&s, &RunOptions::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .callers;
        g.throughput(Throughput::Elements(callers as u64));
        g.bench_function(name.trim_end_matches(".yaml"), |b| {
            b.iter(|| boomerang_sim::run(&s, &RunOptions::default()).map(|r| r.callers))
        });
    }
    g.finish();
}

criterion_group!(benches, virtual_mode);
criterion_main!(benches);
