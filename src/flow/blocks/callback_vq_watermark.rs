//! Callback VQ Watermark: counts the active callbacks of a callback queue (waiting, or being
//! dialled, routed or served) so that a flow stops offering immediate callbacks past a limit.
//! Sets `watermark.count` and `watermark.outcome` (`WATERMARK_OK`, empty when the queue is
//! unknown), as Designer's block does.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, ExprText};

fn watermark_var() -> String {
    "watermark".into()
}

/// Counts a callback queue's active callbacks and branches on a limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackVqWatermark {
    /// Callback virtual queue by name.
    pub queue: Option<String>,
    /// Or an expression giving it.
    pub queue_from: Option<ExprText>,
    /// The count at which `on_reached` is taken (1 to 1000000); without it the block only
    /// sets the variables and continues.
    #[schemars(range(min = 1, max = 1000000))]
    pub max: Option<u32>,
    /// Prefix of the result variables (`watermark.count`, `watermark.outcome`).
    #[serde(default = "watermark_var")]
    pub result: String,
    /// Block when the count is below `max`.
    pub on_below: Option<String>,
    /// Block when the count is `max` or more.
    pub on_reached: Option<String>,
    /// Block when the queue (from `queue_from`) is not configured (default: continue).
    pub on_error: Option<String>,
}

impl BlockType for CallbackVqWatermark {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(on_below, on_reached, on_error);

    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_below.is_none() || self.on_reached.is_none() || self.on_error.is_none()
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        match (&self.queue, &self.queue_from) {
            (Some(q), None) => c.queue("queue", q),
            (None, Some(e)) => c.expr("queue_from", e),
            _ => c.block_err("give exactly one of `queue` and `queue_from`"),
        }
        if let Some(m) = self.max {
            c.range("max", m, 1, 1_000_000);
        }
        if self.max.is_none() {
            for key in ["on_below", "on_reached"] {
                c.at_key(
                    key,
                    format!("`{key}` needs `max` (the limit to compare with)"),
                );
            }
        }
        if self.queue_from.is_none() {
            c.at_key(
                "on_error",
                "`on_error` needs `queue_from` (a named queue is checked at load)",
            );
        }
        c.var_name("result", &self.result);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &CallbackVqWatermark, cx: &mut Cx<'_>) -> Step {
    let queue = match (&b.queue, &b.queue_from) {
        (Some(q), _) => q.clone(),
        (None, Some(e)) => cx.eval(e).to_string(),
        (None, None) => String::new(),
    };
    let r = &b.result;
    // The configuration in force: a reload may have removed the queue.
    if cx.services.callbacks.config().queue(&queue).is_none() {
        cx.set(&format!("{r}.outcome"), "");
        cx.set(&format!("{r}.count"), -1);
        cx.outcome(format!("no callback queue `{queue}`"));
        return Step::Branch(b.on_error.clone());
    }
    let count = cx.services.callbacks.watermark(&queue);
    cx.set(&format!("{r}.outcome"), "WATERMARK_OK");
    cx.set(&format!("{r}.count"), count as i64);
    match b.max {
        Some(max) if count >= max as usize => {
            cx.set(&format!("{r}.reached"), true);
            cx.outcome(format!("{count} active on {queue}: limit {max} reached"));
            Step::Branch(b.on_reached.clone())
        }
        Some(max) => {
            cx.set(&format!("{r}.reached"), false);
            cx.outcome(format!("{count} active on {queue}: below {max}"));
            Step::Branch(b.on_below.clone())
        }
        None => {
            cx.outcome(format!("{count} active on {queue}"));
            Step::Next
        }
    }
}
