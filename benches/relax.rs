//! Skill relaxation's cost on routing: match+claim (a call arriving in a queue and taking a ready
//! agent) and an agent's return to Ready (matched against the waiting heads), with 10,000
//! waiting interactions whose requirements relax over time against none, in the same run.
//! The relaxations come due while the loop runs (`relax_due` is called at every step, timed
//! apart), so the heap's work is part of the run. Prints p50/p99 of each and the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use boomerang::config::{EwtMethod, SelectionPolicy};
use boomerang::routing::agents::AgentInfo;
use boomerang::routing::router::{QueueDef, Router};
use boomerang::routing::{Relaxation, StateKind, WaitRules, Waiting};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const AGENTS: usize = 1_000;
const WAITING: usize = 10_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid date")
}

/// 1,000 ready agents with low Sales and Support levels (1 to 3); queues `Q` (arrivals) and
/// `W` (where the relaxing interactions wait), both open to every agent.
fn router(waiting: usize) -> Router {
    let mut rng = StdRng::seed_from_u64(42);
    let agents = (0..AGENTS)
        .map(|i| AgentInfo {
            id: format!("a{i}"),
            name: String::new(),
            sip_user: format!("{i}"),
            skills: vec![
                ("Sales".into(), rng.random_range(1..=3)),
                ("Support".into(), rng.random_range(1..=3)),
            ],
        })
        .collect();
    let q = |name: &str| QueueDef {
        name: name.into(),
        skill_expression: String::new(),
        selection: SelectionPolicy::LongestIdle,
        ewt_method: EwtMethod::QueueLength,
    };
    let r = Router::new(vec![q("Q"), q("W")], agents).expect("router");
    for i in 0..AGENTS {
        r.set_agent_state(
            &format!("a{i}"),
            StateKind::Ready,
            t0() + TimeDelta::milliseconds(i as i64),
            None,
            None,
        )
        .expect("ready");
    }
    // Each relaxes from 10 down to 4 (6 steps, every 20 to 120 s): never low enough for these
    // agents, so they all stay waiting while their requirements change under the run.
    for i in 0..waiting {
        let rules = WaitRules {
            requirement: Some("Sales >= 10 & Support >= 10"),
            relax: Some(Relaxation {
                step: 1,
                every_seconds: rng.random_range(20..=120),
                min_level: 4,
            }),
            growth: None,
        };
        let w = Waiting {
            id: Uuid::from_u128(1_000_000 + i as u128),
            priority: rng.random_range(0..3),
            enqueued_at: t0() + TimeDelta::milliseconds(i as i64),
        };
        let got = r.enqueue_with("W", w, &rules, t0()).expect("enqueue");
        assert!(got.is_empty(), "nobody meets the requirement");
    }
    r
}

/// One step at `now`: a call arrives in `Q` and takes an agent (match+claim, timed), then the
/// agent is Ready again (matched against the heads of `Q` and `W`, timed).
fn step(r: &Router, n: u64, now: DateTime<Utc>) -> (u64, u64) {
    let w = Waiting {
        id: Uuid::from_u128(n as u128),
        priority: 0,
        enqueued_at: now,
    };
    let t = boomerang::clock::monotonic_now();
    let got = r.enqueue("Q", w, now).expect("enqueue");
    let claim = t.elapsed().as_nanos() as u64;
    let a = got.first().expect("an agent is ready");
    let t = boomerang::clock::monotonic_now();
    let back = r.release(a.agent_idx, now).expect("release");
    let ready = t.elapsed().as_nanos() as u64;
    assert!(back.is_empty());
    (claim, ready)
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

/// `steps` steps 10 ms of routing time apart (so 100,000 steps cover 1,000 s, every relaxation
/// of the 10,000 interactions), calling `relax_due` at each.
fn latency(r: &Router, steps: u64) -> ((u64, u64), (u64, u64), u64, usize) {
    let (mut claims, mut readies) = (Vec::new(), Vec::new());
    let mut relax_ns = 0u64;
    let mut due = 0usize;
    for n in 0..steps {
        let now = t0() + TimeDelta::milliseconds(10 * n as i64);
        let t = boomerang::clock::monotonic_now();
        let before = r.next_relax();
        let got = r.relax_due(now);
        relax_ns += t.elapsed().as_nanos() as u64;
        assert!(got.is_empty());
        if before.is_some_and(|b| b <= now) {
            due += 1;
        }
        let (c, s) = step(r, n, now);
        claims.push(c);
        readies.push(s);
    }
    (percentiles(claims), percentiles(readies), relax_ns, due)
}

fn bench(c: &mut Criterion) {
    let empty = router(0);
    let loaded = router(WAITING);
    if std::env::args().any(|a| a == "--bench") {
        let steps = 100_000;
        // Alternated halves so that drift in the machine's load hits both alike.
        let (e1, e1r, _, _) = latency(&empty, steps / 2);
        let (l1, l1r, relax_ns, due) = latency(&loaded, steps);
        let (e2, e2r, _, _) = latency(&router(0), steps / 2);
        let e = (e1.0.max(e2.0), e1.1.max(e2.1));
        let er = (e1r.0.max(e2r.0), e1r.1.max(e2r.1));
        eprintln!(
            "match+claim: no waiting p50 {} ns p99 {} ns; 10,000 relaxing waiting p50 {} ns p99 {} ns; p99 ratio {:.2}",
            e.0,
            e.1,
            l1.0,
            l1.1,
            l1.1 as f64 / e.1 as f64
        );
        eprintln!(
            "agent back to Ready: no waiting p50 {} ns p99 {} ns; 10,000 relaxing waiting p50 {} ns p99 {} ns; p99 ratio {:.2}",
            er.0,
            er.1,
            l1r.0,
            l1r.1,
            l1r.1 as f64 / er.1 as f64
        );
        eprintln!(
            "relax_due: {} ns in all over {steps} steps ({due} with relaxations due), {} waiting still",
            relax_ns,
            loaded.waiting("W").expect("queue")
        );
    }
    let mut g = c.benchmark_group("relax_match_claim");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let mut n = 0u64;
    g.bench_function("no_waiting", |b| {
        b.iter(|| {
            n += 1;
            step(&empty, n, t0())
        })
    });
    let mut m = 0u64;
    g.bench_function("10000_relaxing_waiting", |b| {
        b.iter(|| {
            m += 1;
            step(&loaded, m, t0())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
