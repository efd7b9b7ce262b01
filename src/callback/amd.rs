//! Answering-machine detection on the customer leg of an outbound callback, and the queue's
//! action on a machine: connect anyway, leave the queue's message after the greeting and
//! complete the callback (MESSAGE_LEFT), or hang up and count the attempt as failed so it is
//! retried. The analysis itself is `media::voice::Amd`; this module feeds it the leg's audio on
//! the injected clock.

use std::sync::Arc;

use chrono::TimeDelta;
use uuid::Uuid;

use super::dialer::AttemptOutcome;
use super::model::{CallbackState, CompletionReason};
use super::service::{CallbackService, ServiceError};
use crate::call::{CallLeg, DialResult, HangupCause, PlayItem, PlayOptions};
use crate::clock::SharedClock;
use crate::config::{AmdSpec, MachineAction};
use crate::media::voice::{Amd, AmdResult, VoiceActivity};

/// Listens to the first seconds of `leg` and says what answered. No audio within the analysis
/// time (or a leg without audio) is unknown.
pub async fn detect(leg: &dyn CallLeg, spec: &AmdSpec, clock: &SharedClock) -> AmdResult {
    let Some(mut rx) = leg.listen() else {
        return AmdResult::Unknown;
    };
    let timings = spec.timings();
    let mut amd = Amd::new(timings);
    let until = clock.now() + TimeDelta::milliseconds(i64::from(timings.max_analysis_ms) + 500);
    loop {
        tokio::select! {
            biased;
            f = rx.recv() => match f {
                Some(f) => {
                    if let Some(r) = amd.push(&f) {
                        return r;
                    }
                }
                None => return amd.finish(),
            },
            _ = leg.hung_up() => return amd.finish(),
            _ = clock.sleep_until(until) => return amd.finish(),
        }
    }
}

/// Waits for the end of a machine's greeting (a second of silence, or no audio for one), at
/// most 30 s, so a message starts after the beep.
async fn greeting_over(leg: &dyn CallLeg, clock: &SharedClock) {
    let Some(mut rx) = leg.listen() else { return };
    let mut vad = VoiceActivity::default();
    let mut quiet = 0u32;
    let until = clock.now() + TimeDelta::seconds(30);
    loop {
        let mute = clock.sleep_until(clock.now() + TimeDelta::seconds(1));
        tokio::select! {
            biased;
            f = rx.recv() => match f {
                Some(f) => {
                    quiet = if vad.push(&f) { 0 } else { quiet + 1 };
                    if quiet >= 50 {
                        return;
                    }
                }
                None => return,
            },
            _ = mute => return,
            _ = leg.hung_up() => return,
            _ = clock.sleep_until(until) => return,
        }
    }
}

impl CallbackService {
    /// Runs the queue's detection on a just-answered customer leg. `None` when the call goes
    /// on to the callback application (a person, unknown, or a machine with `connect`); else
    /// the attempt's outcome, the leg having been hung up.
    pub(crate) async fn screen_answer(
        &self,
        id: Uuid,
        leg: &Arc<dyn CallLeg>,
        spec: &AmdSpec,
        agents_logged_in: u32,
    ) -> Result<Option<AttemptOutcome>, ServiceError> {
        let clock = self.clock().clone();
        let heard = detect(leg.as_ref(), spec, &clock).await;
        tracing::info!(callback = %id, call = %leg.info().call_id, result = heard.name(), "answering-machine detection");
        if heard != AmdResult::Machine || spec.on_machine == MachineAction::Connect {
            return Ok(None);
        }
        if spec.on_machine == MachineAction::Retry {
            let _ = leg.hang_up(HangupCause::Normal).await;
            return self
                .finish_attempt(id, DialResult::AnsweringMachine, agents_logged_in)
                .await
                .map(Some);
        }
        greeting_over(leg.as_ref(), &clock).await;
        let prompt = spec.message_prompt.clone().unwrap_or_default();
        let played = leg
            .play(&[PlayItem::Prompt(prompt.clone())], &PlayOptions::default())
            .await;
        let _ = leg.hang_up(HangupCause::Normal).await;
        let now = self.clock_now();
        let why = match played {
            Ok(_) => format!("answering machine: message `{prompt}` left"),
            Err(e) => format!("answering machine: message `{prompt}` not played ({e})"),
        };
        self.update(id, |r| {
            r.record_attempt(now, DialResult::AnsweringMachine, agents_logged_in);
            r.transition(
                CallbackState::Completed(CompletionReason::MessageLeft),
                now,
                "dialer",
                why.clone(),
            )?;
            Ok(())
        })
        .await?;
        Ok(Some(AttemptOutcome::MessageLeft))
    }
}
