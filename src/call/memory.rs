//! An in-memory `CallLeg` driven by a script of what the other party does (keys to press,
//! silence, hanging up, talking), and a `Dialer` that hands out such legs. Real code, used by
//! flow tests, the callback dialer's tests and the simulator's virtual mode. With a clock,
//! prompts and timeouts take (virtual) time; without one they complete at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, watch};

use super::*;
use crate::clock::SharedClock;

/// What the other party does next, consumed as the flow plays and collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Presses keys when input is next collected (typing ahead of a prompt that does not
    /// allow barge-in waits for the collection too).
    Press(String),
    /// Presses keys during the next prompt: a barge-in prompt stops at the first key; the
    /// keys stay buffered for the next collection.
    BargeIn(String),
    /// Says nothing when input is expected (a no-input).
    Silence,
    /// Hangs up at the next prompt, collection or bridge.
    HangUp,
    /// Once bridged, talks this long and hangs up.
    Talk(Duration),
    /// When the leg is next listened to (a recording, answering-machine detection): speaks
    /// (a steady voiced tone) this long, then is silent; a `HangUp` right after it hangs up
    /// once the speech is over.
    Speak(Duration),
}

/// How long things take on a leg with a clock.
#[derive(Clone)]
pub struct Timing {
    /// The clock.
    pub clock: SharedClock,
    /// Length of each prompt by name; unknown prompts take `default_prompt`.
    pub prompt_lengths: Arc<HashMap<String, Duration>>,
    /// Length of a prompt not in the table.
    pub default_prompt: Duration,
    /// Time the party takes to press keys.
    pub key_delay: Duration,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Action>,
    buffered: VecDeque<char>,
    answered: bool,
    transcript: Vec<String>,
    sent_digits: String,
}

/// An in-memory call leg.
pub struct MemoryLeg {
    info: LegInfo,
    state: Arc<Mutex<State>>,
    ended: Arc<watch::Sender<bool>>,
    stop: Notify,
    timing: Option<Timing>,
}

impl MemoryLeg {
    /// A leg whose other party follows `script`.
    pub fn new(info: LegInfo, script: impl IntoIterator<Item = Action>) -> Arc<Self> {
        Self::build(info, script, None)
    }

    /// A leg where prompts and timeouts take time on `timing.clock`.
    pub fn timed(
        info: LegInfo,
        script: impl IntoIterator<Item = Action>,
        timing: Timing,
    ) -> Arc<Self> {
        Self::build(info, script, Some(timing))
    }

    fn build(
        info: LegInfo,
        script: impl IntoIterator<Item = Action>,
        timing: Option<Timing>,
    ) -> Arc<Self> {
        Arc::new(MemoryLeg {
            info,
            state: Arc::new(Mutex::new(State {
                script: script.into_iter().collect(),
                ..State::default()
            })),
            ended: Arc::new(watch::channel(false).0),
            stop: Notify::new(),
            timing,
        })
    }

