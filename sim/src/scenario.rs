//! Scenario files: what to simulate (engine configuration, arrivals, callers, agents), read
//! from YAML with `boomerang::yaml` so that every mistake is reported at its line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use boomerang::yaml::{self, Diagnostic, Node, Pos};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::dist::Dist;

/// Why a scenario cannot be used.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// File.
        file: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// One or more problems in the file, rendered with the offending line.
    #[error("{0}")]
    Invalid(String),
}

/// A duration in seconds, written as a number of seconds or as text such as `90s`, `30m`,
/// `8h`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Secs(pub f64);

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(f64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(n) if n.is_finite() && n >= 0.0 => Ok(Secs(n)),
            Either::N(n) => Err(serde::de::Error::custom(format!(
                "{n} is not a duration (seconds ≥ 0)"
            ))),
            Either::S(s) => parse_duration(&s).map(Secs).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration: use seconds or a number with s, m, h or d"
                ))
            }),
        }
    }
}

/// Parses `90`, `90s`, `1.5m`, `8h`, `2d` into seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: f64 = num.trim().parse().ok()?;
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return None,
    };
    (n.is_finite() && n >= 0.0).then_some(n * scale)
}

/// The whole scenario as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// Engine configuration, relative to the scenario file (default `../boomerang.yaml`).
    #[serde(default)]
    pub engine: Option<String>,
    /// Flows directory replacing the configuration's, relative to the scenario file.
    #[serde(default)]
    pub flows_dir: Option<String>,
    /// Route points replacing the configuration's (`number`, `flow`), passed through as is.
    #[serde(default)]
    pub route_points: Option<serde_json::Value>,
    /// Virtual queues replacing the configuration's, passed through as is.
    #[serde(default)]
    pub queues: Option<serde_json::Value>,
    /// Simulated start instant (RFC 3339).
    pub start: DateTime<Utc>,
    /// How long callers arrive.
    pub duration: Secs,
    /// Calls arriving before this offset are served but left out of the statistics.
    #[serde(default)]
    pub warmup: Secs,
    /// After the arrivals stop, how long to let callbacks and queued calls finish at most.
    #[serde(default = "default_drain")]
    pub drain_limit: Secs,
    /// Random seed; the same seed gives the same report.
    #[serde(default)]
    pub seed: u64,
    /// Service-level threshold.
    #[serde(default = "default_sl")]
    pub service_level: Secs,
    /// Interval between samples of the queue lengths.
    #[serde(default = "default_sample")]
    pub sample_every: Secs,
    /// Store for callbacks: `memory` (default, deterministic) or `sqlite` (durable, in a
    /// temporary directory).
    #[serde(default)]
    pub store: StoreKind,
    /// Length of IVR prompts and key presses.
    #[serde(default)]
    pub ivr: IvrTiming,
    /// Arrival streams.
    pub arrivals: Vec<ArrivalSpec>,
    /// What callers do.
    #[serde(default)]
    pub caller: CallerSpec,
    /// Agent profiles.
    pub agents: Vec<AgentProfile>,
}

fn default_drain() -> Secs {
    Secs(4.0 * 3600.0)
}
fn default_sl() -> Secs {
    Secs(20.0)
}
fn default_sample() -> Secs {
    Secs(1.0)
}

/// Which store backs the callback service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// In memory: fast and deterministic.
    #[default]
    Memory,
    /// The engine's SQLite store in a temporary directory.
    Sqlite,
}

/// Timing of IVR interactions on simulated calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrTiming {
    /// Length of any prompt.
    #[serde(default = "three")]
    pub prompt: Secs,
    /// Time a caller takes per key.
    #[serde(default = "half")]
    pub key: Secs,
}

fn three() -> Secs {
    Secs(3.0)
}
fn half() -> Secs {
    Secs(0.5)
}

impl Default for IvrTiming {
    fn default() -> Self {
        IvrTiming {
            prompt: three(),
            key: half(),
        }
    }
}

/// One arrival stream: callers dialling a route point.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalSpec {
    /// Route point dialled.
    #[serde(deserialize_with = "yaml::string_or_number")]
    pub route_point: String,
    /// Inbound queue of the route point's flow (for EWT at arrival and queue-length samples).
    pub queue: String,
    /// Poisson arrivals at a constant rate (calls per hour).
    #[serde(default)]
    pub rate_per_hour: Option<f64>,
    /// Poisson arrivals whose rate (calls per hour) changes every hour: entry 0 is the first
    /// hour after `start`; the table repeats.
    #[serde(default)]
    pub hourly: Option<Vec<f64>>,
    /// A CSV file of arrival offsets in seconds from the start (first column; a header line
    /// is allowed), relative to the scenario file.
    #[serde(default)]
    pub csv: Option<String>,
}

