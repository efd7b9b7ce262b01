//! Play Message: prompts in order; with barge-in a key stops them and waits for the next input.

use crate::call::PlayOutcome;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::PlayMessage;

/// Runs the block.
pub async fn run(b: &PlayMessage, cx: &mut Cx<'_>) -> Step {
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
