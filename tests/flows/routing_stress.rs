//! Scenario: eight routers' threads claim and release agents a million times in total across
//! overlapping queues; no agent is ever held twice and every claim is released.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use boomerang::config::{EwtMethod, SelectionPolicy};
use boomerang::routing::StateKind;
use boomerang::routing::agents::AgentInfo;
use boomerang::routing::router::{QueueDef, Router};
use chrono::{TimeZone, Utc};

const THREADS: u64 = 8;
const TOTAL_CLAIMS: u64 = 1_000_000;

#[test]
fn no_agent_is_ever_held_twice() {
    // 64 agents with skills s0..s7 at levels that make the 16 queues overlap.
    let agents: Vec<AgentInfo> = (0..64)
        .map(|i| AgentInfo {
            id: format!("a{i}"),
            name: String::new(),
            sip_user: format!("{i}"),
            skills: (0..8)
                .map(|s| (format!("s{s}"), ((i * 7 + s * 3) % 11) as u8))
                .collect(),
        })
        .collect();
    let queues: Vec<QueueDef> = (0..16)
        .map(|q| QueueDef {
            name: format!("q{q}"),
            skill_expression: format!("s{} >= 3 | s{} > 6", q % 8, (q + 3) % 8),
            selection: if q % 4 == 0 {
                SelectionPolicy::RoundRobin
            } else {
                SelectionPolicy::LongestIdle
            },
            ewt_method: EwtMethod::QueueLength,
        })
        .collect();
    let router = Arc::new(Router::new(queues, agents).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
    for i in 0..64 {
        router
            .set_agent_state(&format!("a{i}"), StateKind::Ready, now, None, None)
            .unwrap();
    }
    let held: Arc<Vec<AtomicBool>> = Arc::new((0..64).map(|_| AtomicBool::new(false)).collect());
    let claims = Arc::new(AtomicU64::new(0));
    let releases = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (router, held, claims, releases) = (
                router.clone(),
                held.clone(),
                claims.clone(),
                releases.clone(),
            );
            std::thread::spawn(move || {
                let mut mine = 0;
                let mut q = t as usize;
                while mine < TOTAL_CLAIMS / THREADS {
                    q = (q * 31 + 7) % 16;
                    let Some(idx) = router.claim_for(&format!("q{q}")).unwrap() else {
                        continue;
                    };
                    assert!(
                        !held[idx as usize].swap(true, Ordering::SeqCst),
                        "agent {idx} claimed twice"
                    );
                    claims.fetch_add(1, Ordering::Relaxed);
                    assert_eq!(router.agents().get(idx).state(), StateKind::Reserved);
                    assert!(held[idx as usize].swap(false, Ordering::SeqCst));
                    router.release(idx, now).unwrap();
                    releases.fetch_add(1, Ordering::Relaxed);
                    mine += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(claims.load(Ordering::SeqCst), TOTAL_CLAIMS);
    assert_eq!(releases.load(Ordering::SeqCst), TOTAL_CLAIMS);
    for i in 0..64 {
        assert_eq!(
            router.agents().get(i).state(),
            StateKind::Ready,
            "agent {i} left reserved"
        );
    }
    // Every agent is still findable: 64 claims succeed, the 65th does not.
    let mut found = std::collections::HashSet::new();
    for q in (0..16).cycle().take(2000) {
        if let Some(idx) = router.claim_for(&format!("q{q}")).unwrap() {
            found.insert(idx);
        }
    }
    let eligible_somewhere = (0..64u32)
        .filter(|i| {
            (0..16).any(|q| {
                let s = |n: u32| ((i * 7 + n * 3) % 11) as u8;
                s(q % 8) >= 3 || s((q + 3) % 8) > 6
            })
        })
        .count();
    assert_eq!(found.len(), eligible_somewhere);
}

/// Scenario: eight threads drive random state changes (ready, not ready, claim, busy, after-call
/// work, log out, release) on the same 64 agents at once; afterwards every queue's counts (kept
/// as state bits, not recounted) equal a recount from the agents' states.
#[test]
fn queue_counts_settle_on_the_agents_states() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let level = |i: u32, s: u32| ((i * 7 + s * 3) % 11) as u8;
    let agents: Vec<AgentInfo> = (0..64u32)
        .map(|i| AgentInfo {
            id: format!("a{i}"),
            name: String::new(),
            sip_user: format!("{i}"),
            skills: (0..8).map(|s| (format!("s{s}"), level(i, s))).collect(),
        })
        .collect();
    let queues: Vec<QueueDef> = (0..16)
        .map(|q| QueueDef {
            name: format!("q{q}"),
            skill_expression: format!("s{} >= 3 | s{} > 6", q % 8, (q + 3) % 8),
            selection: SelectionPolicy::LongestIdle,
            ewt_method: EwtMethod::QueueLength,
        })
        .collect();
    let router = Arc::new(Router::new(queues, agents).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let router = router.clone();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                for _ in 0..100_000 {
                    let a = rng.random_range(0..64u32);
                    let id = format!("a{a}");
                    // Refused transitions (another thread moved the agent first) are expected.
                    let _ = match rng.random_range(0..7) {
                        0 => router.set_agent_state(&id, StateKind::Ready, now, None, None),
                        1 => router.set_agent_state(&id, StateKind::NotReady, now, None, None),
                        2 => router.set_agent_state(&id, StateKind::Busy, now, None, None),
                        3 => router.set_agent_state(
                            &id,
                            StateKind::AfterCallWork,
                            now,
                            None,
                            Some(now),
                        ),
                        4 => router.set_agent_state(&id, StateKind::LoggedOut, now, None, None),
                        5 => match router.claim_for(&format!("q{}", a % 16)) {
                            Ok(Some(got)) if rng.random_bool(0.5) => router.release(got, now),
                            _ => Ok(Vec::new()),
                        },
                        _ => router
                            .set_agent_skills(
                                &id,
                                &(0..8)
                                    .map(|s| (format!("s{s}"), level(a, s)))
                                    .collect::<Vec<_>>(),
                            )
                            .map(|_| Vec::new()),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut busy_seen = 0;
    for q in 0..16u32 {
        let mut want = boomerang::routing::router::AgentCounts::default();
        for i in 0..64u32 {
            if !(level(i, q % 8) >= 3 || level(i, (q + 3) % 8) > 6) {
                continue;
            }
            let state = router.agents().get(i).state();
            match state {
                StateKind::LoggedOut => continue,
                StateKind::Ready => want.ready += 1,
                StateKind::NotReady => {}
                StateKind::Reserved | StateKind::Busy | StateKind::AfterCallWork => want.busy += 1,
            }
            want.logged_in += 1;
        }
        busy_seen += want.busy;
        assert_eq!(router.agent_counts(&format!("q{q}")).unwrap(), want, "q{q}");
    }
    assert!(busy_seen > 0, "the random walk left some agents busy");
}
