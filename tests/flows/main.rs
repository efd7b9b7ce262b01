//! IVR flows on scripted in-memory calls against the engine core: the shipped flows, each block,
//! flow errors and schema, and the router under stress. One test binary (`cargo test --test
//! flows`); one module of it: `cargo test --test flows blocks::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod blocks;
mod designer;
mod errors;
mod harness;
mod http_request;
mod media_blocks;
mod modules;
mod routing;
mod routing_stress;
mod schema;
mod shipped;
mod transfer;
