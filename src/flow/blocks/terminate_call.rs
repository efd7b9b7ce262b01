//! Terminate Call: ends the call with the given cause.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, EndCause};

/// Ends the call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateCall {
    /// How the call ends.
    #[serde(default)]
    pub cause: EndCause,
}

impl BlockType for TerminateCall {
    const NEXT: Option<&'static str> = None;

    fn falls_through(&self, _kind: AppKind) -> bool {
        false
    }

    fn check(&self, _c: &mut BlockCheck<'_>) {}

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &TerminateCall, cx: &mut Cx<'_>) -> Step {
    cx.outcome(format!("end ({:?})", b.cause).to_lowercase());
    Step::End(b.cause)
}
