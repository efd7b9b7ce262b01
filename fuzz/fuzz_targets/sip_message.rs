//! Fuzz target for the SIP wire entry points `boomerang::sip::message::parse` (one datagram or
//! framed message) and `framing` (TCP stream framing). Property: no panic, frames stay inside
//! the buffer, and every accepted message re-serialises and re-parses (see `check.rs`, which
//! `tests/sip/fuzz_corpus.rs` also runs on stable over the committed corpus).
//!
//! Running it needs a nightly toolchain and cargo-fuzz (libFuzzer with sanitizers):
//!
//! ```text
//! rustup toolchain install nightly
//! cargo install cargo-fuzz
//! cd fuzz            # or stay at the repository root: cargo fuzz finds ./fuzz
//! cargo +nightly fuzz run sip_message corpus/sip_message -- -max_len=4096 -max_total_time=600
//! ```
//!
//! The seed corpus `fuzz/corpus/sip_message/` holds the 49 RFC 4475 torture messages and a
//! few ordinary requests, responses and a TCP stream with keep-alives. libFuzzer adds the
//! inputs it finds interesting to that directory; commit the small ones worth keeping. A crash
//! leaves its input in `fuzz/artifacts/sip_message/`: reproduce it with
//! `cargo +nightly fuzz run sip_message fuzz/artifacts/sip_message/crash-…`, shrink it with
//! `cargo +nightly fuzz tmin sip_message <file>`, and add it to the corpus with the fix so the
//! stable test (`cargo test --test sip fuzz_corpus::`) guards it from then on.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});
