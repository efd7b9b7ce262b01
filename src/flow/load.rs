//! Loads an application file and checks everything that can be checked before a call arrives:
//! structure, property types and ranges, block references, reachability, busy loops, queues,
//! prompts, skill and variable expressions. Every problem is reported, each with file, line and
//! column.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::expr::{Expr, Value, Variables};
use super::model::*;
use crate::config::Config;
use crate::routing::skills;
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
    diags.sort_by_key(|d| d.pos);
    diags.dedup();
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
struct Parsed<'n> {
    block: Block,
    node: &'n Node,
    path: String,
    phase: Phase,
}

impl<'a> Validator<'a> {
    fn err(&mut self, pos: Pos, path: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, path, msg));
    }

    /// Records a decoding error; serde's words for a value that fits none of the shapes of an
    /// untagged enum name a Rust type, so they are replaced with the shapes the author may write.
    fn decode_failed(&mut self, mut d: Diagnostic) {
        // serde: "unknown field `promtps`, expected one of `id`, `next`, …": say it like the
        // top-level check does, with a did-you-mean.
        if d.message.starts_with("unknown field `") {
            let names: Vec<&str> = d.message.split('`').skip(1).step_by(2).collect();
            if let Some((field, known)) = names.split_first()
                && !known.is_empty()
            {
                d.message = format!(
                    "unknown property `{field}`{}; expected one of {}",
                    suggest(field, known),
                    known.join(", ")
                );
            }
        }
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
        if !matches!(root.kind, Kind::Map(_)) {
            self.err(
                root.pos,
                "",
                format!(
                    "an application is a mapping with `application`, `type` and phases, not {}",
                    root.kind_name()
                ),
            );
            return None;
        }
        for (k, _) in root.entries() {
            let key = k.as_key().unwrap_or_default();
            if !ROOT_KEYS.contains(&key.as_str()) {
                self.err(
                    k.pos,
                    key.clone(),
                    format!(
                        "unknown property `{key}`{}; expected one of {}",
                        suggest(&key, ROOT_KEYS),
                        ROOT_KEYS.join(", ")
                    ),
                );
            }
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
                self.check_graph(&parsed[start..end], &local, end - start);
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
        macro_rules! decode {
            ($variant:ident, $t:ty) => {
                match rest.decode::<$t>(path) {
                    Ok(b) => Some(Block::$variant(b)),
                    Err(d) => {
                        self.decode_failed(d);
                        None
                    }
                }
            };
        }
        // Decoding goes through a JSON map, which sorts keys: assignments take their order
        // from the YAML.
        let keys = |n: Option<&Node>| -> Vec<String> {
            n.map(|n| n.entries().iter().filter_map(|(k, _)| k.as_key()).collect())
                .unwrap_or_default()
        };
        match ty.as_str() {
            "play_message" => decode!(PlayMessage, PlayMessage),
            "user_input" => decode!(UserInput, UserInput),
            "menu" => decode!(Menu, Menu).map(|mut b| {
                if let Block::Menu(m) = &mut b {
                    for (key, opt) in m.options.iter_mut() {
                        if let MenuOption::Full(f) = opt {
                            f.assign_order = keys(
                                item.get("options")
                                    .and_then(|o| o.get(key))
                                    .and_then(|o| o.get("assign")),
                            );
                        }
                    }
                }
                b
            }),
            "assign" => decode!(Assign, Assign).map(|mut b| {
                if let Block::Assign(a) = &mut b {
                    a.order = keys(item.get("set"));
                }
                b
            }),
            "if" => decode!(If, If),
            "business_hours" => decode!(BusinessHours, BusinessHoursCheck),
            "callback_v2" => decode!(CallbackV2, CallbackV2),
            "click_to_call_in_match" => decode!(ClickToCallInMatch, ClickToCallInMatch),
            "route_call" => decode!(RouteCall, RouteCall),
            "terminate_call" => decode!(TerminateCall, TerminateCall),
            other => {
                self.err(
                    ty_node.pos,
                    yaml::join(path, "type"),
                    format!(
                        "unknown block type `{other}`{}; expected one of {}",
                        suggest(other, BLOCK_TYPES),
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
        if in_finalize && !matches!(p.block, Block::Assign(_) | Block::If(_)) {
            self.err(
                value_pos(node, "type"),
                yaml::join(path, "type"),
                format!(
                    "`{}` cannot run in `finalize`: the call has ended (use assign or if)",
                    p.block.type_name()
                ),
            );
        }
        match &p.block {
            Block::PlayMessage(b) => {
                if b.prompts.is_empty() {
                    self.err(
                        value_pos(node, "prompts"),
                        yaml::join(path, "prompts"),
                        "give at least one prompt",
                    );
                }
                self.prompts(node, path, "prompts", &b.prompts);
            }
            Block::UserInput(b) => {
                self.var_name(node, path, "variable", &b.variable);
                self.prompts(node, path, "prompts", &b.prompts);
                self.prompts(node, path, "no_input_prompts", &b.no_input_prompts);
                self.prompts(node, path, "no_match_prompts", &b.no_match_prompts);
                self.range(node, path, "min_digits", b.min_digits, 1, 32);
                self.range(node, path, "max_digits", b.max_digits, 1, 32);
                if b.min_digits > b.max_digits {
                    self.err(
                        value_pos(node, "min_digits"),
                        yaml::join(path, "min_digits"),
                        format!(
                            "min_digits ({}) is above max_digits ({})",
                            b.min_digits, b.max_digits
                        ),
                    );
                }
                self.range(
                    node,
                    path,
                    "first_digit_timeout_seconds",
                    b.first_digit_timeout_seconds,
                    1,
                    60,
                );
                self.range(
                    node,
                    path,
                    "inter_digit_timeout_seconds",
                    b.inter_digit_timeout_seconds,
                    1,
                    30,
                );
                self.range(node, path, "retries", b.retries, 0, 9);
                if let Some(t) = &b.terminator {
                    self.dtmf_key(node, path, "terminator", t);
                }
                if let Some(pat) = &b.pattern
                    && let Err(e) = regex::Regex::new(&format!("^(?:{pat})$"))
                {
                    self.err(
                        value_pos(node, "pattern"),
                        yaml::join(path, "pattern"),
                        format!(
                            "not a valid regular expression: {}",
                            e.to_string().lines().last().unwrap_or("")
                        ),
                    );
                }
            }
            Block::Menu(b) => {
                self.prompts(node, path, "prompts", &b.prompts);
                self.prompts(node, path, "no_input_prompts", &b.no_input_prompts);
                self.prompts(node, path, "no_match_prompts", &b.no_match_prompts);
                self.range(node, path, "retries", b.retries, 0, 9);
                self.range(node, path, "timeout_seconds", b.timeout_seconds, 1, 60);
                if b.options.is_empty() {
                    self.err(
                        value_pos(node, "options"),
                        yaml::join(path, "options"),
                        "a menu needs at least one option",
                    );
                }
                let opts = node.get("options");
                for (key, opt) in &b.options {
                    let kpos = opts
                        .and_then(|o| o.entry(key))
                        .map(|(k, _)| k.pos)
                        .unwrap_or(node.pos);
                    if !is_dtmf_key(key) {
                        self.err(
                            kpos,
                            format!("{path}.options.{key}"),
                            "a menu option is one key: 0-9, * or #",
                        );
                    }
                    if let MenuOption::Full(f) = opt {
                        let on = opts.and_then(|o| o.get(key));
                        for (var, e) in &f.assign {
                            let vn = on.and_then(|o| o.get("assign"));
                            self.var_name_at(
                                vn.and_then(|a| a.entry(var))
                                    .map(|(k, _)| k.pos)
                                    .unwrap_or(kpos),
                                &format!("{path}.options.{key}.assign.{var}"),
                                var,
                            );
                            let en = vn.and_then(|a| a.get(var));
                            self.expr_at(
                                en,
                                kpos,
                                &format!("{path}.options.{key}.assign.{var}"),
                                e,
                            );
                        }
                    }
                }
            }
            Block::Assign(b) => {
                if b.set.is_empty() {
                    self.err(
                        value_pos(node, "set"),
                        yaml::join(path, "set"),
                        "assign at least one variable",
                    );
                }
                let set = node.get("set");
                for (var, e) in &b.set {
                    let kpos = set
                        .and_then(|s| s.entry(var))
                        .map(|(k, _)| k.pos)
                        .unwrap_or(node.pos);
                    self.var_name_at(kpos, &format!("{path}.set.{var}"), var);
                    self.expr_at(
                        set.and_then(|s| s.get(var)),
                        kpos,
                        &format!("{path}.set.{var}"),
                        e,
                    );
                }
            }
            Block::If(b) => {
                if b.conditions.is_empty() {
                    self.err(
                        value_pos(node, "conditions"),
                        yaml::join(path, "conditions"),
                        "give at least one condition",
                    );
                }
                let conds = node.get("conditions");
                for (i, c) in b.conditions.iter().enumerate() {
                    let cn = conds.and_then(|l| l.items().get(i));
                    let wn = cn.and_then(|c| c.get("when"));
                    self.expr_at(
                        wn,
                        node.pos,
                        &format!("{path}.conditions[{i}].when"),
                        &c.when,
                    );
                }
            }
            Block::BusinessHours(b) => match (&b.queue, &b.hours) {
                (Some(q), None) => self.queue(node, path, "queue", q),
                (None, Some(h)) => {
                    if !self.ctx.config.hours.contains_key(h) {
                        let known: Vec<&str> =
                            self.ctx.config.hours.keys().map(String::as_str).collect();
                        self.err(
                            value_pos(node, "hours"),
                            yaml::join(path, "hours"),
                            format!("no business hours named `{h}`{}", suggest(h, &known)),
                        );
                    }
                }
                _ => self.err(node.pos, path, "give exactly one of `queue` and `hours`"),
            },
            Block::CallbackV2(b) => self.check_callback(node, path, b),
            Block::ClickToCallInMatch(b) => {
                if self.kind == AppKind::Callback {
                    self.err(
                        value_pos(node, "type"),
                        yaml::join(path, "type"),
                        "click_to_call_in_match runs on inbound calls: use it in a Default application",
                    );
                }
                if b.criteria.is_empty() {
                    self.err(
                        value_pos(node, "criteria"),
                        yaml::join(path, "criteria"),
                        "give at least one of access_code, ani, dnis",
                    );
                }
                let set: BTreeSet<_> = b.criteria.iter().map(|c| format!("{c:?}")).collect();
                if set.len() != b.criteria.len() {
                    self.err(
                        value_pos(node, "criteria"),
                        yaml::join(path, "criteria"),
                        "a criterion is listed twice",
                    );
                }
                self.var_name(node, path, "access_code_variable", &b.access_code_variable);
                self.var_name(node, path, "result", &b.result);
            }
            Block::RouteCall(b) => {
                match (&b.queue, &b.queue_from) {
                    (Some(q), None) => self.queue(node, path, "queue", q),
                    (None, Some(e)) => self.expr_at(
                        node.get("queue_from"),
                        node.pos,
                        &yaml::join(path, "queue_from"),
                        e,
                    ),
                    _ => self.err(
                        node.pos,
                        path,
                        "give exactly one of `queue` and `queue_from`",
                    ),
                }
                if let Some(s) = &b.skill_expression
                    && let Err(e) = skills::Expr::parse(s)
                {
                    let mut pos = value_pos(node, "skill_expression");
                    pos.column += e.column.saturating_sub(1) + quote_shift(self.source, pos);
                    self.err(
                        pos,
                        yaml::join(path, "skill_expression"),
                        format!("skill expression: {}", e.message),
                    );
                }
                if b.skill_expression.is_some() && b.skill_expression_from.is_some() {
                    self.err(
                        value_pos(node, "skill_expression_from"),
                        yaml::join(path, "skill_expression_from"),
                        "give at most one of `skill_expression` and `skill_expression_from`",
                    );
                }
                if let Some(e) = &b.skill_expression_from {
                    self.expr_at(
                        node.get("skill_expression_from"),
                        node.pos,
                        &yaml::join(path, "skill_expression_from"),
                        e,
                    );
                }
                if let Some(p) = &b.priority {
                    self.expr_at(
                        node.get("priority"),
                        node.pos,
                        &yaml::join(path, "priority"),
                        p,
                    );
                }
                self.range(node, path, "timeout_seconds", b.timeout_seconds, 1, 86_400);
                self.range(
                    node,
                    path,
                    "announce_every_seconds",
                    b.announce_every_seconds,
                    10,
                    3600,
                );
                if let Some(m) = &b.hold_music {
                    self.prompt_name(
                        value_pos(node, "hold_music"),
                        &yaml::join(path, "hold_music"),
                        m,
                    );
                }
            }
            Block::TerminateCall(_) => {}
        }
    }

    fn check_callback(&mut self, node: &Node, path: &str, b: &CallbackV2) {
        const DEFAULT_ONLY: &[&str] = &[
            "inbound_queue",
            "offer",
            "offer_prompts",
            "immediate_only_prompts",
            "scheduled_only_prompts",
            "scheduled_prompts",
            "choose_time_prompts",
            "accept_time_prompts",
            "confirm_number_prompts",
            "enter_number_prompts",
            "booked_prompts",
            "connect",
            "on_not_offered",
        ];
        const CALLBACK_ONLY: &[&str] = &["intro_prompts", "confirm_digit"];
        let (wrong, app) = match self.kind {
            AppKind::Default => (CALLBACK_ONLY, "Callback"),
            AppKind::Callback => (DEFAULT_ONLY, "Default"),
        };
        for key in wrong {
            if let Some((k, _)) = node.entry(key) {
                self.err(
                    k.pos,
                    yaml::join(path, key),
                    format!("`{key}` applies only in a {app} application"),
                );
            }
        }
        self.range(node, path, "attempts", b.attempts, 1, 9);
        self.var_name(node, path, "result", &b.result);
        for key in [
            "offer_prompts",
            "immediate_only_prompts",
            "scheduled_only_prompts",
            "scheduled_prompts",
            "choose_time_prompts",
            "accept_time_prompts",
            "confirm_number_prompts",
            "enter_number_prompts",
            "booked_prompts",
            "intro_prompts",
        ] {
            let list = match key {
                "offer_prompts" => &b.offer_prompts,
                "immediate_only_prompts" => &b.immediate_only_prompts,
                "scheduled_only_prompts" => &b.scheduled_only_prompts,
                "choose_time_prompts" => &b.choose_time_prompts,
                "accept_time_prompts" => &b.accept_time_prompts,
                "scheduled_prompts" => &b.scheduled_prompts,
                "confirm_number_prompts" => &b.confirm_number_prompts,
                "enter_number_prompts" => &b.enter_number_prompts,
                "booked_prompts" => &b.booked_prompts,
                _ => &b.intro_prompts,
            };
            self.prompts(node, path, key, list);
        }
        if let Some(d) = &b.confirm_digit {
            self.dtmf_key(node, path, "confirm_digit", d);
        }
        if self.kind == AppKind::Default {
            match &b.queue {
                Some(q) => self.queue(node, path, "queue", q),
                None => self.err(
                    node.pos,
                    path,
                    "`queue` (the callback virtual queue) is required",
                ),
            }
            if let Some(q) = &b.inbound_queue {
                self.queue(node, path, "inbound_queue", q);
            }
            if b.offer.is_empty() {
                self.err(
                    value_pos(node, "offer"),
                    yaml::join(path, "offer"),
                    "offer immediate, scheduled or both",
                );
            }
            if b.offer_prompts.is_empty() {
                self.err(
                    node.pos,
                    path,
                    "`offer_prompts` is required: the caller must hear the offer",
                );
            }
        } else if let Some(q) = &b.queue {
            self.queue(node, path, "queue", q);
        }
    }

    fn queue(&mut self, node: &Node, path: &str, key: &str, q: &str) {
        if self.ctx.config.queue(q).is_none() {
            let known: Vec<&str> = self
                .ctx
                .config
                .spec
                .queues
                .iter()
                .map(|q| q.name.as_str())
                .collect();
            self.err(
                value_pos(node, key),
                yaml::join(path, key),
                format!(
                    "no virtual queue `{q}` in the configuration{}",
                    suggest(q, &known)
                ),
            );
        }
    }

    fn range(&mut self, node: &Node, path: &str, key: &str, v: u32, lo: u32, hi: u32) {
        if v < lo || v > hi {
            self.err(
                value_pos(node, key),
                yaml::join(path, key),
                format!("{key} must be between {lo} and {hi}, not {v}"),
            );
        }
    }

    fn dtmf_key(&mut self, node: &Node, path: &str, key: &str, v: &str) {
        if !is_dtmf_key(v) {
            self.err(
                value_pos(node, key),
                yaml::join(path, key),
                "one key: 0-9, * or #",
            );
        }
    }

    fn var_name(&mut self, node: &Node, path: &str, key: &str, v: &str) {
        self.var_name_at(value_pos(node, key), &yaml::join(path, key), v);
    }

    fn var_name_at(&mut self, pos: Pos, path: &str, v: &str) {
        if !valid_variable(v) {
            self.err(
                pos,
                path,
                format!("`{v}` is not a variable name (letters, digits, `_` and `.`, starting with a letter)"),
            );
        }
    }

    fn expr_at(&mut self, n: Option<&Node>, fallback: Pos, path: &str, e: &ExprText) {
        if let Err(err) = Expr::parse(&e.0) {
            let mut pos = n.map(|n| n.pos).unwrap_or(fallback);
            if n.is_some_and(|n| matches!(n.kind, Kind::Str(_))) {
                pos.column += quote_shift(self.source, pos)
                    + e.0[..err.offset.min(e.0.len())].chars().count();
            }
            self.err(pos, path, format!("expression: {}", err.message));
        }
    }

    fn prompts(&mut self, node: &Node, path: &str, key: &str, list: &[PromptSpec]) {
        let ln = node.get(key);
        for (i, p) in list.iter().enumerate() {
            let item = ln.and_then(|l| l.items().get(i));
            let pos = item.map(|n| n.pos).unwrap_or(node.pos);
            let ipath = format!("{}[{i}]", yaml::join(path, key));
            match p {
                PromptSpec::Name(n) => self.prompt_name(pos, &ipath, n),
                PromptSpec::Item(it) => {
                    let count = [
                        it.digits.is_some(),
                        it.prompt.is_some(),
                        it.silence_ms.is_some(),
                    ]
                    .iter()
                    .filter(|x| **x)
                    .count();
                    if count != 1 {
                        self.err(
                            pos,
                            &ipath,
                            "a prompt item has exactly one of `digits`, `prompt`, `silence_ms`",
                        );
                    }
                    if let Some(e) = &it.digits {
                        self.expr_at(
                            item.and_then(|n| n.get("digits")),
                            pos,
                            &yaml::join(&ipath, "digits"),
                            e,
                        );
                    }
                    if let Some(e) = &it.prompt {
                        self.expr_at(
                            item.and_then(|n| n.get("prompt")),
                            pos,
                            &yaml::join(&ipath, "prompt"),
                            e,
                        );
                    }
                    if let Some(ms) = it.silence_ms
                        && !(1..=60_000).contains(&ms)
                    {
                        self.err(
                            item.map(|n| value_pos(n, "silence_ms")).unwrap_or(pos),
                            yaml::join(&ipath, "silence_ms"),
                            "silence_ms must be between 1 and 60000",
                        );
                    }
                }
            }
        }
    }

    fn prompt_name(&mut self, pos: Pos, path: &str, name: &str) {
        if let Some(known) = self.ctx.prompts
            && !known.contains(name)
        {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            self.err(
                pos,
                path,
                format!(
                    "no prompt `{name}` in the prompt directory{}",
                    suggest(name, &list)
                ),
            );
        }
    }

    /// Reachability from the first block, and loops that never wait for the caller.
    fn check_graph(&mut self, parsed: &[Parsed<'_>], ids: &HashMap<String, usize>, end: usize) {
        let edges: Vec<Vec<usize>> = (0..end)
            .map(|i| {
                let b = &parsed[i].block;
                let mut out: Vec<usize> = b
                    .branches()
                    .iter()
                    .filter_map(|(_, t)| ids.get(t).copied())
                    .collect();
                if falls_through(b, self.kind) {
                    match b.next() {
                        Some(n) => out.extend(ids.get(n).copied()),
                        None if i + 1 < end => out.push(i + 1),
                        None => {}
                    }
                }
                out.retain(|&t| t < end);
                out
            })
            .collect();
        let mut seen = vec![false; end];
        let mut stack = vec![0];
        while let Some(i) = stack.pop() {
            if i >= end || seen[i] {
                continue;
            }
            seen[i] = true;
            stack.extend(edges[i].iter().copied());
        }
        for (i, s) in seen.iter().enumerate() {
            if !s {
                let p = &parsed[i];
                self.err(
                    p.node.pos,
                    p.path.clone(),
                    format!(
                        "block `{}` can never run: nothing leads to it",
                        p.block.id().unwrap_or(p.block.type_name())
                    ),
                );
            }
        }
        // A cycle is fine if some block on it waits for the caller.
        for mut scc in sccs(&edges) {
            scc.sort_unstable();
            let is_cycle = scc.len() > 1 || edges[scc[0]].contains(&scc[0]);
            if is_cycle && !scc.iter().any(|&i| parsed[i].block.waits()) {
                let p = &parsed[scc[0]];
                let names: Vec<String> = scc
                    .iter()
                    .map(|&i| {
                        parsed[i]
                            .block
                            .id()
                            .unwrap_or(parsed[i].block.type_name())
                            .to_string()
                    })
                    .collect();
                self.err(
                    p.node.pos,
                    p.path.clone(),
                    format!(
                        "blocks {} form a loop that never waits for the caller",
                        names.join(" → ")
                    ),
                );
            }
        }
    }
}

/// Whether some outcome of the block continues with `next` (or the block below): an outcome
/// whose branch has no target does, and so does success for blocks without branches.
fn falls_through(b: &Block, kind: AppKind) -> bool {
    match b {
        Block::PlayMessage(_) | Block::UserInput(_) | Block::Assign(_) => true,
        Block::TerminateCall(_) => false,
        Block::Menu(m) => {
            m.on_failure.is_none()
                || m.options.values().any(|o| match o {
                    MenuOption::Goto(_) => false,
                    MenuOption::Full(f) => f.goto.is_none(),
                })
        }
        Block::If(b) => b.otherwise.is_none(),
        // `special` defaults to `open`.
        Block::BusinessHours(b) => b.open.is_none() || b.closed.is_none(),
        Block::CallbackV2(b) => match kind {
            AppKind::Default => {
                b.on_accepted.is_none() || b.on_declined.is_none() || b.on_not_offered.is_none()
            }
            AppKind::Callback => {
                b.on_accepted.is_none() || (b.confirm_digit.is_some() && b.on_declined.is_none())
            }
        },
        // `on_blocked` and `on_unroutable` default to `on_no_match`.
        Block::ClickToCallInMatch(b) => b.on_matched.is_none() || b.on_no_match.is_none(),
        // Connected without `on_connected` ends the call.
        Block::RouteCall(b) => b.on_timeout.is_none(),
    }
}

/// Strongly connected components (Tarjan, iterative).
fn sccs(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if *ei == 0 && index[v] == usize::MAX {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}

fn value_pos(node: &Node, key: &str) -> Pos {
    node.get(key).map(|n| n.pos).unwrap_or(node.pos)
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

/// 1 when the scalar at `pos` is quoted (so offsets inside it start one column later).
fn quote_shift(source: &str, pos: Pos) -> usize {
    let line = source.lines().nth(pos.line.saturating_sub(1)).unwrap_or("");
    match line.chars().nth(pos.column.saturating_sub(1)) {
        Some('"') | Some('\'') => 1,
        _ => 0,
    }
}

fn is_dtmf_key(s: &str) -> bool {
    let mut c = s.chars();
    matches!((c.next(), c.next()), (Some(k), None) if k.is_ascii_digit() || k == '*' || k == '#')
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Variable names: letters, digits, `_` and `.`, starting with a letter.
pub fn valid_variable(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// ", did you mean `x`?" for the closest known name within a small edit distance.
fn suggest(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d > 0)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Loads every flow a configuration's route points and queues name, plus any other `*.yaml`
/// in the flows directory; returns the flows by file name and every error.
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
                    diagnostics: vec![Diagnostic::new(
                        Pos { line: 1, column: 1 },
                        "",
                        format!("cannot read the flows directory: {e}"),
                    )],
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
    (flows, errors)
}
