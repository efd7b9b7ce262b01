//! If (Segmentation): the first condition that holds chooses the branch.

use crate::flow::interpreter::{Cx, Step};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::flow::model::ExprText;

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
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when no condition holds and `otherwise` is absent.
    #[serde(default)]
    pub next: Option<String>,
    /// Conditions in order.
    #[schemars(length(min = 1))]
    pub conditions: Vec<Condition>,
    /// Block when none holds.
    #[serde(default)]
    pub otherwise: Option<String>,
}

/// Runs the block.
pub fn run(b: &If, cx: &mut Cx<'_>) -> Step {
    for c in &b.conditions {
        if cx.eval(&c.when).truthy() {
            cx.outcome(format!("{} → {}", c.when.0, c.goto));
            return Step::Branch(Some(c.goto.clone()));
        }
    }
    cx.outcome("no condition held");
    Step::Branch(b.otherwise.clone())
}
