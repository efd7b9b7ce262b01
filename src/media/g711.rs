//! G.711 µ-law and A-law companding (ITU-T G.711), the only codecs the engine speaks.
//!
//! The encoders follow the reference algorithm of the ITU-T Software Tool Library (`g711.c`):
//! µ-law works on 14-bit magnitudes with a bias of 33 (0x84 on the 16-bit scale), A-law on 13-bit
//! magnitudes, both with the segment found from the position of the leading one bit. The decoders
//! are the exact inverses, so every code word decodes to the centre of its quantisation step.
//! Tests pin whole tables against CPython's `audioop` (Sun/CCITT reference code).

/// µ-law bias on the 16-bit scale (33 on the 14-bit scale of the standard).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can code before clipping, on the 16-bit scale.
const ULAW_CLIP: i32 = 32_635;

/// Encodes one linear sample to µ-law, so RTP payload type 0 can be sent.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    // Negative samples use the one's complement, as the ITU-T STL does (Sun's g711.c negates
    // instead, which moves each negative decision threshold by one).
    let value = i32::from(sample);
    let (sign, magnitude) = if value < 0 {
        (0x80, -value - 1)
    } else {
        (0, value)
    };
    let value = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // Segment = position of the leading one above bit 7 (value is in 0x84..=0x7FFF).
    let segment = (31 - (value as u32).leading_zeros())
        .saturating_sub(7)
        .min(7) as i32;
    let mantissa = (value >> (segment + 3)) & 0x0F;
    !(sign | (segment << 4) | mantissa) as u8
}

/// Decodes one µ-law code word, so received PCMU can be analysed (in-band DTMF, recordings).
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear sample to A-law, so RTP payload type 8 can be sent.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // Work on the 13-bit scale of the standard; negative values use the one's complement as in
    // the reference code, which keeps the decision thresholds symmetric.
    let value = i32::from(sample) >> 3;
    let (sign, magnitude) = if value >= 0 {
        (0x80, value)
    } else {
        (0x00, -value - 1)
    };
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let segment = (31 - (magnitude as u32).leading_zeros()) as i32 - 4; // 1..=7
        if segment > 7 {
            0x7F
        } else {
            (segment << 4) | ((magnitude >> segment) & 0x0F)
        }
    };
    ((sign | code) ^ 0x55) as u8
}

/// Decodes one A-law code word, so received PCMA can be analysed.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        _ => ((mantissa << 4) + 0x108) << (segment - 1),
    };
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// The two G.711 laws, so callers pick one per negotiated payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, RTP payload type 0 (PCMU), North America and Japan.
    Ulaw,
    /// A-law, RTP payload type 8 (PCMA), Europe and most of the world.
    Alaw,
}

impl Law {
    /// The static RTP payload type, so SDP and RTP agree on the number.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The code word for digital silence, used to pad short frames.
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

/// Encodes a slice of samples, one byte per sample, into a new buffer ready for an RTP payload.
pub fn encode_frame(law: Law, samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len());
    encode_into(law, samples, &mut out);
    out
}

/// Appends encoded samples to `out`, so a caller can reuse one buffer per call.
pub fn encode_into(law: Law, samples: &[i16], out: &mut Vec<u8>) {
    match law {
        Law::Ulaw => out.extend(samples.iter().map(|&s| linear_to_ulaw(s))),
        Law::Alaw => out.extend(samples.iter().map(|&s| linear_to_alaw(s))),
    }
}

