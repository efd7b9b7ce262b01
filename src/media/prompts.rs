//! The prompt library: every WAV in a directory decoded once at start-up, resampled to 8 kHz
//! and pre-encoded as 20 ms G.711 frames that all calls share without copying.
//!
//! Resampling uses a windowed-sinc low-pass interpolator (Blackman window, 16 zero crossings
//! each side at the output rate, cut-off at 92 % of the lower Nyquist frequency), so 44.1 or
//! 48 kHz recordings do not alias into the telephone band. The library fails to load if any
//! file is unreadable, so a bad prompt is found at start-up, not in the middle of a call.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::media::g711::{Law, encode_into};

/// Sample rate of everything in the library.
pub const RATE: u32 = 8000;
/// Samples (and G.711 bytes) per 20 ms frame.
pub const FRAME_LEN: usize = 160;
/// One 20 ms G.711 payload.
pub type Frame = [u8; FRAME_LEN];

/// Why the library or a prompt could not be loaded; each names the file.
#[derive(Debug, Error)]
pub enum PromptError {
    /// The directory could not be listed.
    #[error("cannot read prompt directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// hound could not read the file (not a WAV, truncated, compressed format).
    #[error("cannot read prompt {file}: {source}")]
    Wav {
        /// The file.
        file: PathBuf,
        /// hound's error.
        source: hound::Error,
    },
    /// A WAV we cannot convert (rate or sample format outside what we support).
    #[error("unsupported prompt {file}: {reason}")]
    Format {
        /// The file.
        file: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// A prompt asked for by name is not in the library.
    #[error("no prompt named {0:?}")]
    Missing(String),
}

/// One prompt at 8 kHz, with its G.711 frames; cloning shares the audio.
#[derive(Debug, Clone)]
pub struct Prompt {
    name: Arc<str>,
    samples: Arc<[i16]>,
    pcmu: Arc<[Frame]>,
    pcma: Arc<[Frame]>,
}

impl Prompt {
    /// Builds a prompt from 8 kHz samples (the last frame is padded with silence).
    pub fn from_samples(name: &str, samples: Vec<i16>) -> Self {
        Prompt {
            name: name.into(),
            pcmu: frames(Law::Ulaw, &samples),
            pcma: frames(Law::Alaw, &samples),
            samples: samples.into(),
        }
    }

    /// The file stem the prompt was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Linear 8 kHz samples, for mixing or analysis.
    pub fn samples(&self) -> &Arc<[i16]> {
        &self.samples
    }

    /// The 20 ms payloads for a law, ready to go into RTP packets.
    pub fn frames(&self, law: Law) -> &Arc<[Frame]> {
        match law {
            Law::Ulaw => &self.pcmu,
            Law::Alaw => &self.pcma,
        }
    }

    /// Playing time in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(RATE)
    }
}

fn frames(law: Law, samples: &[i16]) -> Arc<[Frame]> {
    let mut bytes = Vec::with_capacity(FRAME_LEN);
    samples
        .chunks(FRAME_LEN)
        .map(|chunk| {
            bytes.clear();
            encode_into(law, chunk, &mut bytes);
            let mut frame = [law.silence(); FRAME_LEN];
            frame[..bytes.len()].copy_from_slice(&bytes);
            frame
        })
        .collect()
}

/// The prompt name for a key, as the `Digits` play item reads numbers out.
pub fn digit_prompt_name(key: char) -> Option<&'static str> {
    const DIGITS: [&str; 10] = [
        "digit-0", "digit-1", "digit-2", "digit-3", "digit-4", "digit-5", "digit-6", "digit-7",
        "digit-8", "digit-9",
    ];
    match key {
        '0'..='9' => Some(DIGITS[usize::from(key as u8 - b'0')]),
        '*' => Some("star"),
        '#' => Some("hash"),
        _ => None,
    }
}

/// All prompts by name, loaded once and shared by every call.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    prompts: HashMap<String, Prompt>,
}

impl PromptLibrary {
    /// Loads every `*.wav` (any case) directly in `dir`; the first bad file fails the load.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, PromptError> {
        let dir = dir.as_ref();
        let dir_err = |source| PromptError::Dir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(dir_err)? {
            let path = entry.map_err(dir_err)?.path();
            let is_wav = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            if is_wav && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut library = PromptLibrary::default();
        for path in paths {
            let prompt = load_wav(&path)?;
            library.insert(prompt);
        }
        Ok(library)
    }

