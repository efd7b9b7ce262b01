//! SIP over the wire and the user agent: the engine and its user agent against SIPp and baresip,
//! RFC 4475/5118 messages, hardening, the fuzz corpus. One test binary (`cargo test --test sip`);
//! one module of it: `cargo test --test sip wire::`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod baresip;
mod blocks;
mod call_data;
mod conformance;
mod cseq_order;
mod fuzz_corpus;
mod hardening;
mod media_blocks;
mod options;
mod peer;
mod record_route;
mod registrar_auth;
mod torture;
mod ua;
mod virtual_time;
mod wire;
