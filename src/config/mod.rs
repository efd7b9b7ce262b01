//! The engine file (`boomerang.yaml`): listeners, route points, trunks, agents, business hours
//! and virtual queues with their CALLBACK_SETTINGS row. Loading reports every problem at once,
//! each with its YAML path and line/column.

mod check;
mod decode;
pub mod hours;
pub(crate) mod model;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::valid_skill_name;
pub use hours::{BusinessHours, BusinessHoursSpec, DayHours, DayKind};
pub use model::*;

use crate::diagnostics;
use crate::yaml::{self, Diagnostic, Node, Pos};

/// Everything wrong with a configuration file, in file order, with the text for rendering.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The problems found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// The file's text, for carets.
    pub source: String,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.render(&self.source))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A validated configuration with its references resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// Directory relative paths are resolved against (the file's directory).
    pub base_dir: PathBuf,
    /// The file's content, validated.
    pub spec: ConfigSpec,
    /// Business hours by name, resolved with their time zones.
    pub hours: BTreeMap<String, Arc<BusinessHours>>,
}

impl Config {
    /// Loads and validates a file; every problem is reported, not just the first.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            diagnostics: vec![Diagnostic::whole_file(format!("cannot read: {e}")).in_file(path)],
            source: String::new(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Self::from_str_in(&text, &base).map_err(|mut e| {
            for d in &mut e.diagnostics {
                d.file = Some(path.to_path_buf());
            }
            e
        })?;
        cfg.file = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses and validates YAML text, resolving relative paths against `base_dir`.
    pub fn from_str_in(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let fail = |diagnostics: Vec<Diagnostic>| ConfigErrors {
            diagnostics,
            source: text.to_string(),
        };
        let root = yaml::parse(text).map_err(|d| fail(vec![d]))?;
        let mut v = Validator {
            diags: Vec::new(),
            text,
            base_dir,
        };
        let spec = v.decode(&root);
        let hours = v.check(&root, &spec);
        if v.diags.is_empty() {
            Ok(Config {
                file: None,
                base_dir: base_dir.to_path_buf(),
                spec,
                hours,
            })
        } else {
            let mut d = v.diags;
            diagnostics::tidy(&mut d);
            Err(fail(d))
        }
    }

    /// The demo configuration shipped at the repository root, embedded in the binary.
    pub fn demo_text() -> &'static str {
        include_str!("../../boomerang.yaml")
    }

    /// A queue by service name.
    pub fn queue(&self, name: &str) -> Option<&QueueSpec> {
        self.spec.queues.iter().find(|q| q.name == name)
    }

    /// The business hours a queue follows (always open when it names none).
    pub fn queue_hours(&self, queue: &QueueSpec) -> Arc<BusinessHours> {
        queue
            .business_hours
            .as_ref()
            .and_then(|n| self.hours.get(n).cloned())
            .unwrap_or_else(|| Arc::new(BusinessHours::always_open()))
    }

    /// The hours during which a queue offers immediate callback, if it restricts them.
    pub fn immediate_offer_hours(&self, queue: &QueueSpec) -> Option<Arc<BusinessHours>> {
        queue
            .immediate_offer_hours
            .as_ref()
            .and_then(|n| self.hours.get(n).cloned())
    }

    /// The route point for a dialled number.
    /// A leading `+` is ignored on both sides, so the E.164 form a call-in request hands out
    /// (`+8001`) reaches route point `8001`.
    pub fn route_point(&self, number: &str) -> Option<&RoutePointSpec> {
        let bare = number.trim_start_matches('+');
        self.spec
            .route_points
            .iter()
            .find(|r| r.number.trim_start_matches('+') == bare)
    }

    /// An agent by id.
    pub fn agent(&self, id: &str) -> Option<&AgentSpec> {
        self.spec.agents.iter().find(|a| a.id == id)
    }

    /// A trunk by name, or the first one when `name` is `None`.
    pub fn trunk(&self, name: Option<&str>) -> Option<&TrunkSpec> {
        match name {
            Some(n) => self.spec.trunks.iter().find(|t| t.name == n),
            None => self.spec.trunks.first(),
        }
    }

    /// Directory of flow files.
    pub fn flows_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.flows_dir)
    }

    /// Directory of prompt WAV files.
    pub fn prompts_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.media.prompts_dir)
    }

    /// Directory of the embedded store.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.store.data_dir)
    }
}

