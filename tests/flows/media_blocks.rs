//! Golden transcripts of the media blocks on the scripted in-memory leg: Record ending on
//! silence, at its maximum length and on a hang-up, with the WAV it wrote and the data it
//! attached; Record refusing when the recordings directory is full.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boomerang::call::CallLeg;
use boomerang::call::memory::{Action, MemoryLeg};
use boomerang::flow::expr::Value;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, Ending, LoadContext, RunReport};

use crate::common::repo;
use crate::harness::{Harness, harness, harness_with};

async fn run_flow(h: &Harness, text: &str, leg: Arc<MemoryLeg>) -> RunReport {
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let f = flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
    let vars = system_variables(leg.as_ref(), &leg.info().dnis);
    flow::run(&f, leg, &h.services, vars).await
}

fn voicemail(max: u32, silence: u32) -> String {
    format!(
        "application: voicemail
type: default
self_service:
  - type: record
    id: rec
    prompts: [leave-message]
    max_seconds: {max}
    silence_seconds: {silence}
    on_failure: full
  - type: play_message
    prompts: [goodbye]
  - type: terminate_call
  - type: play_message
    id: full
    prompts: [cannot-route]
"
    )
}

fn wav_ms(h: &Harness, id: &Value) -> u64 {
    let path =
        boomerang::recordings::path_of(&h.core.config.data_dir(), id.to_string().parse().unwrap());
    let r = hound::WavReader::open(&path).unwrap();
    assert_eq!(r.spec().sample_rate, 8000);
    u64::from(r.duration()) / 8
}

#[tokio::test]
async fn record_ends_on_silence_keeping_half_a_second_after_the_speech() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8000",
        [Action::Speak(Duration::from_secs(3))],
    );
    let r = run_flow(&h, &voicemail(60, 2), leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "rec (record): recorded 3.5 s (silence)",
            "self_service[1] (play_message): played",
            "self_service[2] (terminate_call): end (normal)",
        ]
    );
    assert_eq!(
        leg.transcript(),
        [
            "play leave-message",
            "play beep",
            "listened to: speaks 3000 ms",
            "play goodbye",
            "hang up (Normal)",
        ]
    );
    let id = r.variables["recording.id"].clone();
    assert_eq!(r.variables["recording.seconds"], Value::Num(3.5));
    assert_eq!(r.variables["recording.speech_seconds"], Value::Num(3.0));
    assert_eq!(r.variables["recording.ended"], Value::Str("silence".into()));
    assert_eq!(r.variables["call_data.recording"], id);
    assert_eq!(wav_ms(&h, &id), 3500);
    let listed = boomerang::recordings::list(h.core.store.as_ref())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id.to_string(), id.to_string());
    assert_eq!(listed[0].ani, "+33612345678");
}

#[tokio::test]
async fn record_stops_at_its_maximum_length_and_on_a_hang_up() {
    let h = harness().await;
    let leg = MemoryLeg::caller("+1", "8000", [Action::Speak(Duration::from_secs(30))]);
    let r = run_flow(&h, &voicemail(4, 2), leg).await;
    assert_eq!(r.lines()[0], "rec (record): recorded 4.0 s (max_length)");
    assert_eq!(wav_ms(&h, &r.variables["recording.id"]), 4000);

    let leg = MemoryLeg::caller(
        "+1",
        "8000",
        [Action::Speak(Duration::from_millis(2200)), Action::HangUp],
    );
    let r = run_flow(&h, &voicemail(60, 0), leg.clone()).await;
    assert_eq!(r.lines(), ["rec (record): recorded 2.2 s (hang_up)"]);
    assert_eq!(r.ending, Ending::CallerHungUp);
    assert_eq!(wav_ms(&h, &r.variables["recording.id"]), 2200);
    assert_eq!(leg.transcript().last().unwrap(), "caller hangs up");
}

#[tokio::test]
async fn record_takes_on_failure_when_the_directory_is_full() {
    let h = harness_with(
        |spec| spec.media.recordings_max_total_mb = 1,
        crate::common::monday_9am_utc(),
    )
    .await;
    // 65 s of recording is 1040 KB: the first fits in 1 MiB, the second might not.
    let leg = MemoryLeg::caller("+1", "8000", [Action::Speak(Duration::from_secs(1))]);
    let r = run_flow(&h, &voicemail(65, 1), leg).await;
    assert_eq!(r.lines()[0], "rec (record): recorded 1.5 s (silence)");
    let leg = MemoryLeg::caller("+1", "8000", [Action::Speak(Duration::from_secs(1))]);
    let r = run_flow(&h, &voicemail(65, 1), leg.clone()).await;
    assert_eq!(
        r.lines()[..2],
        [
            "rec (record): failed (the recordings directory is full (24044 of 1048576 bytes used))",
            "full (play_message): played",
        ]
    );
    assert_eq!(r.variables["recording.id"], Value::Str(String::new()));
    assert_eq!(leg.transcript()[0], "play cannot-route");
}

const SURVEY: &str = "application: post-call survey
type: default
self_service:
  - type: survey
    name: csat
    intro: [survey-intro]
    questions:
      - {id: agent, prompts: [survey-question-1]}
      - {id: recommend, prompts: [survey-question-2]}
    no_match_prompts: [invalid-code]
    thanks: [survey-thanks]
    retries: 1
";

#[tokio::test]
async fn survey_keeps_answers_from_1_to_5_and_asks_again_after_a_wrong_key() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+33612345678",
        "8020",
        [
            Action::Press("4".into()),
            Action::Press("9".into()),
            Action::Press("5".into()),
        ],
    );
    let r = run_flow(&h, SURVEY, leg.clone()).await;
    assert_eq!(
        r.lines(),
        ["self_service[0] (survey): answers agent=4, recommend=5"]
    );
    assert_eq!(
        leg.transcript(),
        [
            "play survey-intro",
            "play survey-question-1",
            "input 4",
            "play survey-question-2",
            "input 9",
            "play invalid-code",
            "play survey-question-2",
            "input 5",
            "play survey-thanks",
            "hang up (Normal)",
        ]
    );
    assert_eq!(r.variables["survey.agent"], Value::Str("4".into()));
    let stored = boomerang::flow::survey::list(h.core.store.as_ref())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].survey, "csat");
    assert_eq!(stored[0].ani, "+33612345678");
    let csv = String::from_utf8(boomerang::flow::survey::csv(&stored).unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].ends_with(",csat,") || lines[1].contains(",agent,4"),
        "{csv}"
    );
    assert!(lines[2].ends_with(",recommend,5"), "{csv}");
}

#[tokio::test]
async fn survey_without_answers_stores_empty_answers() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+1",
        "8020",
        [Action::Silence, Action::Silence, Action::HangUp],
    );
    let r = run_flow(&h, SURVEY, leg).await;
    assert_eq!(
        r.lines(),
        ["self_service[0] (survey): answers agent=-, recommend=-"]
    );
    assert_eq!(r.ending, Ending::CallerHungUp);
}