    /// An inbound caller from `ani` dialling `dnis`.
    pub fn caller(ani: &str, dnis: &str, script: impl IntoIterator<Item = Action>) -> Arc<Self> {
        Self::new(
            LegInfo {
                call_id: uuid::Uuid::new_v4().to_string(),
                ani: ani.into(),
                dnis: dnis.into(),
                direction: Direction::Inbound,
            },
            script,
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    fn note(&self, line: String) {
        self.lock().transcript.push(line);
    }

    /// What happened on the leg, one line per event (prompts, inputs, bridge, hang-up).
    pub fn transcript(&self) -> Vec<String> {
        self.lock().transcript.clone()
    }

    /// Digits sent to the other party.
    pub fn sent_digits(&self) -> String {
        self.lock().sent_digits.clone()
    }

    /// True once answered.
    pub fn is_answered(&self) -> bool {
        self.lock().answered
    }

    /// The other party hangs up now (e.g. the simulator's caller ran out of patience).
    pub fn remote_hang_up(&self) {
        if !*self.ended.borrow() {
            self.note("caller hangs up".into());
            self.ended.send_replace(true);
        }
    }

    fn end(&self, line: String) {
        if !*self.ended.borrow() {
            self.note(line);
            self.ended.send_replace(true);
        }
    }

    async fn wait(&self, d: Duration) -> bool {
        match &self.timing {
            Some(t) if !d.is_zero() => {
                let until = t.clock.now() + chrono::TimeDelta::from_std(d).unwrap_or_default();
                tokio::select! {
                    _ = t.clock.sleep_until(until) => true,
                    _ = self.hung_up() => false,
                }
            }
            _ => !self.is_ended(),
        }
    }

    fn prompt_length(&self, items: &[PlayItem]) -> Duration {
        let Some(t) = &self.timing else {
            return Duration::ZERO;
        };
        items
            .iter()
            .map(|i| match i {
                PlayItem::Prompt(p) => t.prompt_lengths.get(p).copied().unwrap_or(t.default_prompt),
                PlayItem::Digits(d) => Duration::from_millis(500) * d.len() as u32,
                PlayItem::Silence(d) => *d,
            })
            .sum()
    }
}

fn describe(items: &[PlayItem]) -> String {
    items
        .iter()
        .map(|i| match i {
            PlayItem::Prompt(p) => p.clone(),
            PlayItem::Digits(d) => format!("digits:{d}"),
            PlayItem::Silence(d) => format!("silence:{}ms", d.as_millis()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl CallLeg for MemoryLeg {
    fn info(&self) -> &LegInfo {
        &self.info
    }

    async fn answer(&self) -> Result<(), CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        let mut s = self.lock();
        if !s.answered {
            s.answered = true;
            s.transcript.push("answer".into());
        }
        Ok(())
    }

    async fn play(&self, items: &[PlayItem], opts: &PlayOptions) -> Result<PlayOutcome, CallError> {
        if self.is_ended() {
            return Ok(PlayOutcome::HungUp);
        }
        let what = describe(items);
        let front = self.lock().script.front().cloned();
        match front {
            Some(Action::HangUp) => {
                self.lock().script.pop_front();
                let verb = if opts.looped { "loop" } else { "play" };
                self.note(format!("{verb} {what}"));
                self.end("caller hangs up".into());
                return Ok(PlayOutcome::HungUp);
            }
            Some(Action::BargeIn(keys)) if !opts.looped => {
                let mut s = self.lock();
                s.script.pop_front();
                s.buffered.extend(keys.chars());
                let first = s.buffered.front().copied().unwrap_or('#');
                if opts.barge_in {
                    s.transcript
                        .push(format!("play {what} (interrupted by {keys})"));
                    return Ok(PlayOutcome::Interrupted(first));
                }
                s.transcript
                    .push(format!("play {what} (typed ahead {keys})"));
                return Ok(PlayOutcome::Completed);
            }
            _ => {}
        }
        if opts.looped {
            self.note(format!("loop {what}"));
            tokio::select! {
                _ = self.stop.notified() => {}
                _ = self.hung_up() => {}
            }
            return Ok(if self.is_ended() {
                PlayOutcome::HungUp
            } else {
                PlayOutcome::Completed
            });
        }
        self.note(format!("play {what}"));
        if !self.wait(self.prompt_length(items)).await {
            return Ok(PlayOutcome::HungUp);
        }
        Ok(PlayOutcome::Completed)
    }

    fn stop_playing(&self) {
        self.stop.notify_waiters();
    }

    async fn collect_digits(&self, spec: &DigitSpec) -> Result<DigitOutcome, CallError> {
        if self.is_ended() {
            return Ok(DigitOutcome::HungUp);
        }
        let action = {
            let mut s = self.lock();
            // What the party says when nobody listens is not a key.
            while matches!(s.script.front(), Some(Action::Speak(_))) {
                s.script.pop_front();
            }
            if s.buffered.is_empty() {
                s.script.pop_front()
            } else {
                None
            }
        };
        let key_delay = self
            .timing
            .as_ref()
            .map(|t| t.key_delay)
            .unwrap_or_default();
        match action {
            Some(Action::HangUp) => {
                self.end("caller hangs up".into());
                return Ok(DigitOutcome::HungUp);
            }
            Some(Action::Press(keys)) | Some(Action::BargeIn(keys)) => {
                if !self.wait(key_delay * keys.len() as u32).await {
                    return Ok(DigitOutcome::HungUp);
                }
                self.lock().buffered.extend(keys.chars());
            }
            Some(Action::Silence) | Some(Action::Talk(_)) | Some(Action::Speak(_)) | None => {}
        }
        let empty = {
            let mut s = self.lock();
            let empty = s.buffered.is_empty();
            if empty {
                s.transcript.push("no input".into());
            }
            empty
        };
        if empty {
            if !self.wait(spec.first_digit_timeout).await {
                return Ok(DigitOutcome::HungUp);
            }
            return Ok(DigitOutcome::NoInput);
        }
        let mut s = self.lock();
        let mut digits = String::new();
        let mut terminated = false;
        while let Some(c) = s.buffered.pop_front() {
            if Some(c) == spec.terminator {
                terminated = true;
                break;
            }
            digits.push(c);
            if digits.len() >= spec.max_digits {
                break;
            }
        }
        s.transcript.push(format!(
            "input {digits}{}",
            if terminated { " (terminated)" } else { "" }
        ));
        Ok(DigitOutcome::Digits { digits, terminated })
    }

    fn flush_digits(&self) {
        self.lock().buffered.clear();
    }

    async fn send_digits(&self, digits: &str) -> Result<(), CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        let mut s = self.lock();
        s.sent_digits.push_str(digits);
        s.transcript.push(format!("send digits {digits}"));
        Ok(())
    }

    async fn bridge(&self, other: Arc<dyn CallLeg>) -> Result<BridgeEnd, CallError> {
        if self.is_ended() {
            return Err(CallError::Ended);
        }
        self.note(format!("bridge with {}", other.info().ani));
        let front = self.lock().script.front().cloned();
        match front {
            Some(Action::HangUp) => {
                self.lock().script.pop_front();
                self.end("caller hangs up".into());
                return Ok(BridgeEnd::ThisSide);
            }
            Some(Action::Talk(d)) => {
                self.lock().script.pop_front();
                tokio::select! {
                    talked = self.wait(d) => {
                        if talked {
                            self.end("hangs up after talking".into());
                        }
                        return Ok(BridgeEnd::ThisSide);
                    }
                    _ = other.hung_up() => return Ok(BridgeEnd::OtherSide),
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = self.hung_up() => Ok(BridgeEnd::ThisSide),
            _ = other.hung_up() => Ok(BridgeEnd::OtherSide),
        }
    }

    async fn hang_up(&self, cause: HangupCause) -> Result<(), CallError> {
        self.end(format!("hang up ({cause:?})"));
        Ok(())
    }

    async fn hung_up(&self) {
        let mut rx = self.ended.subscribe();
        let _ = rx.wait_for(|e| *e).await;
    }

    fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    fn listen(&self) -> Option<tokio::sync::mpsc::Receiver<Vec<i16>>> {
        let (speech, hang_up) = {
            let mut s = self.lock();
            let speech = match s.script.front() {
                Some(Action::Speak(d)) => {
                    let d = *d;
                    s.script.pop_front();
                    d
                }
                _ => Duration::ZERO,
            };
            let hang_up = !speech.is_zero() && s.script.front() == Some(&Action::HangUp);
            if hang_up {
                s.script.pop_front();
            }
            s.transcript
                .push(format!("listened to: speaks {} ms", speech.as_millis()));
            (speech, hang_up)
        };
        let (tx, rx) = tokio::sync::mpsc::channel(50);
        let (state, ended) = (self.state.clone(), self.ended.clone());
        tokio::spawn(async move {
            let voiced = (speech.as_millis() / 20) as usize;
            // Speech, then silence for as long as someone listens (at most an hour).
            for i in 0..voiced + 180_000 {
                if i == voiced && hang_up {
                    if !*ended.borrow() {
                        state.lock().transcript.push("caller hangs up".into());
                        ended.send_replace(true);
                    }
                    return;
                }
                if *ended.borrow() {
                    return;
                }
                let frame = if i < voiced {
                    voiced_frame(i)
                } else {
                    vec![0; 160]
                };
                if tx.send(frame).await.is_err() {
                    return;
                }
            }
        });
        Some(rx)
    }
}

/// Frame `i` of a steady 250 Hz voiced sound at about -12 dBFS (what a scripted party says).
fn voiced_frame(i: usize) -> Vec<i16> {
    (0..160)
        .map(|n| {
            let t = (i * 160 + n) as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 250.0 * t).sin()) as i16
        })
        .collect()
}

/// How a dialled party responds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answers, then follows the script.
    Pick(Vec<Action>),
    /// Refuses with the given result (busy, no answer, failed, unreachable).
    Refuse(DialResult),
}

/// A dialler of in-memory parties: each target (agent id or number) answers per its queue of
/// answers, falling back to a default.
pub struct MemoryDialer {
    answers: Mutex<HashMap<String, VecDeque<Answer>>>,
    default: Answer,
    timing: Option<Timing>,
    log: Mutex<Vec<(String, Result<(), DialResult>)>>,
    legs: Mutex<Vec<Arc<MemoryLeg>>>,
    headers: Mutex<Vec<HeadersSent>>,
}

/// The target of a call placed with extra headers, and those headers.
pub type HeadersSent = (String, Vec<(String, String)>);

impl MemoryDialer {
    /// A dialler where parties without a script answer with `default`.
    pub fn new(default: Answer, timing: Option<Timing>) -> Self {
        MemoryDialer {
            answers: Mutex::new(HashMap::new()),
            default,
            timing,
            log: Mutex::new(Vec::new()),
            legs: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
        }
    }

    /// Queues how `target` answers its next call.
    pub fn script(&self, target: &str, answer: Answer) {
        self.answers
            .lock()
            .entry(target.to_string())
            .or_default()
            .push_back(answer);
    }

    /// Every call placed: target and whether it was answered.
    pub fn calls(&self) -> Vec<(String, Result<(), DialResult>)> {
        self.log.lock().clone()
    }

    /// The extra headers of every call placed with some (target, headers), in order.
    pub fn headers(&self) -> Vec<HeadersSent> {
        self.headers.lock().clone()
    }

    /// The legs handed out, in order.
    pub fn legs(&self) -> Vec<Arc<MemoryLeg>> {
        self.legs.lock().clone()
    }
}

/// What a dial is known by in the scripted answers and the logs: the number, agent or URI.
fn answer_key(target: &DialTarget) -> String {
    match target {
        DialTarget::Customer { number, .. } => number.clone(),
        DialTarget::Agent { agent_id } | DialTarget::Contact { agent_id, .. } => agent_id.clone(),
        DialTarget::Uri { uri } => uri.clone(),
    }
}

#[async_trait]
impl Dialer for MemoryDialer {
    async fn dial(&self, call: Dial<'_>) -> Result<Arc<dyn CallLeg>, DialResult> {
        let key = answer_key(call.target);
        if !call.headers.is_empty() {
            self.headers
                .lock()
                .push((key.clone(), call.headers.to_vec()));
        }
        let answer = self
            .answers
            .lock()
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| self.default.clone());
        let result = match answer {
            Answer::Pick(script) => {
                let info = LegInfo {
                    call_id: uuid::Uuid::new_v4().to_string(),
                    ani: key.clone(),
                    dnis: call.caller_id.to_string(),
                    direction: Direction::Outbound,
                };
                let leg = match &self.timing {
                    Some(t) => MemoryLeg::timed(info, script, t.clone()),
                    None => MemoryLeg::new(info, script),
                };
                leg.lock().answered = true;
                self.legs.lock().push(leg.clone());
                Ok(leg as Arc<dyn CallLeg>)
            }
            Answer::Refuse(r) => {
                if r == DialResult::NoAnswer
                    && let Some(t) = &self.timing
                {
                    let until = t.clock.now()
                        + chrono::TimeDelta::from_std(call.ring_timeout).unwrap_or_default();
                    t.clock.sleep_until(until).await;
                }
                Err(r)
            }
        };
        self.log
            .lock()
            .push((key, result.as_ref().map(|_| ()).map_err(|e| *e)));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(max: usize) -> DigitSpec {
        DigitSpec {
            max_digits: max,
            terminator: Some('#'),
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
        }
    }

    #[tokio::test]
    async fn barge_in_keeps_the_keys_for_the_next_collection() {
        let leg = MemoryLeg::caller("+331", "8000", [Action::BargeIn("12#".into())]);
        let out = leg
            .play(
                &[PlayItem::Prompt("welcome".into())],
                &PlayOptions {
                    barge_in: true,
                    looped: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(out, PlayOutcome::Interrupted('1'));
        let got = leg.collect_digits(&spec(10)).await.unwrap();
        assert_eq!(
            got,
            DigitOutcome::Digits {
                digits: "12".into(),
                terminated: true
            }
        );
    }

    #[tokio::test]
    async fn without_barge_in_keys_wait_and_max_digits_splits_them() {
        let leg = MemoryLeg::caller("+331", "8000", [Action::Press("123".into())]);
        let out = leg
            .play(&[PlayItem::Prompt("w".into())], &PlayOptions::default())
            .await
            .unwrap();
        assert_eq!(out, PlayOutcome::Completed);
        let first = leg.collect_digits(&spec(1)).await.unwrap();
        assert_eq!(
            first,
            DigitOutcome::Digits {
                digits: "1".into(),
                terminated: false
            }
        );
        let rest = leg.collect_digits(&spec(5)).await.unwrap();
        assert_eq!(
            rest,
            DigitOutcome::Digits {
                digits: "23".into(),
                terminated: false
            }
        );
    }

    #[tokio::test]
    async fn silence_then_hang_up() {
        let leg = MemoryLeg::caller("+331", "8000", [Action::Silence, Action::HangUp]);
        assert_eq!(
            leg.collect_digits(&spec(1)).await.unwrap(),
            DigitOutcome::NoInput
        );
        assert_eq!(
            leg.collect_digits(&spec(1)).await.unwrap(),
            DigitOutcome::HungUp
        );
        assert!(leg.is_ended());
        leg.hung_up().await;
        assert_eq!(leg.transcript(), vec!["no input", "caller hangs up"]);
    }

    #[tokio::test]
    async fn bridge_ends_when_the_other_side_hangs_up() {
        let a = MemoryLeg::caller("+331", "8000", []);
        let b = MemoryLeg::caller("alice", "+331", []);
        let b2 = b.clone();
        let t = tokio::spawn(async move { a.bridge(b2).await });
        tokio::task::yield_now().await;
        b.hang_up(HangupCause::Normal).await.unwrap();
        assert_eq!(t.await.unwrap().unwrap(), BridgeEnd::OtherSide);
    }

    #[tokio::test]
    async fn dialer_follows_scripts_then_default() {
        let d = MemoryDialer::new(Answer::Refuse(DialResult::NoAnswer), None);
        d.script("+33611", Answer::Refuse(DialResult::Busy));
        d.script("+33611", Answer::Pick(vec![]));
        let target = DialTarget::Customer {
            number: "+33611".into(),
            trunk: None,
        };
        let r = Duration::from_secs(1);
        assert_eq!(
            d.dial(Dial::new(&target, "8000", r)).await.err(),
            Some(DialResult::Busy)
        );
        assert!(d.dial(Dial::new(&target, "8000", r)).await.is_ok());
        assert_eq!(
            d.dial(Dial::new(&target, "8000", r)).await.err(),
            Some(DialResult::NoAnswer)
        );
        assert_eq!(d.calls().len(), 3);
    }
}
