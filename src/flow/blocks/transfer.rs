//! Transfer: blind transfer of the caller to a number. When the caller's phone accepts REFER
//! (its INVITE listed it in Allow or Supported), it is asked to call the number through the
//! trunk itself (RFC 3515, the outcome from its NOTIFYs); otherwise, or when it refuses the
//! REFER, the engine places a new call through the trunk and bridges the caller to it until
//! one side hangs up. The result is an outcome (`transferred`, `busy`, `no_answer`, `failed`),
//! each with its branch.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::call::{Dial, DialResult, DialTarget, HangupCause, ReferOutcome};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{AppKind, EndCause, ExprText, num};

/// Blind transfer of the caller to a number, with the result as an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The number to transfer to (digits, optionally with a leading `+`), or a SIP URI
    /// (`sip:desk@pbx.example.com:5070`) called directly rather than through the trunk.
    pub to: Option<String>,
    /// Or an expression giving it.
    pub to_from: Option<ExprText>,
    /// The trunk to call through (default: the first configured).
    pub trunk: Option<String>,
    /// Seconds the new call may ring (5 to 300, default 30).
    #[serde(default = "num::<30>")]
    #[schemars(range(min = 5, max = 300))]
    pub ring_timeout_seconds: u32,
    /// Block after the transferred conversation ended (default: end the call).
    pub on_transferred: Option<String>,
    /// Block when the number was busy.
    pub on_busy: Option<String>,
    /// Block when nobody answered in time.
    pub on_no_answer: Option<String>,
    /// Block when the call could not be placed (refused, unreachable, a bad number).
    pub on_failed: Option<String>,
}

