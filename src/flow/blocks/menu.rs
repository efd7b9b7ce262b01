//! Menu: one key chooses an option; options may set variables before going on.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::user_input::{Ask, Asked, ask};
use super::{BlockType, targets};
use crate::flow::check::{BlockCheck, is_dtmf_key};
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, Assignments, PromptSpec, num};
use crate::yaml::Node;

/// A menu option: a block to go to, or a map that also assigns variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MenuOption {
    /// Id of the block to go to.
    Goto(String),
    /// Assign variables, then go to a block (or continue after the menu).
    Full(MenuOptionSpec),
}

/// A menu option with assignments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuOptionSpec {
    /// Block to go to; continue after the menu when absent.
    pub goto: Option<String>,
    /// Variables to set (expressions), in the order written.
    #[serde(default)]
    pub assign: Assignments,
}

/// Plays a menu and branches on one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// The menu prompt.
    pub prompts: Vec<PromptSpec>,
    /// Key (`0`-`9`, `*`, `#`) → option.
    #[schemars(extend("propertyNames" = {"pattern": "^[0-9*#]$"}, "minProperties" = 1))]
    pub options: BTreeMap<String, MenuOption>,
    /// Further attempts after a no-input or a wrong key (0 to 9, default 2).
    #[serde(default = "num::<2>")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
    /// Seconds to wait for a key after the prompt (1 to 60, default 5).
    #[serde(default = "num::<5>")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,
    /// Played after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<PromptSpec>,
    /// Played after a key with no option.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Block to go to when all attempts failed (default: the next block).
    pub on_failure: Option<String>,
}

impl BlockType for Menu {
    const NEXT: Option<&'static str> = Some("Block to run after an option without `goto`.");

    fn branches(&self) -> Vec<(String, String)> {
        let mut out = targets(&[("on_failure", &self.on_failure)]);
        for (k, o) in &self.options {
            match o {
                MenuOption::Goto(t) => out.push((format!("options.{k}"), t.clone())),
                MenuOption::Full(f) => {
                    out.extend(targets(&[(&format!("options.{k}.goto"), &f.goto)]));
                }
            }
        }
        out
    }

    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_failure.is_none()
            || self
                .options
                .values()
                .any(|o| matches!(o, MenuOption::Full(f) if f.goto.is_none()))
    }

    const WAITS: bool = true;

    fn decoded(&mut self, node: &Node) {
        for (key, opt) in self.options.iter_mut() {
            if let MenuOption::Full(f) = opt {
                f.assign.read_order(
                    node.get("options")
                        .and_then(|o| o.get(key))
                        .and_then(|o| o.get("assign")),
                );
            }
        }
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        c.prompts("prompts", &self.prompts);
        c.prompts("no_input_prompts", &self.no_input_prompts);
        c.prompts("no_match_prompts", &self.no_match_prompts);
        c.range("retries", self.retries, 0, 9);
        c.range("timeout_seconds", self.timeout_seconds, 1, 60);
        if self.options.is_empty() {
            c.at("options", "a menu needs at least one option");
        }
        let opts = c.node.get("options");
        for (key, opt) in &self.options {
            let kpos = c.key_pos(opts, key);
            let kpath = format!("{}.options.{key}", c.path);
            if !is_dtmf_key(key) {
                c.err(kpos, &kpath, "a menu option is one key: 0-9, * or #");
            }
            if let MenuOption::Full(f) = opt {
                let assign = opts.and_then(|o| o.get(key)).and_then(|o| o.get("assign"));
                c.assignments(assign, kpos, &format!("{kpath}.assign"), &f.assign);
            }
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

async fn run(b: &Menu, cx: &mut Cx<'_>) -> Step {
    let accept = |d: &str| b.options.contains_key(d);
    let asked = ask(
        cx,
        Ask {
            no_input: cx.items(&b.no_input_prompts),
            no_match: cx.items(&b.no_match_prompts),
            ..Ask::one_key(cx.items(&b.prompts), b.timeout_seconds, b.retries, &accept)
        },
    )
    .await;
    match asked {
        Asked::Got(key) => {
            cx.outcome(format!("option {key}"));
            cx.set("menu.choice", key.clone());
            match b.options.get(&key) {
                Some(MenuOption::Goto(t)) => Step::Branch(Some(t.clone())),
                Some(MenuOption::Full(f)) => {
                    for (name, e) in f.assign.in_order() {
                        let v = cx.eval(e);
                        cx.set(name, v);
                    }
                    Step::Branch(f.goto.clone())
                }
                None => Step::Next,
            }
        }
        Asked::Failed { no_input, .. } => {
            cx.outcome(if no_input {
                "failed (no input)"
            } else {
                "failed (no match)"
            });
            Step::Branch(b.on_failure.clone())
        }
        Asked::HungUp => Step::HungUp,
    }
}
