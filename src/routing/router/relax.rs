//! Interactions whose requirement relaxes while they wait. An interaction's requirement changes
//! only at known instants (its enqueue time plus whole multiples of the relaxation interval),
//! and every requirement it will go through is compiled when it is queued (at most 11: skill
//! levels are 0 to 10). So:
//! - an agent who becomes ready is matched against the requirement computed from `now` (an
//!   index into that list), with no timer involved;
//! - a heap of next-relaxation instants says which interactions change when; at each due
//!   instant only those interactions are looked at, and only a queue whose *head* changed is
//!   dispatched again (the claim then walks the ready agents once, as an arrival does).
//!
//! No step scans every waiting interaction or every agent.

use std::cmp::Reverse;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Assignment, Router, RouterError, lock};
use crate::routing::growth::{PriorityGrowth, Relaxation};
use crate::routing::queue::Waiting;
use crate::routing::skills::{CompiledExpr, Expr};

/// How one interaction waits beyond its queue's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitRules<'a> {
    /// A skill expression the agent must also meet.
    pub requirement: Option<&'a str>,
    /// How that requirement relaxes while waiting.
    pub relax: Option<Relaxation>,
    /// How the priority grows while waiting (else the queue's growth, if any).
    pub growth: Option<PriorityGrowth>,
}

/// One interaction's own requirement: every form it takes while waiting.
pub(crate) struct Requirement {
    since: DateTime<Utc>,
    relax: Option<Relaxation>,
    /// As written first, then after each relaxation step (never empty).
    epochs: Vec<CompiledExpr>,
}

impl Requirement {
    fn steps(&self, now: DateTime<Utc>) -> usize {
        self.relax
            .map_or(0, |r| r.steps_at(self.since, now) as usize)
    }

    /// The requirement in force at `now`.
    pub(crate) fn at(&self, now: DateTime<Utc>) -> &CompiledExpr {
        let i = self.steps(now).min(self.epochs.len() - 1);
        &self.epochs[i]
    }

