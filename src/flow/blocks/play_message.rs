//! Play Message: prompts in order; with barge-in a key stops them and waits for the next input.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::call::PlayOutcome;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{PromptSpec, yes};

/// Plays prompts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayMessage {
    /// What to play, in order.
    #[schemars(length(min = 1))]
    pub prompts: Vec<PromptSpec>,
    /// A key press stops the prompt and is kept for the next input block (default true).
    #[serde(default = "yes")]
    pub barge_in: bool,
}

impl BlockType for PlayMessage {
    const NEXT: Option<&'static str> = Some("Block to run next instead of the one below.");

    fn check(&self, c: &mut BlockCheck<'_>) {
        if self.prompts.is_empty() {
            c.at("prompts", "give at least one prompt");
        }
        c.prompts("prompts", &self.prompts);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

async fn run(b: &PlayMessage, cx: &mut Cx<'_>) -> Step {
    match cx.play(&b.prompts, b.barge_in).await {
        None => Step::HungUp,
        Some(PlayOutcome::Interrupted(k)) => {
            cx.outcome(format!("interrupted by {k}"));
            Step::Next
        }
        Some(_) => {
            cx.outcome("played");
            Step::Next
        }
    }
}
