//! What a party says, frame by frame: the energy of 20 ms frames of 8 kHz audio, speech or
//! silence against a level that follows the line's noise floor, and answering-machine
//! detection from the cadence of the first seconds of an answered call. I/O-free: frames in,
//! decisions out, so recordings, the dialer and the benches share one analysis.

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Milliseconds per frame.
pub const FRAME_MS: u32 = 20;

/// The level of a frame in dBFS (RMS against full scale; digital silence is -96).
pub fn level_dbfs(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return -96.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / frame.len() as f64).sqrt();
    if rms < 1.0 {
        -96.0
    } else {
        20.0 * (rms / 32768.0).log10()
    }
}

/// Speech or silence per frame: a frame is speech when it is `margin_db` above the noise
/// floor and above `min_dbfs`. The floor follows quiet frames quickly and loud ones slowly, so
/// steady line noise reads as silence while a voice does not lift it.
#[derive(Debug, Clone)]
pub struct VoiceActivity {
    floor: f64,
    margin_db: f64,
    min_dbfs: f64,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        VoiceActivity::new(-40.0)
    }
}

impl VoiceActivity {
    /// A detector for which nothing under `min_dbfs` is speech.
    pub fn new(min_dbfs: f64) -> Self {
        VoiceActivity {
            floor: -70.0,
            margin_db: 12.0,
            min_dbfs,
        }
    }

    /// Whether `frame` is speech; updates the noise floor.
    pub fn push(&mut self, frame: &[i16]) -> bool {
        let level = level_dbfs(frame);
        let speech = level > self.min_dbfs && level > self.floor + self.margin_db;
        let rate = if level < self.floor {
            0.3
        } else if speech {
            0.002
        } else {
            0.05
        };
        self.floor += (level - self.floor) * rate;
        speech
    }
}

/// What answered a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdResult {
    /// A short greeting, then silence: a person waiting for us to speak.
    Human,
    /// A long greeting without a pause: a recorded message.
    Machine,
    /// Neither within the analysis time (silence throughout, or speech that fits neither).
    Unknown,
}

impl AmdResult {
    /// The name used in logs, traces and reports.
    pub fn name(self) -> &'static str {
        match self {
            AmdResult::Human => "human",
            AmdResult::Machine => "machine",
            AmdResult::Unknown => "unknown",
        }
    }
}

/// The cadence rules of answering-machine detection, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdTimings {
    /// Silence before any speech after which the answer is unknown.
    pub initial_silence_ms: u32,
    /// Longest greeting a person gives before pausing for us.
    pub max_human_greeting_ms: u32,
    /// A pause this long ends the greeting.
    pub end_of_greeting_silence_ms: u32,
    /// Speech this long, counted from its start, with no pause as long as
    /// `end_of_greeting_silence_ms`, is a recorded message.
    pub machine_greeting_ms: u32,
    /// The analysis stops here with whatever it knows (unknown when undecided).
    pub max_analysis_ms: u32,
}

impl Default for AmdTimings {
    fn default() -> Self {
        AmdTimings {
            initial_silence_ms: 2500,
            max_human_greeting_ms: 1500,
            end_of_greeting_silence_ms: 700,
            machine_greeting_ms: 2600,
            max_analysis_ms: 5000,
        }
    }
}

/// Answering-machine detection over the first seconds of audio: feed frames with
/// [`Amd::push`] until it returns a result.
#[derive(Debug, Clone)]
pub struct Amd {
    timings: AmdTimings,
    vad: VoiceActivity,
    elapsed_ms: u32,
    /// When speech first started.
    speech_start: Option<u32>,
    /// When the last speech frame was heard.
    last_speech: u32,
    /// Speech frames heard (in ms), to ignore a click.
    voiced_ms: u32,
}

impl Amd {
    /// A detector with `timings`.
    pub fn new(timings: AmdTimings) -> Self {
        Amd {
            timings,
            vad: VoiceActivity::default(),
            elapsed_ms: 0,
            speech_start: None,
            last_speech: 0,
            voiced_ms: 0,
        }
    }

    /// Time analysed so far.
    pub fn elapsed_ms(&self) -> u32 {
        self.elapsed_ms
    }

