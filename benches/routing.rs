//! Match + claim + release on 10,000 agents, 500 queues and 20 skills with random levels and
//! expressions: boomerang's lock-free readiness against the usual design (one mutex around a
//! vector of agents, scanned linearly with a tree-walking expression check), single-threaded
//! and with two contending threads. Also prints p50/p99 latency of match+claim.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use boomerang::config::{EwtMethod, SelectionPolicy};
use boomerang::routing::StateKind;
use boomerang::routing::agents::AgentInfo;
use boomerang::routing::router::{QueueDef, Router};
use boomerang::routing::skills::Expr;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const AGENTS: usize = 10_000;
const QUEUES: usize = 500;
const SKILLS: usize = 20;

struct World {
    agents: Vec<AgentInfo>,
    queues: Vec<QueueDef>,
}

fn world() -> World {
    let mut rng = StdRng::seed_from_u64(42);
    let agents = (0..AGENTS)
        .map(|i| AgentInfo {
            id: format!("a{i}"),
            name: String::new(),
            sip_user: format!("{i}"),
            skills: {
                let mut skills = Vec::new();
                for s in 0..SKILLS {
                    if rng.random_bool(0.5) {
                        skills.push((format!("s{s}"), rng.random_range(1..=10)));
                    }
                }
                skills
            },
        })
        .collect();
    let ops = [">=", ">", "="];
    let queues = (0..QUEUES)
        .map(|q| {
            let term = |rng: &mut StdRng| {
                format!(
                    "s{} {} {}",
                    rng.random_range(0..SKILLS),
                    ops[rng.random_range(0..3)],
                    rng.random_range(1..=6)
                )
            };
            let expr = match rng.random_range(0..3) {
                0 => term(&mut rng),
                1 => format!("{} & {}", term(&mut rng), term(&mut rng)),
                _ => format!(
                    "{} & ({} | {})",
                    term(&mut rng),
                    term(&mut rng),
                    term(&mut rng)
                ),
            };
            QueueDef {
                name: format!("q{q}"),
                skill_expression: expr,
                selection: SelectionPolicy::LongestIdle,
                ewt_method: EwtMethod::QueueLength,
            }
        })
        .collect();
    World { agents, queues }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("valid date")
}

fn lockfree(w: &World) -> Arc<Router> {
    let r = Router::new(w.queues.clone(), w.agents.clone()).expect("router");
    for (i, a) in w.agents.iter().enumerate() {
        r.set_agent_state(
            &a.id,
            StateKind::Ready,
            now() + chrono::TimeDelta::milliseconds(i as i64),
            None,
            None,
        )
        .expect("ready");
    }
    Arc::new(r)
}

/// The usual way: one mutex, a vector of agents, a linear scan with a tree-walking check.
struct Baseline {
    agents: Mutex<Vec<BAgent>>,
    exprs: Vec<Expr>,
}

struct BAgent {
    levels: HashMap<String, u8>,
    ready: bool,
    ready_since: u64,
}

impl Baseline {
    fn new(w: &World) -> Self {
        Baseline {
            agents: Mutex::new(
                w.agents
                    .iter()
                    .enumerate()
                    .map(|(i, a)| BAgent {
                        levels: a
                            .skills
                            .iter()
                            .map(|(s, l)| (s.to_lowercase(), *l))
                            .collect(),
                        ready: true,
                        ready_since: i as u64,
                    })
                    .collect(),
            ),
            exprs: w
                .queues
                .iter()
                .map(|q| Expr::parse(&q.skill_expression).expect("expr"))
                .collect(),
        }
    }

    fn claim(&self, q: usize) -> Option<usize> {
        let mut agents = self.agents.lock().expect("lock");
        let expr = &self.exprs[q];
        let mut best: Option<(u64, usize)> = None;
        for (i, a) in agents.iter().enumerate() {
            if a.ready
                && expr.eval(&|s: &str| a.levels.get(s).copied().unwrap_or(0))
                && best.is_none_or(|(t, _)| a.ready_since < t)
            {
                best = Some((a.ready_since, i));
            }
        }
        let (_, i) = best?;
        agents[i].ready = false;
        Some(i)
    }