    /// The next instant after `now` when the requirement changes, if it still will.
    fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let r = self.relax?;
        let next = self.steps(now) + 1;
        if next >= self.epochs.len() {
            return None;
        }
        Some(self.since + TimeDelta::seconds(i64::from(r.every_seconds) * next as i64))
    }
}

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl Router {
    /// Queues a live interaction with its own rules: a skill requirement (maybe relaxing over
    /// time from its enqueue time) and a priority growth. Returns the assignments made at once.
    pub fn enqueue_with(
        &self,
        queue: &str,
        w: Waiting,
        rules: &WaitRules<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Assignment>, RouterError> {
        let qi = *self
            .by_name
            .get(queue)
            .ok_or_else(|| RouterError::UnknownQueue(queue.to_string()))?;
        let id = w.id;
        if let Some(text) = rules.requirement {
            let expr = Expr::parse(text).map_err(|error| RouterError::Expression {
                queue: queue.to_string(),
                error,
            })?;
            let forms = match rules.relax {
                Some(r) => r.epochs(&expr),
                None => vec![expr],
            };
            let epochs = forms
                .iter()
                .map(|e| CompiledExpr::from_expr(e, &e.to_string(), &self.catalog))
                .collect();
            let req = Requirement {
                // Relaxation counts from the place kept (a callback keeps its caller's time).
                since: w.enqueued_at.min(now),
                relax: rules.relax,
                epochs,
            };
            if let Some(at) = req.next_change(now) {
                self.relax_due.lock().push(Reverse((ns(at), id, qi)));
            }
            self.requirements.insert(id, req);
        }
        let r = self.push(queue, w, rules.growth, now, false);
        if r.is_err() {
            self.requirements.remove(&id);
        }
        r
    }

    /// The next instant a waiting interaction's requirement relaxes (for the timer that calls
    /// [`Router::relax_due`]).
    pub fn next_relax(&self) -> Option<DateTime<Utc>> {
        let top = self.relax_due.lock().peek().map(|Reverse((t, _, _))| *t)?;
        Some(DateTime::from_timestamp_nanos(top))
    }

    /// Applies the relaxations due at `now`: each interaction whose requirement changed and
    /// heads its queue is offered to the ready agents again. Cost: the due entries, plus one
    /// dispatch per queue whose head relaxed.
    pub fn relax_due(&self, now: DateTime<Utc>) -> Vec<Assignment> {
        self.seen(now);
        let mut queues = Vec::new();
        loop {
            let due = {
                let mut heap = self.relax_due.lock();
                match heap.peek() {
                    Some(Reverse((t, _, _))) if *t <= ns(now) => heap.pop(),
                    _ => None,
                }
            };
            let Some(Reverse((_, id, qi))) = due else {
                break;
            };
            // Gone (served, withdrawn): its entry is simply dropped.
            let next = match self.requirements.get(&id) {
                Some(req) => req.next_change(now),
                None => continue,
            };
            if let Some(at) = next {
                self.relax_due.lock().push(Reverse((ns(at), id, qi)));
            }
            let heads = lock(&self.queues[qi].waiting).head(now).map(|(w, _)| w.id) == Some(id);
            if heads && !queues.contains(&qi) {
                queues.push(qi);
            }
        }
        queues
            .into_iter()
            .flat_map(|qi| self.dispatch_queue(qi, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::StateKind;
    use crate::routing::router::tests::{agent_info, queue_def, t, waiting};
    use uuid::Uuid;

    fn router() -> Router {
        Router::new(
            vec![queue_def("Q", "")],
            vec![
                agent_info("junior", &[("Sales", 4)]),
                agent_info("senior", &[("Sales", 9)]),
            ],
        )
        .unwrap()
    }

    fn w(n: u128, p: i64, secs: i64) -> Waiting {
        waiting(Uuid::from_u128(n), p, secs)
    }

    #[test]
    fn a_relaxing_requirement_reaches_a_ready_agent_when_it_comes_due() {
        let r = router();
        r.set_agent_state("junior", StateKind::Ready, t(0), None, None)
            .unwrap();
        let rules = WaitRules {
            requirement: Some("Sales >= 8"),
            relax: Some(Relaxation {
                step: 2,
                every_seconds: 30,
                min_level: 4,
            }),
            growth: None,
        };
        assert!(
            r.enqueue_with("Q", w(1, 0, 0), &rules, t(0))
                .unwrap()
                .is_empty()
        );
        assert_eq!(r.next_relax(), Some(t(30)));
        // 8 → 6 at 30 s: the junior (4) still does not qualify.
        assert!(r.relax_due(t(30)).is_empty());
        assert_eq!(r.next_relax(), Some(t(60)));
        assert!(r.relax_due(t(59)).is_empty(), "nothing due before 60 s");
        // 6 → 4 at 60 s: the junior takes it, and nothing more is due.
        let got = r.relax_due(t(60));
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].agent.as_str(), got[0].interaction),
            ("junior", Uuid::from_u128(1))
        );
        assert_eq!(r.next_relax(), None);
    }

    #[test]
    fn an_agent_becoming_ready_is_matched_against_the_requirement_of_now() {
        let r = router();
        let rules = WaitRules {
            requirement: Some("Sales > 7"),
            relax: Some(Relaxation {
                step: 1,
                every_seconds: 10,
                min_level: 0,
            }),
            growth: None,
        };
        r.enqueue_with("Q", w(1, 0, 0), &rules, t(0)).unwrap();
        // No relax_due call at all: at 35 s the requirement is `Sales > 4`, met by level 4? No
        // (4 > 4 is false); at 40 s it is `Sales > 3`.
        assert!(
            r.set_agent_state("junior", StateKind::Ready, t(35), None, None)
                .unwrap()
                .is_empty()
        );
        r.set_agent_state("junior", StateKind::NotReady, t(36), None, None)
            .unwrap();
        let got = r
            .set_agent_state("junior", StateKind::Ready, t(40), None, None)
            .unwrap();
        assert_eq!(got.len(), 1);
        // Withdrawn interactions' heap entries are dropped when due.
        let gone = w(2, 0, 50);
        r.enqueue_with("Q", gone.clone(), &rules, t(50)).unwrap();
        assert!(r.withdraw("Q", gone.id).unwrap());
        assert!(r.relax_due(t(1000)).is_empty());
        assert_eq!(r.next_relax(), None);
    }

    #[test]
    fn priority_growth_lets_an_older_low_priority_call_overtake() {
        let mut r = router();
        r.set_priority_growth(
            "Q",
            PriorityGrowth {
                increment: 1,
                every_seconds: 60,
                limit: 10,
            },
        )
        .unwrap();
        let old = w(1, 0, 0);
        let own = WaitRules {
            growth: Some(PriorityGrowth {
                increment: 5,
                every_seconds: 10,
                limit: 100,
            }),
            ..WaitRules::default()
        };
        r.enqueue("Q", old.clone(), t(0)).unwrap();
        r.enqueue("Q", w(2, 3, 100), t(100)).unwrap();
        // At 100 s the old call has 1 (one step of the queue's growth), the later one 3; both
        // grow alike, so the later keeps its lead until both reach the limit (10).
        assert_eq!(r.position_at("Q", old.id, t(100)).unwrap(), Some(1));
        assert_eq!(r.position_at("Q", old.id, t(500)).unwrap(), Some(1));
        assert_eq!(
            r.position_at("Q", old.id, t(600)).unwrap(),
            Some(0),
            "both at the limit: the older first"
        );
        // A call with its own faster growth overtakes both within 30 s.
        r.enqueue_with("Q", w(3, 0, 600), &own, t(600)).unwrap();
        assert_eq!(
            r.position_at("Q", Uuid::from_u128(3), t(610)).unwrap(),
            Some(2)
        );
        assert_eq!(
            r.position_at("Q", Uuid::from_u128(3), t(630)).unwrap(),
            Some(0)
        );
        let got = r
            .set_agent_state("junior", StateKind::Ready, t(630), None, None)
            .unwrap();
        assert_eq!(got[0].interaction, Uuid::from_u128(3));
        assert_eq!(r.position("Q", old.id).unwrap(), Some(0));
    }
}