    /// Adds or replaces a prompt (tests, the simulator, generated prompts).
    pub fn insert(&mut self, prompt: Prompt) {
        self.prompts.insert(prompt.name().to_string(), prompt);
    }

    /// A prompt by file stem.
    pub fn get(&self, name: &str) -> Option<&Prompt> {
        self.prompts.get(name)
    }

    /// A prompt by name, or an error naming it, for flows that must not play nothing.
    pub fn require(&self, name: &str) -> Result<&Prompt, PromptError> {
        self.get(name)
            .ok_or_else(|| PromptError::Missing(name.to_string()))
    }

    /// The prompt that reads out one key (`digit-0`..`digit-9`, `star`, `hash`), if present.
    pub fn digit(&self, key: char) -> Option<&Prompt> {
        digit_prompt_name(key).and_then(|name| self.get(name))
    }

    /// The prompts that read out a number key by key; fails on the first key without one.
    pub fn digits(&self, keys: &str) -> Result<Vec<&Prompt>, PromptError> {
        keys.chars()
            .map(|k| {
                self.digit(k)
                    .ok_or_else(|| PromptError::Missing(format!("digit prompt for {k:?}")))
            })
            .collect()
    }

    /// Sorted prompt names, for the admin API and start-up logs.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.prompts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// True when no prompt is loaded.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// WAV decoding
// ---------------------------------------------------------------------------------------------

/// Decodes a WAV of 8-48 kHz, 8/16/24/32-bit integer or 32-bit float, any channel count.
fn load_wav(path: &Path) -> Result<Prompt, PromptError> {
    let wav_err = |source| PromptError::Wav {
        file: path.to_path_buf(),
        source,
    };
    let format_err = |reason: String| PromptError::Format {
        file: path.to_path_buf(),
        reason,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format_err("file name is not UTF-8".into()))?;
    let mut reader = hound::WavReader::open(path).map_err(wav_err)?;
    let spec = reader.spec();
    if !(8000..=48_000).contains(&spec.sample_rate) {
        return Err(format_err(format!(
            "sample rate {} Hz outside 8000-48000",
            spec.sample_rate
        )));
    }
    if spec.channels == 0 {
        return Err(format_err("no channels".into()));
    }
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_err)?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(wav_err)?
        }
        (format, bits) => return Err(format_err(format!("{bits}-bit {format:?} samples"))),
    };
    let mono = mix_down(&interleaved, usize::from(spec.channels));
    let resampled = resample(&mono, spec.sample_rate, RATE);
    let samples = resampled.iter().map(|&s| to_i16(s)).collect();
    Ok(Prompt::from_samples(name, samples))
}

