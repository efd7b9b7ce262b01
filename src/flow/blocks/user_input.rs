//! User Input: collects digits with retries, no-input and no-match prompts, a terminator, a
//! length range and a pattern. `ask` is shared with Menu and Callback V2.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::call::{DigitOutcome, DigitSpec, PlayItem};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{PromptSpec, num};

fn hash() -> Option<String> {
    Some("#".into())
}

/// Collects digits into a variable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Variable that receives the digits.
    pub variable: String,
    /// Prompts played before each attempt.
    #[serde(default)]
    pub prompts: Vec<PromptSpec>,
    /// Fewest digits accepted (1 to 32, default 1).
    #[serde(default = "num::<1>")]
    #[schemars(range(min = 1, max = 32))]
    pub min_digits: u32,
    /// Most digits collected (1 to 32, default 16).
    #[serde(default = "num::<16>")]
    #[schemars(range(min = 1, max = 32))]
    pub max_digits: u32,
    /// Key that ends the input (default `#`; null for none).
    #[serde(default = "hash")]
    #[schemars(extend("pattern" = "^[0-9*#]$"))]
    pub terminator: Option<String>,
    /// Seconds to wait for the first digit (1 to 60, default 5).
    #[serde(default = "num::<5>")]
    #[schemars(range(min = 1, max = 60))]
    pub first_digit_timeout_seconds: u32,
    /// Seconds to wait between digits (1 to 30, default 3).
    #[serde(default = "num::<3>")]
    #[schemars(range(min = 1, max = 30))]
    pub inter_digit_timeout_seconds: u32,
    /// Further attempts after a no-input or no-match (0 to 9, default 2).
    #[serde(default = "num::<2>")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
    /// A regular expression the whole input must match.
    pub pattern: Option<String>,
    /// Played after no input, before the retry.
    #[serde(default)]
    pub no_input_prompts: Vec<PromptSpec>,
    /// Played after input that does not match, before the retry.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Block to go to when all attempts failed (default: the next block, with the variable empty).
    pub on_failure: Option<String>,
}

/// One question to the caller, asked up to `attempts` times.
pub struct Ask<'a> {
    /// Played before each attempt (barge-in allowed).
    pub prompts: Vec<PlayItem>,
    /// Digits, terminator and timeouts.
    pub spec: DigitSpec,
    /// Fewest digits accepted.
    pub min_digits: usize,
    /// Total attempts (at least 1).
    pub attempts: u32,
    /// Played after a no-input.
    pub no_input: Vec<PlayItem>,
    /// Played after a rejected answer.
    pub no_match: Vec<PlayItem>,
    /// Accepts or rejects an answer.
    pub accept: &'a (dyn Fn(&str) -> bool + Sync),
}

impl<'a> Ask<'a> {
    /// One key per attempt (menus, survey questions): `retries` further attempts after the
    /// first, nothing extra played before them unless `no_input`/`no_match` are set.
    pub fn one_key(
        prompts: Vec<PlayItem>,
        timeout_seconds: u32,
        retries: u32,
        accept: &'a (dyn Fn(&str) -> bool + Sync),
    ) -> Self {
        Ask {
            prompts,
            spec: one_key(timeout_seconds),
            min_digits: 1,
            attempts: retries + 1,
            no_input: Vec::new(),
            no_match: Vec::new(),
            accept,
        }
    }
}

/// The answer to an `Ask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// An accepted answer.
    Got(String),
    /// Every attempt failed; the last failure was a no-input (`true`) or a no-match.
    Failed {
        /// The last attempt had no input.
        no_input: bool,
        /// Answers given and rejected.
        rejected: Vec<String>,
    },
    /// The caller hung up.
    HungUp,
}

