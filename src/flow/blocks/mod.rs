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
use super::model::Block;

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
