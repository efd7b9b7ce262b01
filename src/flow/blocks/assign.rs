//! Assign Variables: evaluates each expression and stores it, in order.

use crate::flow::interpreter::{Cx, Step};

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::flow::model::{ExprText, in_order};

/// Sets variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run next.
    #[serde(default)]
    pub next: Option<String>,
    /// Variable → expression, evaluated in the order written.
    #[schemars(extend("minProperties" = 1))]
    pub set: BTreeMap<String, ExprText>,
    /// The keys of `set` in the order written (filled by the loader).
    #[serde(skip)]
    #[schemars(skip)]
    pub order: Vec<String>,
}

impl Assign {
    /// The assignments in the order written.
    pub fn assignments(&self) -> Vec<(&str, &ExprText)> {
        in_order(&self.set, &self.order)
    }
}

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