/// Decodes an RTP payload to linear samples, one sample per byte.
pub fn decode_frame(law: Law, payload: &[u8]) -> Vec<i16> {
    match law {
        Law::Ulaw => payload.iter().map(|&c| ulaw_to_linear(c)).collect(),
        Law::Alaw => payload.iter().map(|&c| alaw_to_linear(c)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_encodes_to_the_standard_silence_codes() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(Law::Ulaw.silence(), linear_to_ulaw(0));
        assert_eq!(Law::Alaw.silence(), linear_to_alaw(0));
    }

    #[test]
    fn known_code_words_match_the_reference_tables() {
        // Extremes and a few points from the classic Sun/ITU tables.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(ulaw_to_linear(0x7F), 0); // negative zero
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(-4), 0x7F);
        assert_eq!(linear_to_ulaw(-5), 0x7E);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xAA), 32_256);
        assert_eq!(alaw_to_linear(0x2A), -32_256);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(linear_to_ulaw(1000), 0xCE);
        assert_eq!(ulaw_to_linear(0xCE), 988);
        assert_eq!(linear_to_alaw(1000), 0xFA);
        assert_eq!(alaw_to_linear(0xFA), 1008);
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn whole_tables_match_the_reference_implementation() {
        // Digests of CPython 3.11 `audioop` output over the same inputs.
        let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
        let alaw = encode_frame(Law::Alaw, &all);
        assert_eq!(
            sha256_hex(&alaw),
            "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
        );
        // audioop's µ-law encoder negates negative samples (see the note in linear_to_ulaw),
        // so only the non-negative half is comparable.
        let positive: Vec<i16> = (0..=i16::MAX).collect();
        assert_eq!(
            sha256_hex(&encode_frame(Law::Ulaw, &positive)),
            "912062bf9c931c7ebc1dc1fd1d74faf0cfefcd47e8408a3ed4d07aa59f0f1c20"
        );
        let codes: Vec<u8> = (0..=255).collect();
        let le = |v: Vec<i16>| v.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>();
        assert_eq!(
            sha256_hex(&le(decode_frame(Law::Ulaw, &codes))),
            "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827"
        );
        assert_eq!(
            sha256_hex(&le(decode_frame(Law::Alaw, &codes))),
            "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174"
        );
        // µ-law negative half mirrors the positive half under one's complement.
        for s in 0..=i16::MAX {
            assert_eq!(linear_to_ulaw(-s - 1), linear_to_ulaw(s) & 0x7F, "{s}");
        }
    }

    #[test]
    fn every_code_word_round_trips_exactly() {
        for code in 0..=255u8 {
            let u = ulaw_to_linear(code);
            // µ-law has two zeros (0xFF and 0x7F); both decode to 0 and 0 encodes to 0xFF.
            if code != 0x7F {
                assert_eq!(linear_to_ulaw(u), code, "ulaw {code:#04x}");
            }
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "alaw {code:#04x}"
            );
        }
    }

    #[test]
    fn round_trip_error_is_within_one_step_over_all_samples() {
        for s in i16::MIN..=i16::MAX {
            let x = i32::from(s);
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let mag = x.unsigned_abs() as i32;
            // Step size doubles with each segment: µ-law 8..256, A-law 16..1024 (16-bit scale).
            let ulaw_bound = if mag >= ULAW_CLIP {
                32_768 - 32_124
            } else {
                (mag + 0x84) / 16 + 4
            };
            let alaw_bound = if mag >= 32_256 {
                32_768 - 32_256
            } else {
                (mag / 32).max(8) + 8
            };
            assert!((x - u).abs() <= ulaw_bound, "ulaw {s}: got {u}");
            assert!((x - a).abs() <= alaw_bound, "alaw {s}: got {a}");
            // Sign is preserved outside the tiny zero region.
            if x.abs() > 16 {
                assert_eq!(x.signum(), u.signum(), "ulaw sign {s}");
                assert_eq!(x.signum(), a.signum(), "alaw sign {s}");
            }
        }
    }

    #[test]
    fn frames_encode_and_decode_slices() {
        let samples = [0i16, 1000, -1000, 32_767];
        assert_eq!(
            encode_frame(Law::Ulaw, &samples),
            vec![0xFF, 0xCE, 0x4E, 0x80]
        );
        assert_eq!(
            encode_frame(Law::Alaw, &samples),
            vec![0xD5, 0xFA, 0x7A, 0xAA]
        );
        let decoded = decode_frame(Law::Ulaw, &[0xFF, 0xCE, 0x4E]);
        assert_eq!(decoded, vec![0, 988, -988]);
        assert_eq!(Law::Ulaw.payload_type(), 0);
        assert_eq!(Law::Alaw.payload_type(), 8);
    }
}