/// What callers choose when offered a callback (probabilities; they must sum to 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Accept an immediate callback.
    #[serde(default)]
    pub immediate: f64,
    /// Choose a scheduled callback.
    #[serde(default)]
    pub scheduled: f64,
    /// Keep waiting.
    #[serde(default = "one")]
    pub wait: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Choice {
    fn default() -> Self {
        Choice {
            immediate: 0.0,
            scheduled: 0.0,
            wait: 1.0,
        }
    }
}

/// Keys pressed for each choice, in order, one entry per collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Digits {
    /// Immediate callback: choose it, confirm the number.
    #[serde(default = "imm_digits")]
    pub immediate: Vec<String>,
    /// Scheduled callback: choose it, accept the time, confirm the number.
    #[serde(default = "sched_digits")]
    pub scheduled: Vec<String>,
    /// Keep waiting.
    #[serde(default = "wait_digits")]
    pub wait: Vec<String>,
    /// Key pressed to be connected when called back.
    #[serde(default = "confirm_digit")]
    pub callback_confirm: String,
}

fn imm_digits() -> Vec<String> {
    vec!["1".into(), "1".into()]
}
fn sched_digits() -> Vec<String> {
    vec!["2".into(), "1".into(), "1".into()]
}
fn wait_digits() -> Vec<String> {
    vec!["3".into()]
}
fn confirm_digit() -> String {
    "1".into()
}

impl Default for Digits {
    fn default() -> Self {
        Digits {
            immediate: imm_digits(),
            scheduled: sched_digits(),
            wait: wait_digits(),
            callback_confirm: confirm_digit(),
        }
    }
}

/// How a customer responds when called back (probabilities; they must sum to 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackAnswer {
    /// Answers (and presses the confirm key).
    #[serde(default = "one")]
    pub answer: f64,
    /// Line busy.
    #[serde(default)]
    pub busy: f64,
    /// Rings out.
    #[serde(default)]
    pub no_answer: f64,
    /// Of the answers, the share taken by an answering machine (0..1): it plays a long
    /// greeting and presses nothing; a person says a short hello first. The queue's `amd`
    /// settings decide what the engine does with each.
    #[serde(default)]
    pub machine: f64,
}

impl Default for CallbackAnswer {
    fn default() -> Self {
        CallbackAnswer {
            answer: 1.0,
            busy: 0.0,
            no_answer: 0.0,
            machine: 0.0,
        }
    }
}

/// Caller behaviour.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerSpec {
    /// Choice when offered a callback.
    #[serde(default)]
    pub callback: Choice,
    /// Keys for each choice.
    #[serde(default)]
    pub digits: Digits,
    /// Time a caller waits in queue before hanging up.
    #[serde(default)]
    pub patience: Dist,
    /// Answering when called back.
    #[serde(default)]
    pub callback_answer: CallbackAnswer,
}

/// A group of identical agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    /// Profile name; agents are `<profile>-001`, `<profile>-002`, …
    pub profile: String,
    /// How many.
    pub count: u32,
    /// Skill name → level.
    pub skills: BTreeMap<String, i64>,
    /// Talk time of each conversation.
    pub handle_time: Dist,
    /// Wrap-up after each conversation (the agent takes no call meanwhile).
    #[serde(default)]
    pub after_call_work: Dist,
    /// Working window as offsets from the start; default: the whole run.
    #[serde(default)]
    pub shift: Option<Shift>,
    /// Not-ready breaks, taken after the current call.
    #[serde(default)]
    pub breaks: Option<Breaks>,
}

/// Regular not-ready breaks.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breaks {
    /// Time on duty between breaks.
    pub every: Secs,
    /// Length of each break.
    pub length: Secs,
}

/// A working window.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Log in (Ready) at this offset.
    pub from: Secs,
    /// Log out at this offset (after the current call).
    pub to: Secs,
}

