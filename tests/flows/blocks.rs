//! Scenarios for single blocks on the scripted in-memory leg: menus that assign, If with and
//! without `otherwise`, Business Hours on regular and special days, User Input retries and
//! patterns, barge-in, and Finalize after a hang-up. Same harness as `tests/flows/shipped.rs`.

use std::path::Path;
use std::sync::Arc;

use boomerang::call::CallLeg;
use boomerang::call::memory::{Action, MemoryLeg};
use boomerang::config::ConfigSpec;
use boomerang::flow::expr::Value;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, Ending, LoadContext, RunReport};
use chrono::{DateTime, TimeZone, Utc};

use crate::common::{self, repo};
use crate::harness::{Harness, harness, harness_with};

impl Harness {
    /// Loads `text` (checked like a shipped flow) and runs it on `leg`.
    async fn run(&self, text: &str, leg: Arc<MemoryLeg>) -> RunReport {
        let prompts = flow::load::prompt_names(&repo().join("prompts"));
        let ctx = LoadContext {
            config: &self.core.config,
            prompts: Some(&prompts),
        };
        let f =
            flow::load_str(Path::new("test.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"));
        let vars = system_variables(leg.as_ref(), &leg.info().dnis);
        flow::run(&f, leg, &self.services, vars).await
    }
}

fn var(r: &RunReport, k: &str) -> Option<Value> {
    r.variables.get(k).cloned()
}

const MENU: &str = "application: menu
type: default
variables:
  lang: en
self_service:
  - type: menu
    id: lang_menu
    prompts: [welcome]
    no_match_prompts: [invalid-code]
    no_input_prompts: [please-hold]
    retries: 1
    options:
      1:
        assign: {lang: \"'fr'\", picked: menu.choice + '!'}
      2: {goto: english, assign: {lang: \"'en-' + lang\"}}
      \"*\": bye
    on_failure: bye
  - type: play_message
    id: french
    prompts: [digit-1]
    next: bye
  - type: play_message
    id: english
    prompts: [digit-2]
  - type: terminate_call
    id: bye
";

#[tokio::test]
async fn a_menu_option_without_goto_assigns_and_continues_below() {
    let h = harness().await;
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::Press("1".into())]);
    let r = h.run(MENU, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "lang_menu (menu): option 1",
            "french (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "lang"), Some(Value::from("fr")));
    // Assignments run after `menu.choice` is set, in key order.
    assert_eq!(var(&r, "menu.choice"), Some(Value::from("1")));
    assert_eq!(var(&r, "picked"), Some(Value::from("1!")));
    assert_eq!(
        leg.transcript(),
        [
            "play welcome",
            "input 1",
            "play digit-1",
            "hang up (Normal)"
        ]
    );
    assert_eq!(r.ending, Ending::Terminated);
}

#[tokio::test]
async fn a_wrong_key_plays_no_match_then_an_option_with_goto_assigns_and_jumps() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+33611111111",
        "8000",
        [Action::Press("7".into()), Action::Press("2".into())],
    );
    let r = h.run(MENU, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "lang_menu (menu): option 2",
            "english (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    // The expression reads the initial value of `lang`.
    assert_eq!(var(&r, "lang"), Some(Value::from("en-en")));
    assert_eq!(
        leg.transcript(),
        [
            "play welcome",
            "input 7",
            "play invalid-code",
            "play welcome",
            "input 2",
            "play digit-2",
            "hang up (Normal)",
        ]
    );
}

#[tokio::test]
async fn a_silent_caller_hears_no_input_prompts_and_leaves_by_on_failure() {
    let h = harness().await;
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::Silence, Action::Silence]);
    let r = h.run(MENU, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "lang_menu (menu): failed (no input)",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(
        leg.transcript(),
        [
            "play welcome",
            "no input",
            "play please-hold",
            "play welcome",
            "no input",
            "hang up (Normal)",
        ]
    );
    assert_eq!(var(&r, "menu.choice"), None);
    assert_eq!(var(&r, "lang"), Some(Value::from("en")));
}

const SEGMENT: &str = "application: segment
type: default
variables:
  vip: false
self_service:
  - type: user_input
    variable: code
    prompts: [enter-access-code]
    min_digits: 2
    max_digits: 4
    pattern: \"[0-9]+\"
    no_match_prompts: [invalid-code]
  - type: if
    conditions:
      - when: code == '07'
        goto: seven
      - when: number(code) > 100 || vip
        goto: big
    otherwise: small
  - type: play_message
    id: seven
    prompts: [digit-7]
    next: bye
  - type: play_message
    id: big
    prompts: [digit-9]
    next: bye
  - type: if
    id: small
    conditions:
      - when: len(code) == 4
        goto: bye
  - type: play_message
    prompts: [digit-0]
  - type: terminate_call
    id: bye
";

