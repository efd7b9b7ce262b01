//! The real binary as an operator runs it: serve, shutdown and metrics, the CLI, check-config,
//! packaging, the README's examples. One test binary (`cargo test --test ops`); one module of it:
//! `cargo test --test ops check_config::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod check_config;
mod cli;
mod cluster_agents;
mod cluster_front;
mod cluster_sip;
mod packaging;
mod readme_examples;
mod serve;
