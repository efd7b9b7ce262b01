//! If (Segmentation): the first condition that holds chooses the branch.

use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::If;

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