async fn segment(keys: &str) -> (RunReport, Vec<String>) {
    let h = harness().await;
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::Press(keys.into())]);
    let r = h.run(SEGMENT, leg.clone()).await;
    (r, leg.transcript())
}

#[tokio::test]
async fn if_takes_the_first_true_condition_and_compares_digit_text_as_text() {
    let (r, t) = segment("07#").await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (user_input): input 07",
            "self_service[1] (if): code == '07' → seven",
            "seven (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(t[2], "play digit-7");
    assert_eq!(var(&r, "code"), Some(Value::from("07")));
    // "7" is not "07": the first condition fails, and 7 > 100 is false too.
    let (r, _) = segment("7#").await;
    assert_eq!(
        r.lines()[0],
        "self_service[0] (user_input): failed (no input; rejected 7)"
    );
}

#[tokio::test]
async fn if_without_a_true_condition_goes_to_otherwise_or_falls_through() {
    let (r, _) = segment("250#").await;
    assert_eq!(
        r.lines()[1],
        "self_service[1] (if): number(code) > 100 || vip → big"
    );
    let (r, t) = segment("42#").await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (user_input): input 42",
            "self_service[1] (if): no condition held",
            "small (if): no condition held",
            "self_service[5] (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(
        t,
        [
            "play enter-access-code",
            "input 42 (terminated)",
            "play digit-0",
            "hang up (Normal)"
        ]
    );
    let (r, _) = segment("0042#").await;
    assert_eq!(r.lines()[2], "small (if): len(code) == 4 → bye");
}

#[tokio::test]
async fn user_input_rejects_a_pattern_mismatch_then_fails_with_an_empty_variable() {
    let h = harness().await;
    let leg = MemoryLeg::caller(
        "+33611111111",
        "8000",
        [
            Action::Press("1*#".into()),
            Action::Press("5#".into()),
            Action::Silence,
        ],
    );
    let r = h.run(SEGMENT, leg.clone()).await;
    assert_eq!(
        r.lines()[0],
        "self_service[0] (user_input): failed (no input; rejected 1*, 5)"
    );
    assert_eq!(var(&r, "code"), Some(Value::from("")));
    assert_eq!(
        leg.transcript()[..8],
        [
            "play enter-access-code",
            "input 1* (terminated)",
            "play invalid-code",
            "play enter-access-code",
            "input 5 (terminated)",
            "play invalid-code",
            "play enter-access-code",
            "no input",
        ]
    );
}

const HOURS: &str = "application: hours
type: default
self_service:
  - type: business_hours
    hours: sales_hours
    open: open
    closed: closed
    special: special
  - type: play_message
    id: open
    prompts: [welcome]
    next: bye
  - type: play_message
    id: special
    prompts: [please-hold]
    next: bye
  - type: play_message
    id: closed
    prompts: [closed]
  - type: terminate_call
    id: bye
";

/// Adds a shortened special day (1 May 2026, 10:00-12:00) to the sales hours.
fn with_may_day(spec: &mut ConfigSpec) {
    let sales = spec
        .business_hours
        .get_mut("sales_hours")
        .expect("the demo's sales hours");
    sales
        .special_days
        .push(boomerang::config::hours::SpecialDaySpec {
            date: chrono::NaiveDate::from_ymd_opt(2026, 5, 1).expect("a date"),
            hours: "10:00-12:00".into(),
            name: "May Day".into(),
        });
}

async fn hours_at(at: DateTime<Utc>, flow: &str) -> RunReport {
    let h = harness_with(with_may_day, at).await;
    let leg = MemoryLeg::caller("+33611111111", "8000", []);
    h.run(flow, leg).await
}

#[tokio::test]
async fn business_hours_on_a_regular_open_day() {
    let r = hours_at(common::monday_9am_utc(), HOURS).await;
    assert_eq!(
        r.lines()[..2],
        [
            "self_service[0] (business_hours): open",
            "open (play_message): played"
        ]
    );
    assert_eq!(var(&r, "hours.state"), Some(Value::from("open")));
    assert_eq!(var(&r, "hours.local_time"), Some(Value::from("10:00")));
}

#[tokio::test]
async fn business_hours_on_an_open_special_day_take_the_special_branch() {
    // Friday 1 May 2026, 11:30 in Paris (UTC+2).
    let r = hours_at(Utc.with_ymd_and_hms(2026, 5, 1, 9, 30, 0).unwrap(), HOURS).await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (business_hours): open (special day)",
            "special (play_message): played",
            "bye (terminate_call): end (normal)",
        ]
    );
    assert_eq!(var(&r, "hours.state"), Some(Value::from("special")));
    assert_eq!(var(&r, "hours.local_time"), Some(Value::from("11:30")));
    // Without a `special` branch the open branch is taken.
    let r = hours_at(
        Utc.with_ymd_and_hms(2026, 5, 1, 9, 30, 0).unwrap(),
        &HOURS.replace("    special: special\n", "").replace(
            "  - type: play_message\n    id: special\n    prompts: [please-hold]\n    next: bye\n",
            "",
        ),
    )
    .await;
    assert_eq!(r.lines()[1], "open (play_message): played");
}

