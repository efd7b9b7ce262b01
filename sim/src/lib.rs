//! `boomerang-sim`: callers and agents for load-testing a boomerang configuration.
//!
//! Virtual mode runs the engine's own core (router, flows, callbacks, dialer) on in-memory
//! call legs and tokio's paused clock, so a simulated day passes in seconds and a seed replays
//! the same run. Wire mode ([`wire`]) drives a running engine over SIP in real time.

pub mod dist;
pub mod erlang;
pub mod legs;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sip_mode;
pub mod store;
pub mod wire;

pub use report::Report;
pub use run::{Mode, RunOptions, SimError, run};
pub use scenario::Scenario;
pub use wire::{WireOptions, WireStats};
