//! Loads an application file and checks everything that can be checked before a call arrives:
//! structure, property types and ranges, block references, reachability, busy loops, queues,
//! prompts, skill and variable expressions. Every problem is reported, each with file, line and
//! column.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::check::{BlockCheck, valid_variable, value_pos};
use super::expr::{Value, Variables};
use super::graph;
use super::model::*;
use crate::config::Config;
use crate::diagnostics::{self, suggest};
use crate::yaml::{self, Diagnostic, Kind, Node, Pos};

/// A block of a loaded application, with where it was written.
#[derive(Debug, Clone)]
pub struct FlowBlock {
    /// The block.
    pub block: Block,
    /// Its phase.
    pub phase: Phase,
    /// Its id, or `phase[index]` when it has none (for traces).
    pub label: String,
    /// Position of the block in the file.
    pub pos: Pos,
}

/// A validated application, ready to run.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Application name.
    pub name: String,
    /// Default or Callback.
    pub kind: AppKind,
    /// The file it came from.
    pub file: PathBuf,
    /// Initial user variables.
    pub variables: Variables,
    /// Blocks of all phases, in order.
    pub blocks: Vec<FlowBlock>,
    /// Index of the first Finalize block (= number of call blocks).
    pub finalize_start: usize,
    ids: HashMap<String, usize>,
    /// The modules its `call_module` blocks name, by file name, once linked
    /// ([`super::modules::link`]); empty for a flow loaded alone.
    pub modules: std::collections::BTreeMap<String, std::sync::Arc<Flow>>,
}

impl Flow {
    /// Index of the block with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }
}

/// What a flow is checked against.
pub struct LoadContext<'a> {
    /// Queues and business hours.
    pub config: &'a Config,
    /// Names of the prompts in the library; `None` skips the prompt check.
    pub prompts: Option<&'a BTreeSet<String>>,
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct FlowErrors {
    /// The file.
    pub file: PathBuf,
    /// Its text, for carets.
    pub source: String,
    /// Problems in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for FlowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{}", d.render(&self.source))?;
        }
        write!(
            f,
            "{}: {} problem(s)",
            self.file.display(),
            self.diagnostics.len()
        )
    }
}

impl std::error::Error for FlowErrors {}

/// Names of the `*.wav` files of a prompt directory (without extension).
pub fn prompt_names(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect()
}

/// Loads and validates one application file.
pub fn load_file(file: &Path, ctx: &LoadContext<'_>) -> Result<Flow, FlowErrors> {
    let (source, root) = match yaml::parse_file(file) {
        Ok(x) => x,
        Err(d) => {
            return Err(FlowErrors {
                file: file.to_path_buf(),
                source: std::fs::read_to_string(file).unwrap_or_default(),
                diagnostics: vec![d],
            });
        }
    };
    load_node(file, &source, &root, ctx)
}

/// Loads and validates an application from text (tests, API uploads).
pub fn load_str(file: &Path, source: &str, ctx: &LoadContext<'_>) -> Result<Flow, FlowErrors> {
    match yaml::parse(source) {
        Ok(root) => load_node(file, source, &root, ctx),
        Err(d) => Err(FlowErrors {
            file: file.to_path_buf(),
            source: source.to_string(),
            diagnostics: vec![d.in_file(file)],
        }),
    }
}

fn load_node(
    file: &Path,
    source: &str,
    root: &Node,
    ctx: &LoadContext<'_>,
) -> Result<Flow, FlowErrors> {
    let mut v = Validator {
        source,
        ctx,
        diags: Vec::new(),
        kind: AppKind::Default,
        graph_ok: true,
        broken_ids: BTreeSet::new(),
    };
    let flow = v.application(file, root);
    let mut diags = v.diags;
    if diags.is_empty()
        && let Some(flow) = flow
    {
        return Ok(flow);
    }
    for d in &mut diags {
        *d = d.clone().in_file(file);
    }
    diagnostics::tidy(&mut diags);
    Err(FlowErrors {
        file: file.to_path_buf(),
        source: source.to_string(),
        diagnostics: diags,
    })
}

