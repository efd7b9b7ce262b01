//! The `sip_message` fuzz target's property on stable Rust: `framing` and `parse` never panic,
//! frames stay inside the buffer, and every accepted message re-serialises and re-parses.
//!
//! Runs over the committed seed corpus `fuzz/corpus/sip_message/` (the RFC 4475 torture
//! messages, a few ordinary messages, and whatever the fuzzer found and was committed), plus
//! deterministic mutations of every seed made here with a fixed-seed generator, so a failure
//! reproduces exactly. The real fuzzer (`fuzz/fuzz_targets/sip_message.rs`) needs nightly.

use std::path::PathBuf;

#[path = "../../fuzz/fuzz_targets/check.rs"]
mod check;

/// Mutations made from each seed.
const MUTATIONS_PER_SEED: usize = 12;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sip_message");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(e.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, data)
        })
        .collect();
    files.sort();
    files
}

/// SplitMix64: small, fixed, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the SIP grammar.
const INTERESTING: &[u8] = b"\r\n \t:;,=<>\"\\%@/0\x00\xff\x80?&";
/// Fragments that stress particular headers and limits.
const FRAGMENTS: &[&[u8]] = &[
    b"\r\n ",
    b"\r\n\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"l: 0\r\n",
    b"Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK;rport\r\n",
    b"CSeq: 4294967296 INVITE\r\n",
    b"Max-Forwards: -1\r\n",
    b";tag=",
    b"<sip:a@b;lr>",
    b"\"\\\"",
    b"%00",
    b"sips:",
    b"SIP/2.0 ",
    b"\xe2\x82\xac",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = d.len();
        match rng.below(10) {
            // Flip one bit.
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            // Replace a byte with a grammar byte.
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            // Delete a range.
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                d.drain(i..i + n);
            }
            // Duplicate a range in place.
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk: Vec<u8> = d[i..i + n].to_vec();
                d.splice(i..i, chunk);
            }
            // Insert a fragment.
            4 => {
                let i = rng.below(len + 1);
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                d.splice(i..i, f.iter().copied());
            }
            // Truncate.
            5 if len > 0 => d.truncate(rng.below(len)),
            // Splice in part of another seed.
            6 if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                let n = 1 + rng.below((other.len() - j).min(256));
                d.splice(i..i, other[j..j + n].iter().copied());
            }
            // Swap two header lines.
            7 => {
                let mut lines: Vec<Vec<u8>> =
                    d.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 3 {
                    let a = 1 + rng.below(lines.len() - 2);
                    let b = 1 + rng.below(lines.len() - 2);
                    lines.swap(a, b);
                    d = lines.join(&b'\n');
                }
            }
            // Change a number somewhere (Content-Length, CSeq, port, status code).
            8 => {
                if let Some(i) = (0..len)
                    .cycle()
                    .skip(rng.below(len.max(1)))
                    .take(len)
                    .find(|&i| d[i].is_ascii_digit())
                {
                    d[i] = b'0' + rng.below(10) as u8;
                    if rng.below(3) == 0 {
                        d.insert(i, b'9');
                    }
                }
            }
            // Two messages back to back (stream framing).
            _ => {
                let copy = d.clone();
                d.extend_from_slice(&copy);
            }
        }
    }
    d
}

#[test]
fn seed_corpus_never_panics_and_accepted_messages_round_trip() {
    let files = corpus();
    assert!(files.len() >= 49, "corpus has {} files", files.len());
    let mut accepted = 0;
    for (name, data) in &files {
        let ok = std::panic::catch_unwind(|| check::check(data));
        assert!(ok.is_ok(), "seed {name} broke the property");
        accepted += usize::from(boomerang::sip::message::parse(data).is_ok());
    }
    // RFC 4475 §3.1.1 (but the rsip limits listed in tests/sip/torture.rs), the
    // syntactically valid §3.2–3.4 messages and our datagram seeds parse (26 today); the round
    // trip above covered them.
    assert!(accepted >= 25, "only {accepted} seeds parsed");
}

#[test]
fn deterministic_mutations_never_panic_and_accepted_ones_round_trip() {
    let files = corpus();
    let mut rng = Rng(0x5EED_0FB0_0E2A_6E00);
    let (mut total, mut accepted) = (0usize, 0usize);
    for (i, (name, seed)) in files.iter().enumerate() {
        let other = &files[(i + 7) % files.len()].1;
        for m in 0..MUTATIONS_PER_SEED {
            let input = mutate(&mut rng, seed, other);
            let ok = std::panic::catch_unwind(|| check::check(&input));
            if ok.is_err() {
                panic!(
                    "mutation {m} of {name} broke the property; input:\n{}",
                    String::from_utf8_lossy(&input)
                );
            }
            total += 1;
            accepted += usize::from(boomerang::sip::message::parse(&input).is_ok());
        }
    }
    assert!(total >= 500, "{total} mutations");
    // Some mutations must still be valid messages, or the round trip was never exercised.
    assert!(accepted > 0, "no mutation parsed");
    eprintln!("{total} mutations, {accepted} accepted and round-tripped");
}