/// Whether `n` is a number the trunk can be asked to call.
fn valid_number(n: &str) -> bool {
    let digits = n.strip_prefix('+').unwrap_or(n);
    (2..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `t` is a target: a number, or a SIP URI with a user and a host.
fn valid_target(t: &str) -> bool {
    valid_number(t) || crate::sip::leg::uri_host_port(t).is_some()
}

impl BlockType for Transfer {
    const NEXT: Option<&'static str> = Some("Block to run when the taken branch has no target.");

    branches!(on_transferred, on_busy, on_no_answer, on_failed);

    fn falls_through(&self, _kind: AppKind) -> bool {
        self.on_busy.is_none() || self.on_no_answer.is_none() || self.on_failed.is_none()
    }

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        match (&self.to, &self.to_from) {
            (Some(n), None) if !valid_target(n) => c.at(
                "to",
                format!(
                    "`{n}` is neither a number to call (2 to 20 digits, optionally after `+`) \
                     nor a SIP URI (`sip:user@host[:port]`)"
                ),
            ),
            (Some(_), None) => {}
            (None, Some(e)) => c.expr("to_from", e),
            _ => c.block_err("give exactly one of `to` and `to_from`"),
        }
        if let Some(t) = &self.trunk {
            let known: Vec<&str> = c
                .ctx
                .config
                .spec
                .trunks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            if !known.contains(&t.as_str()) {
                c.at(
                    "trunk",
                    format!(
                        "no trunk `{t}` in the configuration{}",
                        crate::diagnostics::suggest(t, &known)
                    ),
                );
            }
        }
        c.range("ring_timeout_seconds", self.ring_timeout_seconds, 5, 300);
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// The outcome's name and branch for the final status of a call to the target.
fn result_of(b: &Transfer, code: u16) -> (&'static str, Option<String>) {
    match code {
        486 | 600 => ("busy", b.on_busy.clone()),
        408 | 480 | 487 => ("no_answer", b.on_no_answer.clone()),
        _ => ("failed", b.on_failed.clone()),
    }
}

/// Transfers by REFER; `None` when the phone refused it (the engine bridges instead).
async fn by_refer(b: &Transfer, cx: &mut Cx<'_>, number: &str, ring: Duration) -> Option<Step> {
    let uri = if valid_number(number) {
        let config = cx.services.callbacks.config();
        let Some(trunk) = config.trunk(b.trunk.as_deref()) else {
            cx.set("transfer.result", "failed");
            cx.outcome(format!("{number}: failed (no trunk)"));
            return Some(Step::Branch(b.on_failed.clone()));
        };
        format!("sip:{number}@{}:{}", trunk.host, trunk.port)
    } else {
        number.to_string()
    };
    let leg = cx.leg.clone();
    // The phone rings the target: its ring time, and a little more for the signalling.
    let outcome = leg.refer(&uri, ring + Duration::from_secs(5)).await;
    cx.set("transfer.method", "refer");
    let code = match outcome {
        Err(_) => return Some(Step::HungUp),
        Ok(ReferOutcome::Refused(code)) => {
            tracing::info!(number, code, "REFER refused: bridging instead");
            return None;
        }
        Ok(ReferOutcome::NoReport) => 408,
        Ok(ReferOutcome::Final(code)) => code,
    };
    if (200..300).contains(&code) {
        cx.set("transfer.result", "transferred");
        cx.outcome(format!("transferred to {number} by REFER"));
        // The caller's phone now talks to the target: our dialog with it ends.
        return Some(Step::End(EndCause::Normal));
    }
    if leg.is_ended() {
        return Some(Step::HungUp);
    }
    let (result, branch) = result_of(b, code);
    cx.set("transfer.result", result);
    cx.outcome(format!("{number}: {result} (REFER, {code})"));
    Some(Step::Branch(branch))
}

async fn run(b: &Transfer, cx: &mut Cx<'_>) -> Step {
    let number = match (&b.to, &b.to_from) {
        (Some(n), _) => n.clone(),
        (None, Some(e)) => cx.eval(e).to_string(),
        (None, None) => String::new(),
    };
    cx.set("transfer.to", number.clone());
    if !valid_target(&number) {
        cx.set("transfer.result", "failed");
        cx.outcome(format!("failed: `{number}` is not a number or SIP URI"));
        return Step::Branch(b.on_failed.clone());
    }
    let ring = Duration::from_secs(b.ring_timeout_seconds.into());
    let leg = cx.leg.clone();
    if leg.accepts_refer()
        && let Some(step) = by_refer(b, cx, &number, ring).await
    {
        return step;
    }
    cx.set("transfer.method", "bridge");
    let target = if valid_number(&number) {
        DialTarget::Customer {
            number: number.clone(),
            trunk: b.trunk.clone(),
        }
    } else {
        DialTarget::Uri {
            uri: number.clone(),
        }
    };
    let ani = leg.info().ani.clone();
    let dialled = tokio::select! {
        r = cx.services.agents.dial(Dial::new(&target, &ani, ring)) => r,
        _ = leg.hung_up() => {
            cx.set("transfer.result", "abandoned");
            return Step::HungUp;
        }
    };
    let far = match dialled {
        Ok(far) => far,
        Err(r) => {
            let (result, branch) = result_of(
                b,
                match r {
                    DialResult::Busy => 486,
                    DialResult::NoAnswer => 480,
                    _ => 500,
                },
            );
            cx.set("transfer.result", result);
            cx.outcome(format!("{number}: {result}"));
            return Step::Branch(branch);
        }
    };
    if leg.is_ended() {
        let _ = far.hang_up(HangupCause::Normal).await;
        return Step::HungUp;
    }
    cx.set("transfer.result", "transferred");
    let end = leg.bridge(far.clone()).await;
    if !far.is_ended() {
        let _ = far.hang_up(HangupCause::Normal).await;
    }
    cx.outcome(match end {
        Ok(crate::call::BridgeEnd::ThisSide) => format!("transferred to {number} (caller hung up)"),
        Ok(crate::call::BridgeEnd::OtherSide) => {
            format!("transferred to {number} (far end hung up)")
        }
        Err(e) => format!("transferred to {number} (bridge ended: {e})"),
    });
    if leg.is_ended() {
        return Step::HungUp;
    }
    match &b.on_transferred {
        Some(t) => Step::Branch(Some(t.clone())),
        None => Step::End(EndCause::Normal),
    }
}