    /// One 20 ms frame; a result once the cadence decides.
    pub fn push(&mut self, frame: &[i16]) -> Option<AmdResult> {
        let t = &self.timings;
        let speech = self.vad.push(frame);
        self.elapsed_ms += FRAME_MS;
        let now = self.elapsed_ms;
        if speech {
            self.voiced_ms += FRAME_MS;
            if self.speech_start.is_none() {
                self.speech_start = Some(now - FRAME_MS);
            }
            self.last_speech = now;
        }
        match self.speech_start {
            None if now >= t.initial_silence_ms => return Some(AmdResult::Unknown),
            None => {}
            Some(start) => {
                let pause = now - self.last_speech;
                let greeting = self.last_speech - start;
                if pause >= t.end_of_greeting_silence_ms {
                    if self.voiced_ms <= 2 * FRAME_MS {
                        // A click, not a voice: start again.
                        self.speech_start = None;
                        self.voiced_ms = 0;
                    } else if greeting <= t.max_human_greeting_ms {
                        return Some(AmdResult::Human);
                    } else if greeting < t.machine_greeting_ms {
                        return Some(AmdResult::Unknown);
                    }
                }
                if greeting >= t.machine_greeting_ms {
                    return Some(AmdResult::Machine);
                }
            }
        }
        (now >= t.max_analysis_ms).then_some(AmdResult::Unknown)
    }

    /// The result when the audio stops before a decision (the call ended, no RTP).
    pub fn finish(&self) -> AmdResult {
        match self.speech_start {
            Some(start)
                if self.voiced_ms > 2 * FRAME_MS
                    && self.last_speech - start <= self.timings.max_human_greeting_ms =>
            {
                AmdResult::Human
            }
            _ => AmdResult::Unknown,
        }
    }
}

/// Classifies whole audio (8 kHz samples), as the accuracy bench and tests do.
pub fn classify(samples: &[i16], timings: AmdTimings) -> AmdResult {
    let mut amd = Amd::new(timings);
    for frame in samples.chunks(FRAME_SAMPLES) {
        if let Some(r) = amd.push(frame) {
            return r;
        }
    }
    amd.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, amp: f64) -> Vec<i16> {
        (0..ms as usize * 8)
            .map(|n| (amp * (n as f64 * 0.2).sin()) as i16)
            .collect()
    }

    fn silence(ms: u32) -> Vec<i16> {
        vec![0; ms as usize * 8]
    }

    fn concat(parts: &[Vec<i16>]) -> Vec<i16> {
        parts.concat()
    }

    #[test]
    fn levels() {
        assert_eq!(level_dbfs(&[0; 160]), -96.0);
        let full = level_dbfs(&tone(20, 32767.0));
        assert!((full + 3.0).abs() < 0.5, "{full}");
    }

    #[test]
    fn a_short_hello_then_silence_is_human() {
        let a = concat(&[silence(300), tone(600, 8000.0), silence(2000)]);
        assert_eq!(classify(&a, AmdTimings::default()), AmdResult::Human);
    }

    #[test]
    fn a_long_greeting_with_short_pauses_is_a_machine() {
        let a = concat(&[
            silence(200),
            tone(1200, 8000.0),
            silence(300),
            tone(1500, 8000.0),
            silence(200),
            tone(2000, 8000.0),
        ]);
        assert_eq!(classify(&a, AmdTimings::default()), AmdResult::Machine);
    }

    #[test]
    fn silence_throughout_or_a_middling_greeting_is_unknown() {
        assert_eq!(
            classify(&silence(6000), AmdTimings::default()),
            AmdResult::Unknown
        );
        let a = concat(&[tone(2000, 8000.0), silence(2000)]);
        assert_eq!(classify(&a, AmdTimings::default()), AmdResult::Unknown);
    }

    #[test]
    fn steady_line_noise_is_not_speech() {
        let mut vad = VoiceActivity::default();
        let noise: Vec<i16> = (0..160 * 100)
            .map(|n| ((n * 7919 % 200) as i16 - 100) * 2)
            .collect();
        let speech = noise.chunks(160).filter(|f| vad.push(f)).count();
        assert_eq!(speech, 0);
        assert!(vad.push(&tone(20, 8000.0)));
    }
}
