//! What changes while an interaction waits, computed from its enqueue time and `now` instead of
//! rewriting queued entries on a timer: its priority (Callback V2's Routing Priority tab:
//! initial value, increment every N seconds, limit) and its skill requirement (relaxation: the
//! required levels lowered by a step every N seconds down to a minimum).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::skills::{CmpOp, Expr};

/// Priority growth while waiting: `increment` every `every_seconds`, never above `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityGrowth {
    /// Added to the priority at each step (1 to 1000000).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub increment: i64,
    /// Seconds between steps (1 to 86400).
    #[schemars(range(min = 1, max = 86400))]
    pub every_seconds: u32,
    /// The priority never grows past this (0 to 1000000).
    #[schemars(range(min = 0, max = 1_000_000))]
    pub limit: i64,
}

impl PriorityGrowth {
    /// The effective priority at `now` of an interaction of `initial` priority queued at
    /// `since`; the initial priority when it is already at or above the limit.
    pub fn at(&self, initial: i64, since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
        if self.increment <= 0 || self.every_seconds == 0 || initial >= self.limit {
            return initial;
        }
        let steps = (now - since).num_seconds().max(0) / i64::from(self.every_seconds);
        initial
            .saturating_add(steps.saturating_mul(self.increment))
            .min(self.limit)
    }

    /// The field out of range and why, if any (for load-time checks).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        out_of_range(&[
            ("increment", self.increment, 1, 1_000_000),
            ("every_seconds", self.every_seconds.into(), 1, 86_400),
            ("limit", self.limit, 0, 1_000_000),
        ])
    }
}

/// The first `(field, value, lo, hi)` whose value is outside `lo..=hi`, with the message.
fn out_of_range(fields: &[(&'static str, i64, i64, i64)]) -> Option<(&'static str, String)> {
    fields
        .iter()
        .find(|f| !(f.2..=f.3).contains(&f.1))
        .map(|&(field, v, lo, hi)| {
            (
                field,
                format!("{field} must be between {lo} and {hi}, not {v}"),
            )
        })
}

/// Skill relaxation while waiting: every `>=` and `>` threshold of the call's skill expression
/// is lowered by `step` every `every_seconds`, never below `min_level` (a threshold already
/// below it stays as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relaxation {
    /// Levels taken off at each step (1 to 10).
    #[schemars(range(min = 1, max = 10))]
    pub step: u8,
    /// Seconds between steps (1 to 86400).
    #[schemars(range(min = 1, max = 86400))]
    pub every_seconds: u32,
    /// The lowest a threshold goes (0 to 10).
    #[schemars(range(min = 0, max = 10))]
    pub min_level: u8,
}

impl Relaxation {
    /// The field out of range and why, if any (for load-time checks).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        out_of_range(&[
            ("step", self.step.into(), 1, 10),
            ("every_seconds", self.every_seconds.into(), 1, 86_400),
            ("min_level", self.min_level.into(), 0, 10),
        ])
    }

    /// The steps taken at `now` for an interaction queued at `since`.
    pub fn steps_at(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
        let every = i64::from(self.every_seconds.max(1));
        let steps = (now - since).num_seconds().max(0) / every;
        u32::try_from(steps).unwrap_or(u32::MAX)
    }

    /// The expression after `steps` steps: each relaxable threshold lowered.
    pub fn relaxed(&self, expr: &Expr, steps: u32) -> Expr {
        let by = u32::from(self.step).saturating_mul(steps);
        lower(expr, by, self.min_level)
    }

    /// Every distinct requirement the expression goes through, from as written to fully
    /// relaxed (at most 11: levels are 0 to 10).
    pub fn epochs(&self, expr: &Expr) -> Vec<Expr> {
        let mut out = vec![expr.clone()];
        for steps in 1..=10 {
            let next = self.relaxed(expr, steps);
            if out.last() == Some(&next) {
                break;
            }
            out.push(next);
        }
        out
    }
}

/// True when the expression has a `>=` or `>` threshold that relaxation can lower.
pub fn relaxable(expr: &Expr) -> bool {
    match expr {
        Expr::True => false,
        Expr::Cmp { op, .. } => matches!(op, CmpOp::Ge | CmpOp::Gt),
        // Lowering inside a negation would make the requirement stricter: never done.
        Expr::Not(_) => false,
        Expr::And(a, b) | Expr::Or(a, b) => relaxable(a) || relaxable(b),
    }
}

fn lower(expr: &Expr, by: u32, floor: u8) -> Expr {
    match expr {
        Expr::Cmp { skill, op, level } if matches!(op, CmpOp::Ge | CmpOp::Gt) => {
            let lowered = u32::from(*level).saturating_sub(by);
            // `> n` means `>= n + 1`: the floor applies to the level the agent needs.
            let floor = match op {
                CmpOp::Gt => u32::from(floor).saturating_sub(1),
                _ => u32::from(floor),
            };
            let level = if u32::from(*level) <= floor {
                *level
            } else {
                lowered.max(floor) as u8
            };
            Expr::Cmp {
                skill: skill.clone(),
                op: *op,
                level,
            }
        }
        // Inside a negation, lowering would make the requirement stricter: left as written.
        Expr::Not(e) => Expr::Not(e.clone()),
        Expr::And(a, b) => Expr::And(Box::new(lower(a, by, floor)), Box::new(lower(b, by, floor))),
        Expr::Or(a, b) => Expr::Or(Box::new(lower(a, by, floor)), Box::new(lower(b, by, floor))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap() + TimeDelta::seconds(secs)
    }

    #[test]
    fn priority_grows_by_steps_up_to_its_limit() {
        let g = PriorityGrowth {
            increment: 5,
            every_seconds: 30,
            limit: 20,
        };
        assert_eq!(g.at(3, t(0), t(29)), 3);
        assert_eq!(g.at(3, t(0), t(30)), 8);
        assert_eq!(g.at(3, t(0), t(89)), 13);
        assert_eq!(g.at(3, t(0), t(3600)), 20);
        assert_eq!(g.at(50, t(0), t(3600)), 50, "above the limit: unchanged");
        assert_eq!(g.at(3, t(10), t(0)), 3, "queued in the future: no step yet");
        assert!(g.problem().is_none());
        assert!(PriorityGrowth { increment: 0, ..g }.problem().is_some());
    }

    #[test]
    fn relaxation_lowers_thresholds_to_the_floor_and_leaves_others() {
        let r = Relaxation {
            step: 2,
            every_seconds: 60,
            min_level: 3,
        };
        let e = Expr::parse("Sales >= 8 & French > 6 & !(Spam >= 5) & Level = 4").unwrap();
        let text = |x: &Expr| x.to_string();
        assert_eq!(r.steps_at(t(0), t(119)), 1);
        assert_eq!(
            text(&r.relaxed(&e, 1)),
            text(&Expr::parse("Sales >= 6 & French > 4 & !(Spam >= 5) & Level = 4").unwrap())
        );
        assert_eq!(
            text(&r.relaxed(&e, 9)),
            text(&Expr::parse("Sales >= 3 & French > 2 & !(Spam >= 5) & Level = 4").unwrap())
        );
        let epochs = r.epochs(&e);
        assert_eq!(epochs.len(), 4, "8 → 6 → 4 → 3");
        assert!(relaxable(&e));
        assert!(!relaxable(
            &Expr::parse("Level = 4 & !(Spam >= 1)").unwrap()
        ));
        // A threshold already below the floor stays.
        let low = Expr::parse("Sales >= 2").unwrap();
        assert_eq!(r.epochs(&low).len(), 1);
    }
}
