//! Answering-machine detection settings of a queue (`queues[].amd`).

use serde::{Deserialize, Serialize};

/// What the engine does when answering-machine detection hears a machine.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MachineAction {
    /// Run the callback application as for a person.
    #[default]
    Connect,
    /// Play `message_prompt` after the greeting and complete the callback (MESSAGE_LEFT).
    Message,
    /// Hang up; the answer counts as a failed attempt (retry at the retry interval).
    Retry,
}

/// Answering-machine detection for a queue's outbound callbacks.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AmdSpec {
    /// What to do with a machine: `connect` (default), `message` or `retry`.
    #[serde(default)]
    pub on_machine: MachineAction,
    /// Prompt played to a machine with `on_machine: message` (from the prompt directory).
    #[serde(default)]
    pub message_prompt: Option<String>,
    /// Longest greeting (ms) a person gives before pausing (300–5000). Default 1500.
    #[serde(default = "d_amd_human")]
    pub max_human_greeting_ms: u32,
    /// Speech (ms) without a pause that is a recorded greeting (1000–10000). Default 2600.
    #[serde(default = "d_amd_machine")]
    pub machine_greeting_ms: u32,
    /// Analysis time (ms) after which the answer is unknown and connected (2000–15000).
    /// Default 5000.
    #[serde(default = "d_amd_max")]
    pub max_analysis_ms: u32,
}

fn d_amd_human() -> u32 {
    1500
}
fn d_amd_machine() -> u32 {
    2600
}
fn d_amd_max() -> u32 {
    5000
}

impl AmdSpec {
    /// The detector's cadence rules for this queue.
    pub fn timings(&self) -> crate::media::voice::AmdTimings {
        crate::media::voice::AmdTimings {
            max_human_greeting_ms: self.max_human_greeting_ms,
            machine_greeting_ms: self.machine_greeting_ms,
            max_analysis_ms: self.max_analysis_ms,
            ..Default::default()
        }
    }
}
