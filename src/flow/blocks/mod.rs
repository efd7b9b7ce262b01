//! One file per block type; `run` dispatches a block to its file.

pub mod assign;
pub mod branch;
pub mod business_hours;
pub mod callback_v2;
pub mod click_to_call_in_match;
pub mod menu;
pub mod play_message;
pub mod route_call;
pub mod terminate_call;
pub mod user_input;

use super::interpreter::{Cx, Step};
use schemars::JsonSchema;
use serde::Deserialize;

use super::model::*;

/// Runs one block.
pub async fn run(block: &Block, cx: &mut Cx<'_>) -> Step {
    match block {
        Block::PlayMessage(b) => play_message::run(b, cx).await,
        Block::UserInput(b) => user_input::run(b, cx).await,
        Block::Menu(b) => menu::run(b, cx).await,
        Block::Assign(b) => assign::run(b, cx),
        Block::If(b) => branch::run(b, cx),
        Block::BusinessHours(b) => business_hours::run(b, cx),
        Block::CallbackV2(b) => callback_v2::run(b, cx).await,
        Block::ClickToCallInMatch(b) => click_to_call_in_match::run(b, cx).await,
        Block::RouteCall(b) => route_call::run(b, cx).await,
        Block::TerminateCall(b) => terminate_call::run(b, cx),
    }
}

/// A block; `type` selects it.
// Blocks are built once when a flow loads and read in place, so their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plays prompts.
    PlayMessage(PlayMessage),
    /// Collects digits.
    UserInput(UserInput),
    /// A menu.
    Menu(Menu),
    /// Sets variables.
    Assign(Assign),
    /// Segmentation.
    If(If),
    /// Business hours branch.
    BusinessHours(BusinessHoursCheck),
    /// Callback offer / callback customer side.
    CallbackV2(CallbackV2),
    /// Click-to-Call-In Match.
    ClickToCallInMatch(ClickToCallInMatch),
    /// Route to an agent.
    RouteCall(RouteCall),
    /// End the call.
    TerminateCall(TerminateCall),
}

/// Block type names as written in YAML.
pub const BLOCK_TYPES: &[&str] = &[
    "play_message",
    "user_input",
    "menu",
    "assign",
    "if",
    "business_hours",
    "callback_v2",
    "click_to_call_in_match",
    "route_call",
    "terminate_call",
];

impl Block {
    /// The YAML type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Block::PlayMessage(_) => "play_message",
            Block::UserInput(_) => "user_input",
            Block::Menu(_) => "menu",
            Block::Assign(_) => "assign",
            Block::If(_) => "if",
            Block::BusinessHours(_) => "business_hours",
            Block::CallbackV2(_) => "callback_v2",
            Block::ClickToCallInMatch(_) => "click_to_call_in_match",
            Block::RouteCall(_) => "route_call",
            Block::TerminateCall(_) => "terminate_call",
        }
    }

    /// The author's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            Block::PlayMessage(b) => b.id.as_deref(),
            Block::UserInput(b) => b.id.as_deref(),
            Block::Menu(b) => b.id.as_deref(),
            Block::Assign(b) => b.id.as_deref(),
            Block::If(b) => b.id.as_deref(),
            Block::BusinessHours(b) => b.id.as_deref(),
            Block::CallbackV2(b) => b.id.as_deref(),
            Block::ClickToCallInMatch(b) => b.id.as_deref(),
            Block::RouteCall(b) => b.id.as_deref(),
            Block::TerminateCall(b) => b.id.as_deref(),
        }
    }

    /// The explicit `next`, if any.
    pub fn next(&self) -> Option<&str> {
        match self {
            Block::PlayMessage(b) => b.next.as_deref(),
            Block::UserInput(b) => b.next.as_deref(),
            Block::Menu(b) => b.next.as_deref(),
            Block::Assign(b) => b.next.as_deref(),
            Block::If(b) => b.next.as_deref(),
            Block::BusinessHours(b) => b.next.as_deref(),
            Block::CallbackV2(b) => b.next.as_deref(),
            Block::ClickToCallInMatch(b) => b.next.as_deref(),
            Block::RouteCall(b) => b.next.as_deref(),
            Block::TerminateCall(_) => None,
        }
    }

    /// Branch targets with the YAML key that names each, for validation and graph checks.
    pub fn branches(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |key: &str, t: &Option<String>| {
            if let Some(t) = t {
                out.push((key.to_string(), t.clone()));
            }
        };
        match self {
            Block::UserInput(b) => add("on_failure", &b.on_failure),
            Block::Menu(b) => {
                add("on_failure", &b.on_failure);
                for (k, o) in &b.options {
                    match o {
                        MenuOption::Goto(t) => add(&format!("options.{k}"), &Some(t.clone())),
                        MenuOption::Full(f) => add(&format!("options.{k}.goto"), &f.goto),
                    }
                }
            }
            Block::If(b) => {
                for (i, c) in b.conditions.iter().enumerate() {
                    add(&format!("conditions[{i}].goto"), &Some(c.goto.clone()));
                }
                add("otherwise", &b.otherwise);
            }
            Block::BusinessHours(b) => {
                add("open", &b.open);
                add("closed", &b.closed);
                add("special", &b.special);
            }
            Block::CallbackV2(b) => {
                add("on_accepted", &b.on_accepted);
                add("on_declined", &b.on_declined);
                add("on_not_offered", &b.on_not_offered);
            }
            Block::ClickToCallInMatch(b) => {
                add("on_matched", &b.on_matched);
                add("on_no_match", &b.on_no_match);
                add("on_blocked", &b.on_blocked);
                add("on_unroutable", &b.on_unroutable);
            }
            Block::RouteCall(b) => {
                add("on_connected", &b.on_connected);
                add("on_timeout", &b.on_timeout);
            }
            Block::PlayMessage(_) | Block::Assign(_) | Block::TerminateCall(_) => {}
        }
        out
    }

    /// Whether the block waits for the caller (so a loop through it is not a busy loop).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Block::UserInput(_) | Block::Menu(_) | Block::CallbackV2(_) | Block::RouteCall(_)
        )
    }
}
