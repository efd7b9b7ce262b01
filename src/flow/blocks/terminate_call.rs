//! Terminate Call: ends the call with the given cause.

use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::TerminateCall;

/// Runs the block.
pub fn run(b: &TerminateCall, cx: &mut Cx<'_>) -> Step {
    cx.outcome(format!("end ({:?})", b.cause).to_lowercase());
    Step::End(b.cause)
}