#[tokio::test]
async fn business_hours_closed_after_a_special_days_hours_and_on_a_closed_special_day() {
    // 1 May at 12:30 in Paris: after the special day's hours, although a Friday is open till 20:00.
    let r = hours_at(Utc.with_ymd_and_hms(2026, 5, 1, 10, 30, 0).unwrap(), HOURS).await;
    assert_eq!(r.lines()[0], "self_service[0] (business_hours): closed");
    assert_eq!(r.lines()[1], "closed (play_message): played");
    assert_eq!(var(&r, "hours.state"), Some(Value::from("closed")));
    // Christmas (a Friday) is closed all day.
    let r = hours_at(Utc.with_ymd_and_hms(2026, 12, 25, 10, 0, 0).unwrap(), HOURS).await;
    assert_eq!(r.lines()[0], "self_service[0] (business_hours): closed");
    assert_eq!(var(&r, "hours.local_time"), Some(Value::from("11:00")));
}

#[tokio::test]
async fn barge_in_stops_a_prompt_and_the_key_feeds_the_next_input() {
    let h = harness().await;
    let text = "application: barge
type: default
self_service:
  - type: play_message
    prompts: [welcome, please-hold]
  - type: user_input
    variable: choice
    max_digits: 1
  - type: play_message
    prompts: [goodbye]
    barge_in: false
";
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::BargeIn("5".into())]);
    let r = h.run(text, leg.clone()).await;
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (play_message): interrupted by 5",
            "self_service[1] (user_input): input 5",
            "self_service[2] (play_message): played",
        ]
    );
    assert_eq!(r.ending, Ending::FlowEnd);
    assert_eq!(var(&r, "choice"), Some(Value::from("5")));
}

#[tokio::test]
async fn a_hang_up_mid_flow_skips_to_finalize() {
    let h = harness().await;
    let text = "application: hangup
type: default
variables:
  steps: 0
self_service:
  - type: assign
    set: {steps: steps + 1}
  - type: user_input
    variable: code
    prompts: [enter-access-code]
  - type: assign
    set: {steps: steps + 1}
finalize:
  - type: if
    conditions: [{when: is_empty(code), goto: gone}]
  - type: assign
    set: {summary: \"'entered ' + code\"}
  - type: assign
    id: gone
    set: {summary: \"'gone after ' + steps + ' step(s), ani ' + ani\"}
";
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::HangUp]);
    let r = h.run(text, leg.clone()).await;
    assert_eq!(r.ending, Ending::CallerHungUp);
    assert_eq!(
        r.lines(),
        [
            "self_service[0] (assign): steps=1",
            "self_service[1] (user_input): caller hung up",
            "finalize[0] (if): is_empty(code) → gone",
            "gone (assign): summary=gone after 1 step(s), ani +33611111111",
        ]
    );
    assert_eq!(var(&r, "steps"), Some(Value::Num(1.0)));
}

#[tokio::test]
async fn assignments_run_in_the_order_written() {
    let h = harness().await;
    let text = "application: order
type: default
self_service:
  - type: menu
    prompts: [welcome]
    options:
      1: {assign: {z: 2, a: z + 1}}
  - type: assign
    set:
      total: 10
      base: total + a
      label: \"'n=' + base\"
";
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::Press("1".into())]);
    let r = h.run(text, leg).await;
    assert_eq!(var(&r, "a"), Some(Value::Num(3.0)), "{:?}", r.lines());
    assert_eq!(var(&r, "base"), Some(Value::Num(13.0)));
    assert_eq!(
        r.lines()[1],
        "self_service[1] (assign): total=10, base=13, label=n=13"
    );
}

#[tokio::test]
async fn expression_conversions_documented_in_the_readme() {
    let h = harness().await;
    let text = "application: conversions
type: default
variables:
  tries: 0
self_service:
  - type: user_input
    variable: code
    max_digits: 4
  - type: assign
    set:
      next_try: tries + 1
      glued: code + 1
      summed: number(code) + 1
      as_text: code == '42'
      as_number: code == 42
      text_order: \"'10' > '9'\"
      minus_text: 5 - 'x'
      fr: \"'fr'\"
      not_text: 'lang'
";
    let leg = MemoryLeg::caller("+33611111111", "8000", [Action::Press("0042".into())]);
    let r = h.run(text, leg).await;
    assert_eq!(
        r.lines()[1],
        "self_service[1] (assign): next_try=1, glued=00421, summed=43, as_text=false, \
         as_number=true, text_order=true, minus_text=0, fr=fr, not_text="
    );
    assert_eq!(var(&r, "next_try"), Some(Value::Num(1.0)));
    assert_eq!(var(&r, "glued"), Some(Value::from("00421")));
}