/// Averages the channels of each frame (a trailing partial frame is dropped).
fn mix_down(interleaved: &[f32], channels: usize) -> Vec<f32> {
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Zero crossings of the interpolation kernel on each side, at the lower of the two rates.
const SINC_ZEROS: f64 = 16.0;
/// Cut-off as a share of the lower Nyquist frequency (keeps the transition band below it).
const CUTOFF: f64 = 0.92;

/// Band-limited resampling by windowed-sinc interpolation; output length is
/// `len × to / from` rounded down. Equal rates return the input unchanged.
fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = f64::from(to) / f64::from(from);
    // Cut-off in cycles per input sample, and kernel half-width in input samples.
    let cutoff = 0.5 * CUTOFF * ratio.min(1.0);
    let half_width = SINC_ZEROS / ratio.min(1.0);
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let last = input.len() as i64 - 1;
    (0..out_len)
        .map(|n| {
            let t = n as f64 / ratio; // position in input samples
            let first = ((t - half_width).ceil() as i64).max(0);
            let end = ((t + half_width).floor() as i64).min(last);
            let (mut acc, mut weight) = (0.0f64, 0.0f64);
            for k in first..=end {
                let u = t - k as f64;
                let w = 2.0 * cutoff * sinc(2.0 * cutoff * u) * blackman(u / half_width);
                acc += w * f64::from(input[k as usize]);
                weight += w;
            }
            // Normalising by the summed weights keeps unity gain at DC, also at the edges.
            if weight.abs() > 1e-9 {
                (acc / weight) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// Blackman window over `x` in -1..=1 (zero outside).
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (x + 1.0); // 0..2π across the window
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::decode_frame;
    use std::f64::consts::PI;

    fn write_wav(
        path: &Path,
        spec: hound::WavSpec,
        frames: usize,
        sample: impl Fn(usize, u16) -> f64,
    ) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for ch in 0..spec.channels {
                let v = sample(i, ch);
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(v as f32).unwrap(),
                    hound::SampleFormat::Int => {
                        let max = ((1i64 << (spec.bits_per_sample - 1)) - 1) as f64;
                        w.write_sample((v * max).round() as i32).unwrap()
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    fn spec(rate: u32, channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    /// Sign changes per second, ≈ 2 × frequency for a sine.
    fn zero_crossings(samples: &[i16]) -> usize {
        samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count()
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    #[test]
    fn loads_stereo_16k_and_float_44k_and_resamples_to_8k() {
        let dir = tempfile::tempdir().unwrap();
        // 1 s of 1 kHz, louder on the left: the mix is the average of the channels.
        write_wav(
            &dir.path().join("stereo.wav"),
            spec(16_000, 2, 16, hound::SampleFormat::Int),
            16_000,
            |i, ch| {
                let amp = if ch == 0 { 0.6 } else { 0.2 };
                amp * (2.0 * PI * 1000.0 * i as f64 / 16_000.0).sin()
            },
        );
        // 1 s of 440 Hz as 32-bit float at 44.1 kHz.
        write_wav(
            &dir.path().join("float.wav"),
            spec(44_100, 1, 32, hound::SampleFormat::Float),
            44_100,
            |i, _| 0.5 * (2.0 * PI * 440.0 * i as f64 / 44_100.0).sin(),
        );
        std::fs::write(dir.path().join("notes.txt"), "not a prompt").unwrap();

        let lib = PromptLibrary::load(dir.path()).unwrap();
        assert_eq!(lib.names(), vec!["float", "stereo"]);

        let stereo = lib.get("stereo").unwrap();
        assert_eq!(stereo.samples().len(), 8000);
        assert_eq!(stereo.duration_ms(), 1000);
        let zc = zero_crossings(stereo.samples());
        assert!((1990..=2010).contains(&zc), "1 kHz gave {zc} crossings");
        // Mixed amplitude 0.4 of full scale → RMS 0.4/√2 × 32767 ≈ 9268.
        let r = rms(&stereo.samples()[400..7600]);
        assert!((r - 9268.0).abs() < 150.0, "rms {r}");

        let float = lib.get("float").unwrap();
        assert_eq!(float.samples().len(), 8000);
        let zc = zero_crossings(float.samples());
        assert!((875..=885).contains(&zc), "440 Hz gave {zc} crossings");

        // Frames: 8000 samples → 50 frames of 160, identical to encoding the samples.
        assert_eq!(float.frames(Law::Ulaw).len(), 50);
        let decoded = decode_frame(Law::Alaw, &float.frames(Law::Alaw)[10]);
        let original = &float.samples()[1600..1760];
        assert!(
            decoded
                .iter()
                .zip(original)
                .all(|(d, o)| (i32::from(*d) - i32::from(*o)).abs() <= 512)
        );
    }

    #[test]
    fn other_integer_widths_and_a_partial_last_frame() {
        let dir = tempfile::tempdir().unwrap();
        let tone = |rate: f64| move |i: usize, _| 0.5 * (2.0 * PI * 500.0 * i as f64 / rate).sin();
        write_wav(
            &dir.path().join("eight.WAV"),
            spec(8000, 1, 8, hound::SampleFormat::Int),
            1000,
            tone(8000.0),
        );
        write_wav(
            &dir.path().join("deep.wav"),
            spec(48_000, 1, 24, hound::SampleFormat::Int),
            4800,
            tone(48_000.0),
        );
        write_wav(
            &dir.path().join("wide.wav"),
            spec(32_000, 1, 32, hound::SampleFormat::Int),
            3200,
            tone(32_000.0),
        );
        let lib = PromptLibrary::load(dir.path()).unwrap();
        assert_eq!(lib.len(), 3);
        // 8 kHz is taken as is: 1000 samples → 7 frames, the last padded with silence.
        let eight = lib.get("eight").unwrap();
        assert_eq!(eight.samples().len(), 1000);
        assert_eq!(eight.frames(Law::Ulaw).len(), 7);
        assert!(eight.frames(Law::Ulaw)[6][40..].iter().all(|&b| b == 0xFF));
        assert!(eight.frames(Law::Alaw)[6][40..].iter().all(|&b| b == 0xD5));
        for name in ["deep", "wide"] {
            let p = lib.get(name).unwrap();
            assert_eq!(p.samples().len(), 800, "{name}");
            let zc = zero_crossings(p.samples());
            assert!((98..=101).contains(&zc), "{name}: {zc}");
            let r = rms(&p.samples()[100..700]);
            assert!((r - 11_585.0).abs() < 200.0, "{name} rms {r}");
        }
    }

    /// One second of a `hz` sine at 16 kHz, resampled to 8 kHz.
    fn sine_16k_to_8k(hz: f64) -> Vec<i16> {
        let input: Vec<f32> = (0..16_000)
            .map(|i| 0.8 * (2.0 * PI * hz * i as f64 / 16_000.0).sin() as f32)
            .collect();
        resample(&input, 16_000, 8000)
            .iter()
            .map(|&s| to_i16(s))
            .collect()
    }

    #[test]
    fn tones_above_4khz_are_filtered_not_aliased() {
        // 6 kHz at 16 kHz would alias to 2 kHz with naive decimation.
        let out = sine_16k_to_8k(6000.0);
        assert!(rms(&out[200..7800]) < 30.0, "rms {}", rms(&out[200..7800]));
        // While 3 kHz passes nearly untouched.
        let out = sine_16k_to_8k(3000.0);
        let r = rms(&out[200..7800]);
        assert!((r - 0.8 * 32767.0 / 2f64.sqrt()).abs() < 800.0, "rms {r}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.wav"), b"RIFF....WAVEjunk").unwrap();
        let err = PromptLibrary::load(dir.path()).unwrap_err();
        assert!(matches!(err, PromptError::Wav { .. }));
        assert!(err.to_string().contains("broken.wav"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        write_wav(
            &dir.path().join("slow.wav"),
            spec(4000, 1, 16, hound::SampleFormat::Int),
            10,
            |_, _| 0.0,
        );
        let err = PromptLibrary::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("slow.wav") && err.to_string().contains("4000"),
            "{err}"
        );

        let err = PromptLibrary::load(dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, PromptError::Dir { .. }));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn shipped_prompts_load_with_every_name_the_flows_use() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let lib = PromptLibrary::load(&dir).unwrap();
        let expected = [
            "welcome",
            "offer-callback",
            "confirm-number",
            "enter-number",
            "callback-booked",
            "goodbye",
            "please-hold",
            "enter-access-code",
            "invalid-code",
            "closed",
            "scheduled-offer",
            "hold-music",
            "agent-connect",
            "callback-intro",
            "accept-time",
            "choose-time",
            "star",
            "hash",
            "offer-immediate",
            "offer-scheduled",
            "offer-choose-time",
            "cannot-route",
            "beep",
            "leave-message",
            "machine-message",
            "survey-intro",
            "survey-question-1",
            "survey-question-2",
            "survey-thanks",
        ];
        for name in expected {
            let p = lib.require(name).unwrap();
            assert!(
                p.duration_ms() >= 300,
                "{name} lasts {} ms",
                p.duration_ms()
            );
            assert!(rms(p.samples()) > 500.0, "{name} is silent");
        }
        let all_digits = lib.digits("0123456789*#").unwrap();
        assert_eq!(all_digits.len(), 12);
        assert_eq!(lib.get("hold-music").unwrap().duration_ms(), 10_000);
        assert_eq!(lib.len(), expected.len() + 10);
    }

    #[test]
    fn digit_prompts_read_numbers_out() {
        let mut lib = PromptLibrary::default();
        for name in ["digit-0", "digit-1", "digit-5", "hash"] {
            lib.insert(Prompt::from_samples(name, vec![0; 160]));
        }
        assert_eq!(digit_prompt_name('7'), Some("digit-7"));
        assert_eq!(digit_prompt_name('*'), Some("star"));
        assert_eq!(digit_prompt_name('x'), None);
        let names: Vec<&str> = lib
            .digits("150#")
            .unwrap()
            .iter()
            .map(|p| p.name())
            .collect();
        assert_eq!(names, vec!["digit-1", "digit-5", "digit-0", "hash"]);
        assert!(lib.digit('*').is_none());
        assert!(matches!(lib.digits("12"), Err(PromptError::Missing(_))));
        assert!(lib.require("welcome").is_err());
    }
}
