//! Assign Variables: evaluates each expression and stores it, in order.

use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::Assign;

/// Runs the block.
pub fn run(b: &Assign, cx: &mut Cx<'_>) -> Step {
    let mut done = Vec::new();
    for (name, e) in b.assignments() {
        let v = cx.eval(e);
        done.push(format!("{name}={v}"));
        cx.set(name, v);
    }
    cx.outcome(done.join(", "));
    Step::Next
}
