//! Terminate Call: ends the call with the given cause.

use crate::flow::interpreter::{Cx, Step};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::flow::model::EndCause;

/// Ends the call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateCall {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// How the call ends.
    #[serde(default)]
    pub cause: EndCause,
}

/// Runs the block.
pub fn run(b: &TerminateCall, cx: &mut Cx<'_>) -> Step {
    cx.outcome(format!("end ({:?})", b.cause).to_lowercase());
    Step::End(b.cause)
}
