//! What a block's load-time check sees, and the helpers it reports with: every problem lands at
//! the position of the property it is about, under the property's YAML path, so a block's
//! `check` says what is wrong and this module says where.

use std::collections::BTreeMap;

use super::expr::Expr;
use super::load::LoadContext;
use super::model::{AppKind, ExprText, PromptSpec};
use crate::diagnostics::{inside, suggest};
use crate::yaml::{self, Diagnostic, Kind, Node, Pos};

/// One block under check: its YAML node and path, the application's type and what the flow is
/// checked against.
pub struct BlockCheck<'a> {
    /// The block's YAML mapping.
    pub node: &'a Node,
    /// Its YAML path, such as `self_service[2]`.
    pub path: &'a str,
    /// The application's type (some properties apply to one type only).
    pub kind: AppKind,
    /// Queues, business hours and prompt names.
    pub ctx: &'a LoadContext<'a>,
    /// The file's text (offsets inside quoted scalars).
    pub(crate) source: &'a str,
    /// Where problems go.
    pub(crate) diags: &'a mut Vec<Diagnostic>,
}

impl BlockCheck<'_> {
    /// A problem at `pos`, under `path`.
    pub fn err(&mut self, pos: Pos, path: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, path, msg));
    }

    /// A problem with the block as a whole (at its start).
    pub fn block_err(&mut self, msg: impl Into<String>) {
        self.err(self.node.pos, self.path, msg);
    }

    /// A problem with property `key`, shown at its value (the block when it is absent).
    pub fn at(&mut self, key: &str, msg: impl Into<String>) {
        self.err(value_pos(self.node, key), yaml::join(self.path, key), msg);
    }

    /// A problem with property `key`, shown at the key itself, when it is written.
    pub fn at_key(&mut self, key: &str, msg: impl Into<String>) {
        if let Some((k, _)) = self.node.entry(key) {
            self.err(k.pos, yaml::join(self.path, key), msg);
        }
    }

    /// Position of `key` inside the sub-mapping `map`, or of the block when absent.
    pub fn key_pos(&self, map: Option<&Node>, key: &str) -> Pos {
        map.and_then(|m| m.entry(key))
            .map(|(k, _)| k.pos)
            .unwrap_or(self.node.pos)
    }

    /// A problem `chars` characters into the scalar under `key` (past its opening quote).
    pub fn inside(&mut self, key: &str, chars: usize, msg: impl Into<String>) {
        let pos = inside(self.source, value_pos(self.node, key), chars);
        self.err(pos, yaml::join(self.path, key), msg);
    }

    /// Each `variable: expression` of `set`, written in the mapping `map` under `path`: valid
    /// names and expressions (at the block's `fallback` position when unwritten).
    pub fn assignments(
        &mut self,
        map: Option<&Node>,
        fallback: Pos,
        path: &str,
        set: &BTreeMap<String, ExprText>,
    ) {
        for (var, e) in set {
            let kpos = map
                .and_then(|m| m.entry(var))
                .map(|(k, _)| k.pos)
                .unwrap_or(fallback);
            let vpath = format!("{path}.{var}");
            self.var_name_at(kpos, &vpath, var);
            self.expr_at(map.and_then(|m| m.get(var)), kpos, &vpath, e);
        }
    }

    /// `key` must be within `lo..=hi`.
    pub fn range(&mut self, key: &str, v: u32, lo: u32, hi: u32) {
        if v < lo || v > hi {
            self.at(key, format!("{key} must be between {lo} and {hi}, not {v}"));
        }
    }

    /// `key` must be one DTMF key.
    pub fn dtmf_key(&mut self, key: &str, v: &str) {
        if !is_dtmf_key(v) {
            self.at(key, "one key: 0-9, * or #");
        }
    }

    /// The value of `key` must be a variable name.
    pub fn var_name(&mut self, key: &str, v: &str) {
        self.var_name_at(value_pos(self.node, key), &yaml::join(self.path, key), v);
    }

    /// `v` (written at `pos`) must be a variable name.
    pub fn var_name_at(&mut self, pos: Pos, path: &str, v: &str) {
        if !valid_variable(v) {
            self.err(
                pos,
                path,
                format!("`{v}` is not a variable name (letters, digits, `_` and `.`, starting with a letter)"),
            );
        }
    }

    /// The expression under `key` must parse.
    pub fn expr(&mut self, key: &str, e: &ExprText) {
        self.expr_at(
            self.node.get(key),
            self.node.pos,
            &yaml::join(self.path, key),
            e,
        );
    }

    /// The expression written at `n` must parse; the error points inside it.
    pub fn expr_at(&mut self, n: Option<&Node>, fallback: Pos, path: &str, e: &ExprText) {
        if let Err(err) = Expr::parse(&e.0) {
            let mut pos = n.map(|n| n.pos).unwrap_or(fallback);
            if n.is_some_and(|n| matches!(n.kind, Kind::Str(_))) {
                pos = inside(
                    self.source,
                    pos,
                    e.0[..err.offset.min(e.0.len())].chars().count(),
                );
            }
            self.err(pos, path, format!("expression: {}", err.message));
        }
    }

    /// Every item of the prompt list under `key`: known prompts, one kind per item.
    pub fn prompts(&mut self, key: &str, list: &[PromptSpec]) {
        let ln = self.node.get(key);
        for (i, p) in list.iter().enumerate() {
            let item = ln.and_then(|l| l.items().get(i));
            let pos = item.map(|n| n.pos).unwrap_or(self.node.pos);
            let ipath = format!("{}[{i}]", yaml::join(self.path, key));
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
                    for (k, e) in [("digits", &it.digits), ("prompt", &it.prompt)] {
                        if let Some(e) = e {
                            let at = item.and_then(|n| n.get(k));
                            self.expr_at(at, pos, &yaml::join(&ipath, k), e);
                        }
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

    /// `name` must be in the prompt library (when the check has one).
    pub fn prompt_name(&mut self, pos: Pos, path: &str, name: &str) {
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

    /// The queue under `key` must be configured.
    pub fn queue(&mut self, key: &str, q: &str) {
        let config = self.ctx.config;
        if config.queue(q).is_none() {
            let known: Vec<&str> = config.spec.queues.iter().map(|q| q.name.as_str()).collect();
            self.at(
                key,
                format!(
                    "no virtual queue `{q}` in the configuration{}",
                    suggest(q, &known)
                ),
            );
        }
    }
}

/// Position of the value under `key`, or of `node` when absent.
pub fn value_pos(node: &Node, key: &str) -> Pos {
    node.get(key).map(|n| n.pos).unwrap_or(node.pos)
}

/// One DTMF key: 0-9, `*` or `#`.
pub fn is_dtmf_key(s: &str) -> bool {
    let mut c = s.chars();
    matches!((c.next(), c.next()), (Some(k), None) if k.is_ascii_digit() || k == '*' || k == '#')
}

/// Variable names: letters, digits, `_` and `.`, starting with a letter.
pub fn valid_variable(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A mapping's keys in the order written (decoding goes through a JSON map, which sorts them).
pub fn keys_in_order(n: Option<&Node>) -> Vec<String> {
    n.map(|n| n.entries().iter().filter_map(|(k, _)| k.as_key()).collect())
        .unwrap_or_default()
}
