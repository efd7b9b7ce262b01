//! Boomerang: a SIP-facing contact-centre engine with IVR flows, virtual queues and callbacks.
//!
//! The map of modules and the seams between them is in `ARCHITECTURE.md`.

pub mod agents;
pub mod api;
pub mod audit;
pub mod call;
pub mod callback;
pub mod callin;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod diagnostics;
pub mod engine;
pub mod flow;
pub mod media;
pub mod net;
pub mod ops;
pub mod push;
pub mod recordings;
pub mod routing;
pub mod rules;
pub mod sip;
pub mod store;
pub(crate) mod throttle;
pub mod ui;
pub mod users;
pub mod yaml;
