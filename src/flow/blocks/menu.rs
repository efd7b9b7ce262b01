//! Menu: one key chooses an option; options may set variables before going on.

use crate::flow::interpreter::{Cx, Step};

use super::user_input::{Ask, Asked, ask, one_key};

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::flow::model::{ExprText, PromptSpec, five, in_order, two};

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
    #[serde(default)]
    pub goto: Option<String>,
    /// Variables to set (expressions), in the order written.
    #[serde(default)]
    pub assign: BTreeMap<String, ExprText>,
    /// The keys of `assign` in the order written (filled by the loader).
    #[serde(skip)]
    #[schemars(skip)]
    pub assign_order: Vec<String>,
}

impl MenuOptionSpec {
    /// The assignments in the order written.
    pub fn assignments(&self) -> Vec<(&str, &ExprText)> {
        in_order(&self.assign, &self.assign_order)
    }
}

/// Plays a menu and branches on one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run after an option without `goto`.
    #[serde(default)]
    pub next: Option<String>,
    /// The menu prompt.
    pub prompts: Vec<PromptSpec>,
    /// Key (`0`-`9`, `*`, `#`) → option.
    #[schemars(extend("propertyNames" = {"pattern": "^[0-9*#]$"}, "minProperties" = 1))]
    pub options: BTreeMap<String, MenuOption>,
    /// Further attempts after a no-input or a wrong key (0 to 9, default 2).
    #[serde(default = "two")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
    /// Seconds to wait for a key after the prompt (1 to 60, default 5).
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,
    /// Played after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<PromptSpec>,
    /// Played after a key with no option.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Block to go to when all attempts failed (default: the next block).
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// Runs the block.
pub async fn run(b: &Menu, cx: &mut Cx<'_>) -> Step {
    let accept = |d: &str| b.options.contains_key(d);
    let asked = ask(
        cx,
        Ask {
            prompts: cx.items(&b.prompts),
            spec: one_key(b.timeout_seconds),
            min_digits: 1,
            attempts: b.retries + 1,
            no_input: cx.items(&b.no_input_prompts),
            no_match: cx.items(&b.no_match_prompts),
            accept: &accept,
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
                    for (name, e) in f.assignments() {
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