/// A loaded scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file.
    pub file: PathBuf,
    /// Its directory (relative paths are resolved against it).
    pub dir: PathBuf,
    /// The content.
    pub spec: ScenarioSpec,
    /// The text, for diagnostics found later (against the engine configuration).
    pub text: String,
    /// Where each arrival stream's `route_point` and `queue` values are written.
    pub arrival_pos: Vec<(Pos, Pos)>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(file: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_str_in(&text, file, &dir)
    }

    /// Validates scenario text; `file` names it in diagnostics.
    pub fn from_str_in(text: &str, file: &Path, dir: &Path) -> Result<Scenario, ScenarioError> {
        let render = |ds: Vec<Diagnostic>| {
            ScenarioError::Invalid(
                ds.iter()
                    .map(|d| d.clone().in_file(file).render(text))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        };
        let root = yaml::parse(text).map_err(|d| render(vec![d]))?;
        let spec: ScenarioSpec = root.decode("").map_err(|d| render(vec![d]))?;
        let diags = check(&root, &spec);
        if !diags.is_empty() {
            return Err(render(diags));
        }
        let arrival_pos = root
            .get("arrivals")
            .map(|a| {
                a.items()
                    .iter()
                    .map(|item| {
                        let at = |k: &str| item.get(k).map(|n| n.pos).unwrap_or(item.pos);
                        (at("route_point"), at("queue"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Scenario {
            file: file.to_path_buf(),
            dir: dir.to_path_buf(),
            spec,
            text: text.to_string(),
            arrival_pos,
        })
    }

    /// A problem at `pos` of this file, rendered with the line and a caret.
    pub fn diagnose(&self, pos: Pos, path: &str, message: &str) -> String {
        Diagnostic::new(pos, path, message)
            .in_file(&self.file)
            .render(&self.text)
    }

    /// The engine configuration file.
    pub fn engine_path(&self) -> PathBuf {
        self.dir
            .join(self.spec.engine.as_deref().unwrap_or("../boomerang.yaml"))
    }
}

fn pos_of(root: &Node, path: &[&str], index: Option<(usize, &str)>) -> Pos {
    let mut n = root;
    for k in path {
        match n.get(k) {
            Some(x) => n = x,
            None => return n.pos,
        }
    }
    if let Some((i, key)) = index
        && let Some(item) = n.items().get(i)
    {
        n = item;
        if let Some((k, _)) = n.entry(key) {
            return k.pos;
        }
    }
    n.pos
}

fn check(root: &Node, s: &ScenarioSpec) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    let mut bad = |pos: Pos, path: String, msg: String| d.push(Diagnostic::new(pos, path, msg));
    if s.duration.0 <= 0.0 {
        bad(
            pos_of(root, &["duration"], None),
            "duration".into(),
            "the run must last more than zero seconds".into(),
        );
    }
    if s.warmup.0 >= s.duration.0 {
        bad(
            pos_of(root, &["warmup"], None),
            "warmup".into(),
            "the warm-up must be shorter than the duration".into(),
        );
    }
    if s.sample_every.0 <= 0.0 {
        bad(
            pos_of(root, &["sample_every"], None),
            "sample_every".into(),
            "must be more than zero seconds".into(),
        );
    }
    if s.arrivals.is_empty() {
        bad(
            pos_of(root, &["arrivals"], None),
            "arrivals".into(),
            "at least one arrival stream is needed".into(),
        );
    }
    for (i, a) in s.arrivals.iter().enumerate() {
        let given = [
            a.rate_per_hour.is_some(),
            a.hourly.is_some(),
            a.csv.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        let path = format!("arrivals[{i}]");
        if given != 1 {
            bad(
                pos_of(root, &["arrivals"], Some((i, "route_point"))),
                path.clone(),
                "give exactly one of rate_per_hour, hourly or csv".into(),
            );
        }
        let rates = a
            .rate_per_hour
            .iter()
            .copied()
            .chain(a.hourly.iter().flatten().copied());
        for r in rates {
            if !(r.is_finite() && r >= 0.0) {
                bad(
                    pos_of(root, &["arrivals"], Some((i, "rate_per_hour"))),
                    path.clone(),
                    format!("rate {r} must be a number of calls per hour ≥ 0"),
                );
            }
        }
        if a.hourly.as_ref().is_some_and(|h| h.is_empty()) {
            bad(
                pos_of(root, &["arrivals"], Some((i, "hourly"))),
                format!("{path}.hourly"),
                "the hourly table is empty".into(),
            );
        }
    }
    let c = &s.caller;
    let sum = c.callback.immediate + c.callback.scheduled + c.callback.wait;
    let probs = [c.callback.immediate, c.callback.scheduled, c.callback.wait];
    if (sum - 1.0).abs() > 1e-6 || probs.iter().any(|p| !(0.0..=1.0).contains(p)) {
        bad(
            pos_of(root, &["caller", "callback"], None),
            "caller.callback".into(),
            format!("probabilities must be in 0..1 and sum to 1 (they sum to {sum})"),
        );
    }
    let a = &c.callback_answer;
    let sum = a.answer + a.busy + a.no_answer;
    let probs = [a.answer, a.busy, a.no_answer];
    if (sum - 1.0).abs() > 1e-6 || probs.iter().any(|p| !(0.0..=1.0).contains(p)) {
        bad(
            pos_of(root, &["caller", "callback_answer"], None),
            "caller.callback_answer".into(),
            format!("probabilities must be in 0..1 and sum to 1 (they sum to {sum})"),
        );
    }
    if !(0.0..=1.0).contains(&a.machine) {
        bad(
            pos_of(root, &["caller", "callback_answer", "machine"], None),
            "caller.callback_answer.machine".into(),
            format!("a share in 0..1, not {}", a.machine),
        );
    }
    if let Err(e) = c.patience.check() {
        bad(
            pos_of(root, &["caller", "patience"], None),
            "caller.patience".into(),
            e,
        );
    }
    if s.agents.is_empty() {
        bad(
            pos_of(root, &["agents"], None),
            "agents".into(),
            "at least one agent profile is needed".into(),
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in s.agents.iter().enumerate() {
        let path = format!("agents[{i}]");
        if p.profile.is_empty()
            || !p
                .profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bad(
                pos_of(root, &["agents"], Some((i, "profile"))),
                format!("{path}.profile"),
                "use letters, digits, `-` and `_`".into(),
            );
        }
        if !names.insert(p.profile.clone()) {
            bad(
                pos_of(root, &["agents"], Some((i, "profile"))),
                format!("{path}.profile"),
                format!("profile `{}` is defined twice", p.profile),
            );
        }
        if p.count == 0 {
            bad(
                pos_of(root, &["agents"], Some((i, "count"))),
                format!("{path}.count"),
                "count must be at least 1".into(),
            );
        }
        for (key, dist) in [
            ("handle_time", &p.handle_time),
            ("after_call_work", &p.after_call_work),
        ] {
            if let Err(e) = dist.check() {
                bad(
                    pos_of(root, &["agents"], Some((i, key))),
                    format!("{path}.{key}"),
                    e,
                );
            }
        }
        if let Some(b) = p.breaks
            && (b.every.0 <= 0.0 || b.length.0 <= 0.0)
        {
            bad(
                pos_of(root, &["agents"], Some((i, "breaks"))),
                format!("{path}.breaks"),
                "`every` and `length` must be more than zero".into(),
            );
        }
        if let Some(sh) = p.shift
            && sh.to.0 <= sh.from.0
        {
            bad(
                pos_of(root, &["agents"], Some((i, "shift"))),
                format!("{path}.shift"),
                "the shift must end after it starts".into(),
            );
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("90"), Some(90.0));
        assert_eq!(parse_duration("1.5m"), Some(90.0));
        assert_eq!(parse_duration("8h"), Some(28800.0));
        assert_eq!(parse_duration("2d"), Some(172800.0));
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(parse_duration("-1s"), None);
    }

    const MINIMAL: &str = "start: 2026-03-02T09:00:00Z
duration: 1h
arrivals:
  - route_point: 9000
    queue: Q
    rate_per_hour: 100
agents:
  - profile: a
    count: 2
    skills: {Sales: 5}
    handle_time: {exponential: 180}
";

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = Scenario::from_str_in(MINIMAL, Path::new("s.yaml"), Path::new(".")).unwrap();
        assert_eq!(s.spec.duration.0, 3600.0);
        assert_eq!(s.spec.arrivals[0].route_point, "9000");
        assert_eq!(s.spec.caller.callback.wait, 1.0);
        assert_eq!(s.spec.service_level.0, 20.0);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let text = MINIMAL.replace("count: 2", "count: 0");
        let e = Scenario::from_str_in(&text, Path::new("s.yaml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.yaml:9:5"), "{e}");
        assert!(e.contains("count must be at least 1"), "{e}");
        let text = MINIMAL.replace("rate_per_hour: 100", "rate_per_houre: 100");
        let e = Scenario::from_str_in(&text, Path::new("s.yaml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("s.yaml:6:5"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
        let text = MINIMAL.replace("{exponential: 180}", "{exponential: -3}");
        let e = Scenario::from_str_in(&text, Path::new("s.yaml"), Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("handle_time"), "{e}");
    }
}