impl QueueSpec {
    /// The inbound report queue: explicit, or by convention `X_VQ_CB` → `X_VQ`.
    pub fn inbound_report_queue(&self) -> Option<String> {
        self.inbound_queue
            .clone()
            .or_else(|| self.name.strip_suffix("_CB").map(str::to_string))
    }

    /// The outbound report queue: explicit, or by convention `X_VQ_CB` → `X_VQ_CB_OUT`.
    pub fn outbound_report_queue(&self) -> Option<String> {
        self.outbound_queue.clone().or_else(|| {
            self.name
                .ends_with("_CB")
                .then(|| format!("{}_OUT", self.name))
        })
    }
}

struct Validator<'a> {
    diags: Vec<Diagnostic>,
    text: &'a str,
    base_dir: &'a Path,
}

const TOP_KEYS: &[&str] = &[
    "listeners",
    "sip",
    "media",
    "store",
    "cluster",
    "flows_dir",
    "flows",
    "business_hours",
    "route_points",
    "trunks",
    "agents",
    "queues",
    "api",
    "admin",
    "callin_groups",
    "shutdown",
    "logging",
    "metrics",
    "push",
];

impl Validator<'_> {
    fn err(&mut self, pos: Pos, path: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, path, msg));
    }

    /// A section or item that did not decode; an unknown field gets a did-you-mean.
    fn decode_failed(&mut self, d: Diagnostic) {
        self.diags.push(diagnostics::explain_unknown_field(d));
    }

    /// The decoded value, or `None` after recording why it did not decode.
    fn decoded<T>(&mut self, r: Result<T, Diagnostic>) -> Option<T> {
        r.map_err(|d| self.decode_failed(d)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_str_in(text, Path::new("/nonexistent"))
    }

    /// Loads `text`, which must fail, and checks each diagnostic's line and path, in order.
    fn errors_at(text: &str, expected: &[(usize, &str)]) -> ConfigErrors {
        let errs = load(text).unwrap_err();
        let got: Vec<(usize, &str)> = (errs.diagnostics.iter())
            .map(|d| (d.pos.line, d.path.as_str()))
            .collect();
        assert_eq!(got, expected, "{errs}");
        errs
    }

    #[test]
    fn misspelt_sections_and_fields_get_a_did_you_mean() {
        let errs = load("queus: []\nqueues:\n  - name: Sales_VQ\n    slot_capacty: 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            errs.contains("1:1: queus: unknown section `queus` (did you mean `queues`?); expected one of listeners, sip,"),
            "{errs}"
        );
        assert!(
            errs.contains("4:5: queues[0].slot_capacty: unknown property `slot_capacty` (did you mean `slot_capacity`?); expected one of"),
            "{errs}"
        );
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.spec.listeners.http.port(), 8080);
        assert_eq!(c.spec.listeners.sip_udp[0].port(), 5060);
        assert_eq!(c.spec.flows_dir, "ivr-flows");
        assert_eq!(c.spec.sip.max_message_bytes, 65536);
    }

    #[test]
    fn queue_defaults_and_naming_convention() {
        let c = load("queues:\n  - name: Sales_VQ_CB\n").unwrap();
        let q = c.queue("Sales_VQ_CB").unwrap();
        assert_eq!(q.slot_capacity, 10);
        assert_eq!(q.slot_duration_minutes, 15);
        assert_eq!(q.max_dial_attempts, 3);
        assert!(q.immediate_enabled && q.scheduled_enabled);
        assert_eq!(q.call_direction, CallDirection::BusinessToCustomer);
        assert_eq!(q.inbound_report_queue().as_deref(), Some("Sales_VQ"));
        assert_eq!(
            q.outbound_report_queue().as_deref(),
            Some("Sales_VQ_CB_OUT")
        );
        assert!(
            c.queue_hours(q)
                .is_open(crate::clock::SystemClock::shared().now())
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_positions() {
        let text = "\
listeners:
  http: 'not an address'
queues:
  - name: A_VQ
    slot_capacity: 20000
    skill_expression: 'Sales >= & English'
    business_hours: nowhere
  - name: B_VQ
    colour: blue
agents:
  - id: a1
    skills: {Sales: 11}
  - id: a1
colour: red
";
        let errs = load(text).unwrap_err();
        let got: Vec<(usize, usize, &str)> = errs
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.pos.column, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 9, "listeners.http"),
                (5, 20, "queues[0].slot_capacity"),
                (6, 33, "queues[0].skill_expression"),
                (7, 21, "queues[0].business_hours"),
                (9, 5, "queues[1].colour"),
                (12, 21, "agents[0].skills.Sales"),
                (13, 9, "agents[1].id"),
                (14, 1, "colour"),
            ],
            "{errs}"
        );
        let rendered = errs.to_string();
        assert!(
            rendered.contains("20000 is out of range 0 to 10000"),
            "{rendered}"
        );
        assert!(
            rendered.contains("bad skill expression: expected a level"),
            "{rendered}"
        );
    }

    #[test]
    fn admin_users_are_checked_with_positions() {
        let text = "\
queues:
  - name: Sales_VQ_CB
admin:
  session_idle_minutes: 0
  users:
    - {name: ann, password_hash: 'plain', roles: [Monitor]}
    - name: ann
      password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$S7w3t7lXzlEm1b2UazRQvn+0tcJkYQVnH2fGiGo6wXU'
      roles: []
      queues: [Sales_VQ_CB, Nowhere]
    - {name: bob, password_hash: x, roles: [Janitor]}
";
        let errs = errors_at(
            text,
            &[
                (4, "admin.session_idle_minutes"),
                (6, "admin.users[0].password_hash"),
                (7, "admin.users[1].name"),
                (9, "admin.users[1].roles"),
                (10, "admin.users[1].queues[1]"),
                (11, "admin.users[2].roles[0]"),
            ],
        );
        assert!(
            errs.to_string().contains("boomerang hash-password"),
            "{errs}"
        );
    }

    #[test]
    fn business_hours_errors_point_into_the_hours() {
        let text =
            "business_hours:\n  main:\n    time_zone: Mars/Base\n    weekly:\n      mon: 9-5\n";
        errors_at(
            text,
            &[
                (3, "business_hours.main.time_zone"),
                (5, "business_hours.main.weekly.mon"),
            ],
        );
    }

    #[test]
    fn the_shipped_demo_configuration_is_valid() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&base.join("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.spec.route_points.is_empty());
        assert!(!c.spec.agents.is_empty());
        assert!(c.spec.queues.iter().any(|q| q.name.ends_with("_CB")));
    }

    #[test]
    fn retention_settings_have_defaults_and_ranges() {
        let c = load("queues: []\n").unwrap();
        assert_eq!(
            (
                c.spec.store.retention_days,
                c.spec.store.retention_sweep_minutes
            ),
            (14, 60)
        );
        let errs =
            load("store:\n  retention_days: 0\n  retention_sweep_minutes: 2000\n").unwrap_err();
        let paths: Vec<&str> = errs.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["store.retention_days", "store.retention_sweep_minutes"],
            "{errs}"
        );
    }

    #[test]
    fn sip_workers_default_to_auto_and_are_bounded() {
        assert_eq!(load("").unwrap().spec.sip.workers, 0);
        assert_eq!(load("sip:\n  workers: 4\n").unwrap().spec.sip.workers, 4);
        let errs = load("sip:\n  workers: 300\n").unwrap_err();
        let paths: Vec<&str> = errs.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["sip.workers"], "{errs}");
    }

    #[test]
    fn priority_growth_and_calling_hours_are_checked_where_written() {
        let text = "queues:
  - name: A_VQ
    priority_growth: {increment: 1, every_seconds: 30, limit: 9}
    calling_hours: {start: '09:00', end: '20:00', days: [mon, fri], time_zone: Europe/Paris}
  - name: B_VQ
    priority_growth: {increment: 0, every_seconds: 30, limit: 9}
    calling_hours: {start: '09:00', end: '8pm'}
";
        let errs = load(text).unwrap_err();
        let got: Vec<String> = errs
            .diagnostics
            .iter()
            .map(|d| format!("{}:{} {}", d.pos.line, d.pos.column, d.path))
            .collect();
        let want = [
            "6:34 queues[1].priority_growth.increment",
            "7:42 queues[1].calling_hours.end",
        ];
        assert_eq!(got, want, "{errs}");
        assert!(load(&text[..text.find("  - name: B_VQ").unwrap()]).is_ok());
    }
}
