//! The property shared by the `sip_message` fuzz target and the stable corpus test
//! (`tests/sip/fuzz_corpus.rs`): whatever the bytes, `framing` and `parse` return instead of
//! panicking, `framing` only points inside the buffer, and every message `parse` accepts
//! serialises to bytes that parse again and serialise the same way (a fixed point).

use boomerang::sip::message::{Frame, framing, parse, to_bytes};

/// Panics (the fuzzer's crash) when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    match framing(data) {
        Ok(Some(Frame::KeepAlive { len })) => {
            assert!(
                len > 0 && len <= data.len(),
                "keep-alive {len} of {}",
                data.len()
            );
        }
        Ok(Some(Frame::Message { skip, len })) => {
            assert!(
                skip.checked_add(len).is_some_and(|end| end <= data.len()),
                "frame {skip}+{len} outside {} bytes",
                data.len()
            );
            round_trip(&data[skip..skip + len]);
        }
        Ok(None) | Err(_) => {}
    }
    round_trip(data);
}

/// Parses `bytes`; if accepted, checks that the message re-serialises and re-parses.
pub fn round_trip(bytes: &[u8]) {
    let Ok(msg) = parse(bytes) else {
        return;
    };
    let wire = to_bytes(&msg);
    let again = match parse(&wire) {
        Ok(m) => m,
        Err(e) => panic!(
            "accepted message does not re-parse ({e:?}):\n{}\n--- from ---\n{}",
            String::from_utf8_lossy(&wire),
            String::from_utf8_lossy(bytes)
        ),
    };
    let wire2 = to_bytes(&again);
    assert!(
        wire == wire2,
        "serialisation is not a fixed point:\n{}\n--- then ---\n{}",
        String::from_utf8_lossy(&wire),
        String::from_utf8_lossy(&wire2)
    );
}
