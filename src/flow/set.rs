//! The applications an engine runs: every flow file of the flows directory, loaded and checked
//! once, looked up by route point (Default applications) or by callback queue (Callback
//! applications).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use super::load::{Flow, FlowErrors, LoadContext, load_dir};
use super::model::AppKind;
use crate::config::Config;
use crate::yaml::{Diagnostic, Pos};

/// Loaded applications by file name (relative to the flows directory).
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    flows: HashMap<String, Arc<Flow>>,
}

impl FlowSet {
    /// Loads the flows directory with the prompt library's names; any error in any file, or a
    /// route point or queue naming an application of the wrong type, fails the whole set.
    pub fn load(
        config: &Config,
        prompts: Option<&BTreeSet<String>>,
    ) -> Result<Self, Vec<FlowErrors>> {
        let ctx = LoadContext { config, prompts };
        let (flows, mut errors) = load_dir(&config.flows_dir(), &ctx);
        let set = FlowSet {
            flows: flows
                .into_iter()
                .filter_map(|f| {
                    let name = f.file.file_name()?.to_string_lossy().into_owned();
                    Some((name, Arc::new(f)))
                })
                .collect(),
        };
        let mut wrong = |file: &str, what: String| {
            errors.push(FlowErrors {
                file: PathBuf::from(file),
                source: String::new(),
                diagnostics: vec![Diagnostic::new(Pos { line: 1, column: 1 }, "type", what)],
            });
        };
        for rp in &config.spec.route_points {
            if let Some(f) = set.flows.get(&rp.flow)
                && f.kind != AppKind::Default
            {
                wrong(
                    &rp.flow,
                    format!("route point {} needs a Default application", rp.number),
                );
            }
        }
        for q in &config.spec.queues {
            if let Some(app) = &q.callback_application
                && let Some(f) = set.flows.get(app)
                && f.kind != AppKind::Callback
            {
                wrong(
                    app,
                    format!("queue {} needs a Callback application", q.name),
                );
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// A flow by file name.
    pub fn get(&self, file: &str) -> Option<Arc<Flow>> {
        self.flows.get(file).cloned()
    }

    /// The Default application of a dialled number.
    pub fn for_number(&self, config: &Config, number: &str) -> Option<Arc<Flow>> {
        config.route_point(number).and_then(|rp| self.get(&rp.flow))
    }

    /// The Callback application of a callback queue.
    pub fn callback_app(&self, config: &Config, queue: &str) -> Option<Arc<Flow>> {
        config
            .queue(queue)
            .and_then(|q| q.callback_application.as_deref())
            .and_then(|f| self.get(f))
    }

    /// Number of applications.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// True when none is loaded.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// The flow set a running engine uses, reloaded when files in the flows directory change: new
/// calls take the new version, calls in progress keep theirs, and a broken edit keeps the old
/// set (the errors are returned for the log).
pub struct LiveFlows {
    current: parking_lot::RwLock<Arc<FlowSet>>,
    seen: parking_lot::Mutex<Vec<(PathBuf, std::time::SystemTime, u64)>>,
}

/// What a reload check did.
#[derive(Debug)]
pub enum Reload {
    /// No file changed.
    Unchanged,
    /// The new set is in use.
    Reloaded(usize),
    /// The new files have errors; the previous set stays.
    Rejected(Vec<FlowErrors>),
}

/// Name, modification time and size of each flow file: what a reload compares.
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, std::time::SystemTime, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let yaml = p.extension().is_some_and(|x| x == "yaml" || x == "yml");
            let m = e.metadata().ok()?;
            yaml.then(|| (p, m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()))
        })
        .collect();
    v.sort();
    v
}

impl LiveFlows {
    /// Starts from a loaded set.
    pub fn new(config: &Config, set: FlowSet) -> Self {
        LiveFlows {
            current: parking_lot::RwLock::new(Arc::new(set)),
            seen: parking_lot::Mutex::new(fingerprint(&config.flows_dir())),
        }
    }

    /// The set new calls use.
    pub fn get(&self) -> Arc<FlowSet> {
        self.current.read().clone()
    }

    /// Reloads when a flow file was added, removed or changed since the last look.
    pub fn reload_if_changed(&self, config: &Config, prompts: Option<&BTreeSet<String>>) -> Reload {
        let now = fingerprint(&config.flows_dir());
        {
            let mut seen = self.seen.lock();
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        match FlowSet::load(config, prompts) {
            Ok(set) => {
                let n = set.len();
                *self.current.write() = Arc::new(set);
                Reload::Reloaded(n)
            }
            Err(errors) => Reload::Rejected(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &std::path::Path) -> Config {
        Config::from_str_in(
            "queues:\n  - name: Q_VQ\nroute_points:\n  - number: '1'\n    flow: a.yaml\n",
            dir,
        )
        .unwrap()
    }

    const GOOD: &str = "application: a\ntype: default\nself_service:\n  - type: terminate_call\n";

    #[test]
    fn an_edit_is_taken_and_a_broken_edit_keeps_the_old_set() {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("ivr-flows");
        std::fs::create_dir_all(&flows).unwrap();
        std::fs::write(flows.join("a.yaml"), GOOD).unwrap();
        let config = config_in(dir.path());
        let live = LiveFlows::new(&config, FlowSet::load(&config, None).unwrap());
        assert!(matches!(
            live.reload_if_changed(&config, None),
            Reload::Unchanged
        ));
        assert_eq!(live.get().get("a.yaml").unwrap().name, "a");

        std::fs::write(
            flows.join("a.yaml"),
            GOOD.replace("application: a", "application: a2"),
        )
        .unwrap();
        assert!(matches!(
            live.reload_if_changed(&config, None),
            Reload::Reloaded(1)
        ));
        assert_eq!(live.get().get("a.yaml").unwrap().name, "a2");

        std::fs::write(flows.join("a.yaml"), "application: broken\ntype: nope\n").unwrap();
        match live.reload_if_changed(&config, None) {
            Reload::Rejected(errors) => assert!(errors[0].to_string().contains("nope")),
            other => panic!("{other:?}"),
        }
        assert_eq!(live.get().get("a.yaml").unwrap().name, "a2");
    }
}
