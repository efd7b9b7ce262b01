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
