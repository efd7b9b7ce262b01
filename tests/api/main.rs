//! The HTTP APIs over a real client on loopback: the public callbacks API, administration, rules,
//! agent state, statistics, HTTP hardening. One test binary (`cargo test --test api`); one module
//! of it: `cargo test --test api admin::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_rules;
mod agent_state;
mod edge_cases;
mod ges_conformance;
mod http_hardening;
mod public_api;
mod push;
mod statistics;
