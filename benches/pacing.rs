//! What the dialer's pacing rule costs the router (see `routing::router`): an agent becoming
//! ready and going back to Not Ready, with 1,000 agents eligible for a callback queue, in three
//! cases measured in the same run:
//! - baseline: no callback waits (the check is skipped);
//! - held back: 10,000 callbacks wait and 500 dials are in flight, so every ready event counts
//!   the ready eligible agents (popcounts over the queue's bitset) to learn that the rule still
//!   holds (its worst case);
//! - trigger: a callback is triggered by the ready agent, settled and queued again (the cost of
//!   one dial decision).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use boomerang::config::{EwtMethod, SelectionPolicy};
use boomerang::routing::StateKind;
use boomerang::routing::agents::AgentInfo;
use boomerang::routing::queue::Waiting;
use boomerang::routing::router::{QueueDef, Router};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;

const AGENTS: usize = 1_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn router() -> Router {
    let agents = (0..AGENTS)
        .map(|i| AgentInfo {
            id: format!("a{i}"),
            name: String::new(),
            sip_user: format!("{i}"),
            skills: vec![("Sales".to_string(), 5)],
        })
        .collect();
    let queue = QueueDef {
        name: "Sales_VQ_CB".into(),
        skill_expression: "Sales >= 5".into(),
        selection: SelectionPolicy::LongestIdle,
        ewt_method: EwtMethod::QueueLength,
    };
    match Router::new(vec![queue], agents) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn callback(n: i64) -> Waiting {
    Waiting {
        id: Uuid::new_v4(),
        priority: 0,
        enqueued_at: t0() + TimeDelta::milliseconds(n),
    }
}

fn state(r: &Router, agent: &str, to: StateKind) -> usize {
    match r.set_agent_state(agent, to, t0(), None, None) {
        Ok(list) => list.len(),
        Err(e) => panic!("{e}"),
    }
}

/// The toggled agent: ready then not ready again; returns the triggers it caused.
fn toggle(r: &Router) -> usize {
    state(r, "a999", StateKind::Ready) + state(r, "a999", StateKind::NotReady)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pacing");
    g.measurement_time(Duration::from_secs(3));

    let baseline = router();
    for i in 0..AGENTS - 1 {
        state(&baseline, &format!("a{i}"), StateKind::NotReady);
    }
    g.bench_function("agent ready, no callback waiting (baseline)", |b| {
        b.iter(|| toggle(&baseline))
    });

    // 500 agents trigger 500 dials, then go Not Ready: 10,000 - 500 callbacks are held back.
    let held = router();
    for i in 0..AGENTS - 1 {
        let to = if i < 500 {
            StateKind::Ready
        } else {
            StateKind::NotReady
        };
        state(&held, &format!("a{i}"), to);
    }
    for n in 0..10_000 {
        if let Err(e) = held.enqueue_paced("Sales_VQ_CB", callback(n), t0()) {
            panic!("{e}");
        }
    }
    for i in 0..500 {
        state(&held, &format!("a{i}"), StateKind::NotReady);
    }
    assert_eq!(held.in_flight("Sales_VQ_CB").ok(), Some(500));
    g.bench_function("agent ready, 9,500 callbacks held back by 500 dials", |b| {
        b.iter(|| {
            let triggered = toggle(&held);
            assert_eq!(triggered, 0);
            triggered
        })
    });

    let open = router();
    for i in 0..AGENTS - 1 {
        state(&open, &format!("a{i}"), StateKind::NotReady);
    }
    if let Err(e) = open.enqueue_paced("Sales_VQ_CB", callback(0), t0()) {
        panic!("{e}");
    }
    let mut n = 1;
    g.bench_function(
        "agent ready triggers a dial, settled and queued again",
        |b| {
            b.iter(|| {
                let triggered =
                    match open.set_agent_state("a999", StateKind::Ready, t0(), None, None) {
                        Ok(list) => list,
                        Err(e) => panic!("{e}"),
                    };
                assert_eq!(triggered.len(), 1);
                state(&open, "a999", StateKind::NotReady);
                open.settle(triggered[0].interaction, t0());
                n += 1;
                if let Err(e) = open.enqueue_paced("Sales_VQ_CB", callback(n), t0()) {
                    panic!("{e}");
                }
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
