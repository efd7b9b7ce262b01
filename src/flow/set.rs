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
