//! Callbacks and Click-to-Call-In end to end: lifecycle, booking rules, call-in over SIP and across
//! restarts, crash recovery, the dialer over SIP. One test binary (`cargo test --test callbacks`);
//! one module of it: `cargo test --test callbacks callin_durability::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod amd;
mod callin_durability;
mod callin_wire;
mod calling_hours_wire;
mod cluster_nodes;
mod cluster_shared;
mod cluster_wake;
mod crash_recovery;
mod dialer_wire;
mod lifecycle;
mod push_sigkill;
mod rules;
mod sales_line_wire;
