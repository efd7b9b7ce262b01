//! If (Segmentation): the first condition that holds chooses the branch.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{BlockType, targets};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, ExprText};

/// A condition of an If block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// An expression; the first true one wins.
    pub when: ExprText,
    /// Block to go to.
    pub goto: String,
}

/// Segmentation: the first true condition wins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct If {
    /// Conditions in order.
    #[schemars(length(min = 1))]
    pub conditions: Vec<Condition>,
    /// Block when none holds.
    pub otherwise: Option<String>,
}

impl BlockType for If {
    const NEXT: Option<&'static str> =
        Some("Block to run when no condition holds and `otherwise` is absent.");

    fn branches(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = (self.conditions.iter().enumerate())
            .map(|(i, c)| (format!("conditions[{i}].goto"), c.goto.clone()))
            .collect();
        out.extend(targets(&[("otherwise", &self.otherwise)]));
        out
    }

    fn falls_through(&self, _kind: AppKind) -> bool {
        self.otherwise.is_none()
    }

    const RUNS_IN_FINALIZE: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        if self.conditions.is_empty() {
            c.at("conditions", "give at least one condition");
        }
        let conds = c.node.get("conditions");
        for (i, cond) in self.conditions.iter().enumerate() {
            let when = conds
                .and_then(|l| l.items().get(i))
                .and_then(|n| n.get("when"));
            let path = format!("{}.conditions[{i}].when", c.path);
            c.expr_at(when, c.node.pos, &path, &cond.when);
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &If, cx: &mut Cx<'_>) -> Step {
    for c in &b.conditions {
        if cx.eval(&c.when).truthy() {
            cx.outcome(format!("{} → {}", c.when.0, c.goto));
            return Step::Branch(Some(c.goto.clone()));
        }
    }
    cx.outcome("no condition held");
    Step::Branch(b.otherwise.clone())
}