/// Asks until an accepted answer, the attempts run out, or the caller hangs up.
pub async fn ask(cx: &Cx<'_>, a: Ask<'_>) -> Asked {
    let mut rejected = Vec::new();
    let mut no_input = false;
    for attempt in 0..a.attempts.max(1) {
        if attempt > 0 {
            let extra = if no_input { &a.no_input } else { &a.no_match };
            if cx.play_items(extra, true).await.is_none() {
                return Asked::HungUp;
            }
        }
        if cx.play_items(&a.prompts, true).await.is_none() {
            return Asked::HungUp;
        }
        match cx.leg.collect_digits(&a.spec).await {
            Ok(DigitOutcome::HungUp) | Err(_) => return Asked::HungUp,
            Ok(DigitOutcome::NoInput) => no_input = true,
            Ok(DigitOutcome::Digits { digits, .. }) => {
                if digits.len() >= a.min_digits && (a.accept)(&digits) {
                    return Asked::Got(digits);
                }
                if digits.is_empty() {
                    no_input = true;
                } else {
                    no_input = false;
                    rejected.push(digits);
                }
            }
        }
    }
    Asked::Failed { no_input, rejected }
}

/// A spec for one key, as menus use.
pub fn one_key(timeout_seconds: u32) -> DigitSpec {
    DigitSpec {
        max_digits: 1,
        terminator: None,
        first_digit_timeout: Duration::from_secs(timeout_seconds.into()),
        inter_digit_timeout: Duration::from_secs(timeout_seconds.into()),
    }
}

impl BlockType for UserInput {
    const NEXT: Option<&'static str> = Some("Block to run next on success.");

    branches!(on_failure);

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        c.var_name("variable", &self.variable);
        c.prompts("prompts", &self.prompts);
        c.prompts("no_input_prompts", &self.no_input_prompts);
        c.prompts("no_match_prompts", &self.no_match_prompts);
        c.range("min_digits", self.min_digits, 1, 32);
        c.range("max_digits", self.max_digits, 1, 32);
        if self.min_digits > self.max_digits {
            c.at(
                "min_digits",
                format!(
                    "min_digits ({}) is above max_digits ({})",
                    self.min_digits, self.max_digits
                ),
            );
        }
        c.range(
            "first_digit_timeout_seconds",
            self.first_digit_timeout_seconds,
            1,
            60,
        );
        c.range(
            "inter_digit_timeout_seconds",
            self.inter_digit_timeout_seconds,
            1,
            30,
        );
        c.range("retries", self.retries, 0, 9);
        if let Some(t) = &self.terminator {
            c.dtmf_key("terminator", t);
        }
        if let Some(pat) = &self.pattern
            && let Err(e) = regex::Regex::new(&format!("^(?:{pat})$"))
        {
            c.at(
                "pattern",
                format!(
                    "not a valid regular expression: {}",
                    e.to_string().lines().last().unwrap_or("")
                ),
            );
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

async fn run(b: &UserInput, cx: &mut Cx<'_>) -> Step {
    let pattern = b
        .pattern
        .as_ref()
        .and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok());
    let accept = move |d: &str| pattern.as_ref().is_none_or(|re| re.is_match(d));
    let asked = ask(
        cx,
        Ask {
            prompts: cx.items(&b.prompts),
            spec: DigitSpec {
                max_digits: b.max_digits as usize,
                terminator: b.terminator.as_ref().and_then(|t| t.chars().next()),
                first_digit_timeout: Duration::from_secs(b.first_digit_timeout_seconds.into()),
                inter_digit_timeout: Duration::from_secs(b.inter_digit_timeout_seconds.into()),
            },
            min_digits: b.min_digits as usize,
            attempts: b.retries + 1,
            no_input: cx.items(&b.no_input_prompts),
            no_match: cx.items(&b.no_match_prompts),
            accept: &accept,
        },
    )
    .await;
    match asked {
        Asked::Got(d) => {
            cx.outcome(format!("input {d}"));
            cx.set(&b.variable, d);
            Step::Next
        }
        Asked::Failed { no_input, rejected } => {
            cx.outcome(format!(
                "failed ({}{})",
                if no_input { "no input" } else { "no match" },
                if rejected.is_empty() {
                    String::new()
                } else {
                    format!("; rejected {}", rejected.join(", "))
                }
            ));
            cx.set(&b.variable, "");
            Step::Branch(b.on_failure.clone())
        }
        Asked::HungUp => Step::HungUp,
    }
}