const ROOT_KEYS: &[&str] = &[
    "application",
    "type",
    "description",
    "variables",
    "initialize",
    "self_service",
    "assisted_service",
    "finalize",
];

struct Validator<'a> {
    source: &'a str,
    ctx: &'a LoadContext<'a>,
    diags: Vec<Diagnostic>,
    kind: AppKind,
    /// False once a block failed to decode or a reference is dangling or ambiguous: the block
    /// graph is then incomplete and reachability/loop findings would be wrong.
    graph_ok: bool,
    /// Ids of blocks that failed to decode: references to them are not dangling.
    broken_ids: BTreeSet<String>,
}

/// A block and the YAML node it came from (for positions of its properties).
pub(super) struct Parsed<'n> {
    pub(super) block: Block,
    pub(super) node: &'n Node,
    pub(super) path: String,
    pub(super) phase: Phase,
}

impl<'a> Validator<'a> {
    fn err(&mut self, pos: Pos, path: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, path, msg));
    }

    /// Records a decoding error; serde's words for a value that fits none of the shapes of an
    /// untagged enum name a Rust type, so they are replaced with the shapes the author may write.
    fn decode_failed(&mut self, d: Diagnostic) {
        // serde: "unknown field `promtps`, expected one of `id`, `next`, …": say it like the
        // top-level check does, with a did-you-mean.
        let mut d = diagnostics::explain_unknown_field(d);
        if let Some(ty) = d
            .message
            .strip_prefix("data did not match any variant of untagged enum ")
        {
            d.message = match ty {
                "InitialValue" => "an initial value is text, a number or a boolean",
                "MenuOption" => {
                    "a menu option is a block id, or a mapping with `goto` and/or `assign`"
                }
                "PromptSpec" => {
                    "a prompt is a prompt name, or a mapping with one of `digits`, `prompt`, `silence_ms`"
                }
                _ => return self.diags.push(d),
            }
            .to_string();
        }
        self.diags.push(d);
    }

    fn application(&mut self, file: &Path, root: &Node) -> Option<Flow> {
        let not_a_map = |k: &str| {
            format!("an application is a mapping with `application`, `type` and phases, not {k}")
        };
        if !diagnostics::root_mapping(root, "property", ROOT_KEYS, &mut self.diags, not_a_map) {
            return None;
        }
        let name = self.required::<String>(root, "application");
        let kind = self.required::<AppKind>(root, "type");
        if let Some(k) = kind {
            self.kind = k;
        }
        let variables = match root.get("variables") {
            Some(n) => {
                match n.decode::<std::collections::BTreeMap<String, InitialValue>>("variables") {
                    Ok(m) => m
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match v {
                                InitialValue::Bool(b) => Value::Bool(b),
                                InitialValue::Num(n) => Value::Num(n),
                                InitialValue::Str(s) => Value::Str(s),
                            };
                            (k, v)
                        })
                        .collect(),
                    Err(d) => {
                        self.decode_failed(d);
                        Variables::new()
                    }
                }
            }
            None => Variables::new(),
        };
        for k in variables.keys() {
            if !valid_variable(k)
                && let Some((kn, _)) = root.get("variables").and_then(|n| n.entry(k))
            {
                self.err(
                    kn.pos,
                    format!("variables.{k}"),
                    "a variable name is letters, digits, `_` and `.`, starting with a letter",
                );
            }
        }
        let mut parsed: Vec<Parsed<'_>> = Vec::new();
        for phase in Phase::ALL {
            let Some(list) = root.get(phase.key()) else {
                continue;
            };
            let Kind::Seq(items) = &list.kind else {
                if !matches!(list.kind, Kind::Null) {
                    self.graph_ok = false;
                    self.err(
                        list.pos,
                        phase.key(),
                        format!("a phase is a list of blocks, not {}", list.kind_name()),
                    );
                }
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let path = format!("{}[{i}]", phase.key());
                if let Some(block) = self.block(item, &path) {
                    parsed.push(Parsed {
                        block,
                        node: item,
                        path,
                        phase,
                    });
                } else {
                    self.graph_ok = false;
                    if let Some(Kind::Str(id)) = item.get("id").map(|n| &n.kind) {
                        self.broken_ids.insert(id.clone());
                    }
                }
            }
        }
        let finalize_start = parsed
            .iter()
            .position(|p| p.phase == Phase::Finalize)
            .unwrap_or(parsed.len());
        // Blocks written outside finalize, whether or not they decoded.
        let written = [
            Phase::Initialize,
            Phase::SelfService,
            Phase::AssistedService,
        ]
        .iter()
        .any(|ph| root.get(ph.key()).is_some_and(|l| !l.items().is_empty()));
        if !written && kind.is_some() {
            self.err(
                root.pos,
                "",
                "the application has no blocks outside `finalize`",
            );
        }
        let ids = self.check_ids(&parsed);
        for (i, p) in parsed.iter().enumerate() {
            self.check_block(p, &ids, i >= finalize_start, finalize_start);
        }
        if self.graph_ok {
            // The call blocks and the finalize blocks are two separate graphs.
            for (start, end) in [(0, finalize_start), (finalize_start, parsed.len())] {
                let local: HashMap<String, usize> = ids
                    .iter()
                    .filter(|(_, i)| (start..end).contains(*i))
                    .map(|(k, i)| (k.clone(), i - start))
                    .collect();
                graph::check(
                    &parsed[start..end],
                    &local,
                    end - start,
                    self.kind,
                    &mut self.diags,
                );
            }
        }
        let (name, kind) = (name?, kind?);
        let blocks = parsed
            .into_iter()
            .map(|p| FlowBlock {
                label: p.block.id().map(str::to_string).unwrap_or(p.path),
                block: p.block,
                phase: p.phase,
                pos: p.node.pos,
            })
            .collect();
        Some(Flow {
            name,
            kind,
            file: file.to_path_buf(),
            variables,
            blocks,
            finalize_start,
            ids,
            modules: Default::default(),
        })
    }

    fn required<T: DeserializeOwned>(&mut self, root: &Node, key: &str) -> Option<T> {
        match root.get(key) {
            Some(n) => match n.decode::<T>(key) {
                Ok(v) => Some(v),
                Err(d) => {
                    self.decode_failed(d);
                    None
                }
            },
            None => {
                self.err(root.pos, key, format!("`{key}` is required"));
                None
            }
        }
    }

    fn block(&mut self, item: &Node, path: &str) -> Option<Block> {
        let Kind::Map(entries) = &item.kind else {
            self.err(
                item.pos,
                path,
                format!(
                    "a block is a mapping with a `type`, not {}",
                    item.kind_name()
                ),
            );
            return None;
        };
        let Some(ty_node) = item.get("type") else {
            self.err(
                item.pos,
                path,
                format!("a block needs a `type`: one of {}", BLOCK_TYPES.join(", ")),
            );
            return None;
        };
        let Kind::Str(ty) = &ty_node.kind else {
            self.err(
                ty_node.pos,
                yaml::join(path, "type"),
                "`type` is a block type name",
            );
            return None;
        };
        let rest = Node {
            pos: item.pos,
            kind: Kind::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k.as_key().as_deref() != Some("type"))
                    .cloned()
                    .collect(),
            ),
        };
        match Block::decode(ty, &rest, item, path) {
            Some(Ok(b)) => Some(b),
            Some(Err(d)) => {
                self.decode_failed(d);
                None
            }
            None => {
                self.err(
                    ty_node.pos,
                    yaml::join(path, "type"),
                    format!(
                        "unknown block type `{ty}`{}; expected one of {}",
                        suggest(ty, BLOCK_TYPES),
                        BLOCK_TYPES.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn check_ids(&mut self, parsed: &[Parsed<'_>]) -> HashMap<String, usize> {
        let mut ids = HashMap::new();
        for (i, p) in parsed.iter().enumerate() {
            let Some(id) = p.block.id() else { continue };
            let pos = value_pos(p.node, "id");
            if !valid_id(id) {
                self.err(
                    pos,
                    yaml::join(&p.path, "id"),
                    "a block id is letters, digits, `_` and `-`",
                );
            }
            if ids.insert(id.to_string(), i).is_some() {
                self.graph_ok = false;
                self.err(
                    pos,
                    yaml::join(&p.path, "id"),
                    format!("block id `{id}` is used twice"),
                );
            }
        }
        ids
    }

    fn check_block(
        &mut self,
        p: &Parsed<'_>,
        ids: &HashMap<String, usize>,
        in_finalize: bool,
        finalize_start: usize,
    ) {
        let node = p.node;
        let path = p.path.as_str();
        // References.
        let mut targets: Vec<(String, String)> = p.block.branches();
        if let Some(n) = p.block.next() {
            targets.push(("next".into(), n.to_string()));
        }
        for (key, t) in targets {
            let Some(&ti) = ids.get(&t) else {
                self.graph_ok = false;
                if self.broken_ids.contains(&t) {
                    continue;
                }
                let mut known: Vec<&str> = ids.keys().map(String::as_str).collect();
                known.sort();
                self.err(
                    key_value_pos(node, &key),
                    yaml::join(path, &key),
                    format!("no block has id `{t}`{}", suggest(&t, &known)),
                );
                continue;
            };
            // Finalize runs on its own after the call ended: nothing jumps into or out of it.
            if (ti >= finalize_start) != in_finalize {
                self.err(
                    key_value_pos(node, &key),
                    yaml::join(path, &key),
                    if in_finalize {
                        format!("block `{t}` is not in `finalize`: finalize blocks can only go to finalize blocks")
                    } else {
                        format!("block `{t}` is in `finalize`, which runs by itself once the call has ended: end the call with terminate_call")
                    },
                );
            }
        }
        if in_finalize && !p.block.runs_in_finalize() {
            self.err(
                value_pos(node, "type"),
                yaml::join(path, "type"),
                format!(
                    "`{}` cannot run in `finalize`: the call has ended (use assign or if)",
                    p.block.type_name()
                ),
            );
        }
        p.block.check(&mut BlockCheck {
            node,
            path,
            kind: self.kind,
            ctx: self.ctx,
            source: self.source,
            diags: &mut self.diags,
        });
    }
}

/// Position of a possibly nested key such as `options.1` or `conditions[0].goto`.
fn key_value_pos(node: &Node, key: &str) -> Pos {
    let mut cur = node;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        match cur.get(name) {
            Some(n) => cur = n,
            None => return cur.pos,
        }
        if let Some(i) = index {
            match cur.items().get(i) {
                Some(n) => cur = n,
                None => return cur.pos,
            }
        }
    }
    cur.pos
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Loads every flow a configuration's route points and queues name, plus any other `*.yaml`
/// in the flows directory, and links the modules they call; returns the flows by file name
/// and every error.
pub fn load_dir(dir: &Path, ctx: &LoadContext<'_>) -> (Vec<Flow>, Vec<FlowErrors>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            return (
                Vec::new(),
                vec![FlowErrors {
                    file: dir.to_path_buf(),
                    source: String::new(),
                    diagnostics: vec![Diagnostic::whole_file(format!(
                        "cannot read the flows directory: {e}"
                    ))],
                }],
            );
        }
    };
    files.sort();
    let mut flows = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match load_file(&f, ctx) {
            Ok(flow) => flows.push(flow),
            Err(e) => errors.push(e),
        }
    }
    let flows = super::modules::link(flows, &mut errors);
    (flows, errors)
}