    fn release(&self, i: usize) {
        self.agents.lock().expect("lock")[i].ready = true;
    }
}

fn queue_sequence(n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..n)
        .map(|_| format!("q{}", rng.random_range(0..QUEUES)))
        .collect()
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

fn latency(router: &Router, base: &Baseline, seq: &[String], qidx: &[usize]) {
    let mut lf = Vec::with_capacity(100_000);
    let mut bl = Vec::with_capacity(20_000);
    for i in 0..100_000 {
        let q = &seq[i % seq.len()];
        let t = boomerang::clock::monotonic_now();
        let got = router.claim_for(q).expect("queue");
        lf.push(t.elapsed().as_nanos() as u64);
        if let Some(a) = got {
            router.release(a, now()).expect("release");
        }
    }
    for i in 0..20_000 {
        let t = boomerang::clock::monotonic_now();
        let got = base.claim(qidx[i % qidx.len()]);
        bl.push(t.elapsed().as_nanos() as u64);
        if let Some(a) = got {
            base.release(a);
        }
    }
    let (lf50, lf99) = percentiles(lf);
    let (bl50, bl99) = percentiles(bl);
    eprintln!(
        "match+claim latency: lock-free p50 {lf50} ns, p99 {lf99} ns; baseline p50 {bl50} ns, p99 {bl99} ns"
    );
}

/// Runs `op` `iters` times on each of two threads started together (thread `t` passes the
/// indices `k * 2 + t`); returns the slower thread's time.
fn two_threads(iters: u64, op: impl Fn(usize) + Send + Sync + Clone + 'static) -> Duration {
    let barrier = Arc::new(Barrier::new(2));
    let hs: Vec<_> = (0..2)
        .map(|t| {
            let (op, barrier) = (op.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let start = boomerang::clock::monotonic_now();
                for k in 0..iters as usize {
                    op(k * 2 + t);
                }
                start.elapsed()
            })
        })
        .collect();
    hs.into_iter()
        .map(|h| h.join().expect("thread"))
        .max()
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let w = world();
    let router = lockfree(&w);
    let base = Arc::new(Baseline::new(&w));
    let seq = Arc::new(queue_sequence(4096));
    let qidx: Arc<Vec<usize>> =
        Arc::new(seq.iter().map(|q| q[1..].parse().expect("index")).collect());

    // Latency of match+claim, measured op by op; only in a real `cargo bench` run (under
    // `cargo test` each benchmark runs once in a debug build and this loop would be slow).
    if std::env::args().any(|a| a == "--bench") {
        latency(&router, &base, &seq, &qidx);
    }

    let mut g = c.benchmark_group("match_claim_release");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("lockfree_1_thread", |b| {
        b.iter(|| {
            i += 1;
            if let Some(a) = router.claim_for(&seq[i % seq.len()]).expect("queue") {
                router.release(a, now()).expect("release");
            }
        })
    });
    let mut j = 0usize;
    g.bench_function("baseline_mutex_vec_1_thread", |b| {
        b.iter(|| {
            j += 1;
            if let Some(a) = base.claim(qidx[j % qidx.len()]) {
                base.release(a);
            }
        })
    });
    g.throughput(Throughput::Elements(2));
    g.bench_function("lockfree_2_threads", |b| {
        let (router, seq) = (router.clone(), seq.clone());
        b.iter_custom(|iters| {
            two_threads(iters, {
                let (router, seq) = (router.clone(), seq.clone());
                move |k| {
                    if let Some(a) = router.claim_for(&seq[k % seq.len()]).expect("queue") {
                        router.release(a, now()).expect("release");
                    }
                }
            })
        })
    });
    g.bench_function("baseline_mutex_vec_2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, {
                let (base, qidx) = (base.clone(), qidx.clone());
                move |k| {
                    if let Some(a) = base.claim(qidx[k % qidx.len()]) {
                        base.release(a);
                    }
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
