//! Menu: one key chooses an option; options may set variables before going on.

use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{Menu, MenuOption};

use super::user_input::{Ask, Asked, ask, one_key};

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
