//! Record: records the caller — a voicemail, or a message left instead of a callback — to a
//! WAV file in the data directory, after optional prompts and a beep, until the maximum length,
//! a stretch of silence, or the caller hanging up. The recording is attached to the call (call
//! data `recording`, so a callback booked later keeps it) and listed by the administration.

use chrono::TimeDelta;
use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::check::BlockCheck;
use crate::flow::expr::Value;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::{PromptSpec, num};
use crate::media::voice::{FRAME_MS, VoiceActivity};
use crate::recordings::{self, BYTES_PER_SECOND, Recording};

fn d_variable() -> String {
    "recording".into()
}
fn yes() -> bool {
    true
}

/// Name of the beep prompt in the prompt library.
pub const BEEP_PROMPT: &str = "beep";
/// Silence kept at the end of a recording that ended on silence.
const TAIL_MS: u32 = 500;

/// Records the caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Played before the beep (no barge-in).
    #[serde(default)]
    pub prompts: Vec<PromptSpec>,
    /// Play the `beep` prompt just before recording (default true).
    #[serde(default = "yes")]
    pub beep: bool,
    /// Longest recording in seconds (1 to 3600, default 120).
    #[serde(default = "num::<120>")]
    #[schemars(range(min = 1, max = 3600))]
    pub max_seconds: u32,
    /// Seconds of silence that end the recording (0 to 60, default 5; 0: only the maximum
    /// length or a hang-up end it).
    #[serde(default = "num::<5>")]
    #[schemars(range(min = 0, max = 60))]
    pub silence_seconds: u32,
    /// Prefix of the result variables (default `recording`).
    #[serde(default = "d_variable")]
    pub variable: String,
    /// Block to go to when nothing could be recorded (no audio, directory full, write error).
    pub on_failure: Option<String>,
}

impl BlockType for Record {
    const NEXT: Option<&'static str> = Some("Block to run next.");

    branches!(on_failure);

    const WAITS: bool = true;

    fn check(&self, c: &mut BlockCheck<'_>) {
        c.prompts("prompts", &self.prompts);
        c.range("max_seconds", self.max_seconds, 1, 3600);
        c.range("silence_seconds", self.silence_seconds, 0, 60);
        c.var_name("variable", &self.variable);
        if self.beep {
            let pos = crate::flow::check::value_pos(c.node, "beep");
            let path = crate::yaml::join(c.path, "beep");
            c.prompt_name(pos, &path, BEEP_PROMPT);
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx).await
    }
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Silence,
    MaxLength,
    HangUp,
}

impl Ended {
    fn name(self) -> &'static str {
        match self {
            Ended::Silence => "silence",
            Ended::MaxLength => "max_length",
            Ended::HangUp => "hang_up",
        }
    }
}

fn fail(b: &Record, cx: &mut Cx<'_>, why: String) -> Step {
    tracing::warn!(call = %cx.leg.info().call_id, "Record: {why}");
    cx.set(&format!("{}.id", b.variable), "");
    cx.outcome(format!("failed ({why})"));
    Step::Branch(b.on_failure.clone())
}

async fn run(b: &Record, cx: &mut Cx<'_>) -> Step {
    let s = cx.services;
    let cap = u64::from(s.config.spec.media.recordings_max_total_mb) * 1024 * 1024;
    let most = u64::from(b.max_seconds) * BYTES_PER_SECOND + 44;
    if let Err(e) = recordings::room_for(s.store.as_ref(), most, cap).await {
        return fail(b, cx, e.to_string());
    }
    if cx.play(&b.prompts, false).await.is_none() {
        return Step::HungUp;
    }
    if b.beep
        && cx
            .play(&[PromptSpec::Name(BEEP_PROMPT.into())], false)
            .await
            .is_none()
    {
        return Step::HungUp;
    }
    let Some(mut rx) = cx.leg.listen() else {
        return fail(b, cx, "the call has no audio".into());
    };
    let created = s.clock.now();
    // A backstop on the clock in case the audio stops arriving (no RTP).
    let until = created + TimeDelta::seconds(i64::from(b.max_seconds) + 2);
    let max_frames = (b.max_seconds * 1000 / FRAME_MS) as usize;
    let silence_frames = (b.silence_seconds * 1000 / FRAME_MS) as usize;
    let mut vad = VoiceActivity::default();
    let mut samples: Vec<i16> = Vec::with_capacity(max_frames.min(3000) * 160);
    let (mut frames, mut quiet, mut speech) = (0usize, 0usize, 0usize);
    let mut heard_at = created;
    let ended = loop {
        // No audio at all for the silence time (a phone that stops sending) is silence too.
        let mute = async {
            if silence_frames == 0 {
                std::future::pending::<()>().await;
            }
            s.clock
                .sleep_until(heard_at + TimeDelta::seconds(i64::from(b.silence_seconds)))
                .await;
        };
        tokio::select! {
            biased;
            f = rx.recv() => match f {
                Some(f) => {
                    heard_at = s.clock.now();
                    if vad.push(&f) {
                        quiet = 0;
                        speech += 1;
                    } else {
                        quiet += 1;
                    }
                    samples.extend_from_slice(&f);
                    frames += 1;
                    if frames >= max_frames {
                        break Ended::MaxLength;
                    }
                    if silence_frames > 0 && quiet >= silence_frames {
                        break Ended::Silence;
                    }
                }
                None => break Ended::HangUp,
            },
            _ = cx.leg.hung_up() => break Ended::HangUp,
            _ = mute => {
                quiet = 0;
                break Ended::Silence;
            }
            _ = s.clock.sleep_until(until) => break Ended::MaxLength,
        }
    };
    drop(rx);
    if ended == Ended::Silence {
        let keep = (frames - quiet + (TAIL_MS / FRAME_MS) as usize) * 160;
        samples.truncate(keep);
    }
    let duration_ms = samples.len() as u64 / 8;
    let info = cx.leg.info().clone();
    let rec = Recording {
        id: uuid::Uuid::new_v4(),
        created,
        duration_ms,
        bytes: 0,
        ended: ended.name().into(),
        call_id: info.call_id,
        ani: info.ani,
        dnis: info.dnis,
        callback_id: cx.serving.as_ref().map(|sv| sv.callback),
    };
    let data_dir = s.config.data_dir();
    let rec = match recordings::save(s.store.as_ref(), &data_dir, samples, rec).await {
        Ok(r) => r,
        Err(e) => return fail(b, cx, e.to_string()),
    };
    let id = rec.id.to_string();
    crate::flow::call_data::attach(&mut cx.call_data, "recording", &id);
    cx.set("call_data.recording", id.clone());
    let v = &b.variable;
    cx.set(&format!("{v}.id"), id);
    cx.set(
        &format!("{v}.seconds"),
        Value::Num(duration_ms as f64 / 1000.0),
    );
    cx.set(&format!("{v}.ended"), ended.name());
    cx.set(
        &format!("{v}.speech_seconds"),
        Value::Num((speech as u64 * u64::from(FRAME_MS)) as f64 / 1000.0),
    );
    cx.outcome(format!(
        "recorded {:.1} s ({})",
        duration_ms as f64 / 1000.0,
        ended.name()
    ));
    if ended == Ended::HangUp {
        return Step::HungUp;
    }
    Step::Next
}
