//! Assign Variables: evaluates each expression and stores it, in order.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::Assignments;
use crate::yaml::Node;

/// Sets variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// Variable → expression, evaluated in the order written.
    #[schemars(extend("minProperties" = 1))]
    pub set: Assignments,
}

impl BlockType for Assign {
    const NEXT: Option<&'static str> = Some("Block to run next.");

    const RUNS_IN_FINALIZE: bool = true;

    fn decoded(&mut self, node: &Node) {
        self.set.read_order(node.get("set"));
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        if self.set.is_empty() {
            c.at("set", "assign at least one variable");
        }
        let set = c.node.get("set");
        let path = format!("{}.set", c.path);
        c.assignments(set, c.node.pos, &path, &self.set);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &Assign, cx: &mut Cx<'_>) -> Step {
    let mut done = Vec::new();
    for (name, e) in b.set.in_order() {
        let v = cx.eval(e);
        done.push(format!("{name}={v}"));
        cx.set(name, v);
    }
    cx.outcome(done.join(", "));
    Step::Next
}
