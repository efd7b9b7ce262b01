//! Call Module (Designer's shared modules): runs another flow file of the flows directory on
//! the same call, with inputs set from expressions and outputs copied back when it returns.
//! Modules are linked when the flows directory loads (`flow::modules`): a missing module or a
//! cycle is a load error at the `module` property; nesting is bounded again at run time.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::diagnostics::Pos;
use crate::flow::check::{BlockCheck, valid_variable, value_pos};
use crate::flow::expr::{Value, Variables};
use crate::flow::interpreter::{Cx, MAX_MODULE_DEPTH, PartEnd, Step, run_module};
use crate::yaml::{self, Node};

/// Runs a module (another flow file) with inputs and outputs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallModule {
    /// The module: a flow file of the flows directory (e.g. `identify.yaml`), of the same
    /// application type.
    pub module: String,
    /// The module's variable → an expression evaluated here, set before it starts.
    #[serde(default)]
    pub inputs: BTreeMap<String, crate::flow::model::ExprText>,
    /// A variable here → the module's variable whose value it takes when the module returns.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Block when the module cannot run (nested too deep; not linked).
    pub on_error: Option<String>,
    /// Where `module` is written (for link errors).
    #[serde(skip)]
    #[schemars(skip)]
    pub module_pos: Pos,
}

impl BlockType for CallModule {
    const NEXT: Option<&'static str> = Some("Block to run when the module returns.");

    branches!(on_error);

    // A module that loops must wait for the caller itself (its own graph is checked); one that
    // returns at once cannot make a busy loop of this block's, but the step limit stays the net.
    const WAITS: bool = false;

    fn decoded(&mut self, node: &Node) {
        self.module_pos = value_pos(node, "module");
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        let m = &self.module;
        let file_name = std::path::Path::new(m)
            .file_name()
            .is_some_and(|f| f == m.as_str());
        if !file_name || !(m.ends_with(".yaml") || m.ends_with(".yml")) {
            c.at(
                "module",
                format!("`{m}` is not a flow file name of the flows directory (`name.yaml`)"),
            );
        }
        let node = c.node.get("inputs");
        let path = yaml::join(c.path, "inputs");
        c.assignments(node, c.node.pos, &path, &self.inputs);
        let node = c.node.get("outputs");
        for (here, there) in &self.outputs {
            let kpos = c.key_pos(node, here);
            let p = format!("{}.{here}", yaml::join(c.path, "outputs"));
            c.var_name_at(kpos, &p, here);
            if !valid_variable(there) {
                let vpos = node.map(|n| value_pos(n, here)).unwrap_or(c.node.pos);
                c.var_name_at(vpos, &p, there);
            }
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        let Some(module) = cx.flow.modules.get(&self.module).cloned() else {
            cx.set("module.error", "not_linked");
            cx.outcome(format!("module {} is not loaded", self.module));
            return Step::Branch(self.on_error.clone());
        };
        // The module starts from its own variables, the call's system variables and the inputs.
        let mut vars: Variables = module.variables.clone();
        for k in ["ani", "dnis", "call_id", "route_point", "now"] {
            if let Some(v) = cx.vars.get(k) {
                vars.insert(k.to_string(), v.clone());
            }
        }
        for (k, e) in &self.inputs {
            vars.insert(k.clone(), cx.eval(e));
        }
        let Some(done) = run_module(cx, &module, vars).await else {
            cx.set("module.error", "depth");
            cx.outcome(format!(
                "module {} not run: more than {MAX_MODULE_DEPTH} nested modules",
                self.module
            ));
            return Step::Branch(self.on_error.clone());
        };
        for (here, there) in &self.outputs {
            let v = done
                .vars
                .get(there)
                .cloned()
                .unwrap_or(Value::Str(String::new()));
            cx.set(here, v);
        }
        cx.set("module.error", "");
        match done.end {
            PartEnd::FlowEnd => {
                cx.outcome(format!("{} returned", self.module));
                Step::Next
            }
            PartEnd::End(cause) => {
                cx.outcome(format!("{} ended the call", self.module));
                Step::End(cause)
            }
            PartEnd::HungUp => Step::HungUp,
            PartEnd::StepLimit => {
                cx.outcome(format!("{}: step limit", self.module));
                Step::End(crate::flow::model::EndCause::Normal)
            }
        }
    }
}

/// The modules a flow's `call_module` blocks name, with where each is written.
pub fn calls(blocks: &[crate::flow::load::FlowBlock]) -> Vec<(&str, Pos, String)> {
    blocks
        .iter()
        .filter_map(|b| match &b.block {
            super::Block::CallModule(m) => Some((
                m.module.as_str(),
                m.module_pos,
                format!("{}.module", b.label),
            )),
            _ => None,
        })
        .collect()
}
