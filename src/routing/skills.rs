//! Skill expressions such as `Sales>=5 & (English>3 | Spanish>3) & !Trainee`: parsed once with
//! column-precise errors, then compiled to a tiny stack program that the router evaluates per
//! agent without allocating.
//!
//! Grammar (usual precedence, `!` binds tighter than `&`, which binds tighter than `|`):
//!
//! ```text
//! expr    := and ( '|' and )*
//! and     := unary ( '&' unary )*
//! unary   := '!' unary | primary
//! primary := '(' expr ')' | SKILL [ op LEVEL ]
//! op      := '=' | '==' | '!=' | '>' | '>=' | '<' | '<='
//! ```
//!
//! A bare skill means "level > 0"; an agent without a skill has level 0 for it (so `English<3`
//! also matches agents without English, as in Genesys routing). Skill names are letters, digits
//! and `_` (not starting with a digit) and compare case-insensitively. An empty expression
//! matches every agent. Note: Genesys Engage groups `&`/`|` left to right without precedence;
//! boomerang uses the precedence above, which is what most people read into such expressions.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

/// Highest skill level an agent can hold.
pub const MAX_LEVEL: u8 = 10;
/// Deepest nesting of parentheses and `!` accepted. It bounds parser recursion and the
/// evaluator's bit stack: each level holds at most two pending results, so 24 levels fit in 64 bits.
pub const MAX_DEPTH: usize = 24;
/// Longest expression accepted, in characters.
pub const MAX_LEN: usize = 4096;

/// Why an expression did not parse, and where (1-based character column).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("column {column}: {message}")]
pub struct SkillParseError {
    /// 1-based column of the offending character.
    pub column: usize,
    /// What was expected or found.
    pub message: String,
}

/// A comparison operator between an agent's level and a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// Applies the operator to an agent's `level` and the expression's `value`.
    #[inline]
    pub fn apply(self, level: u8, value: u8) -> bool {
        match self {
            CmpOp::Eq => level == value,
            CmpOp::Ne => level != value,
            CmpOp::Gt => level > value,
            CmpOp::Ge => level >= value,
            CmpOp::Lt => level < value,
            CmpOp::Le => level <= value,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// The parsed expression as a tree: the reference semantics that the compiled form must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Matches everyone (the empty expression).
    True,
    /// `skill op level`, with skill names lower-cased.
    Cmp {
        /// Skill name, lower-case.
        skill: String,
        /// Comparison.
        op: CmpOp,
        /// Level compared against.
        level: u8,
    },
    /// `!e`
    Not(Box<Expr>),
    /// `a & b`
    And(Box<Expr>, Box<Expr>),
    /// `a | b`
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses an expression, reporting the column of the first problem.
    pub fn parse(text: &str) -> Result<Expr, SkillParseError> {
        if text.chars().count() > MAX_LEN {
            return Err(SkillParseError {
                column: MAX_LEN + 1,
                message: format!("expression longer than {MAX_LEN} characters"),
            });
        }
        let mut p = ExprParser {
            chars: text.chars().collect(),
            at: 0,
            depth: 0,
        };
        p.skip_ws();
        if p.at == p.chars.len() {
            return Ok(Expr::True);
        }
        let e = p.or()?;
        p.skip_ws();
        if p.at < p.chars.len() {
            return Err(p.error(format!("unexpected `{}`", p.chars[p.at])));
        }
        Ok(e)
    }

    /// Evaluates by walking the tree, looking up an agent's level per skill name.
    pub fn eval(&self, level_of: &impl Fn(&str) -> u8) -> bool {
        match self {
            Expr::True => true,
            Expr::Cmp { skill, op, level } => op.apply(level_of(skill), *level),
            Expr::Not(e) => !e.eval(level_of),
            Expr::And(a, b) => a.eval(level_of) && b.eval(level_of),
            Expr::Or(a, b) => a.eval(level_of) || b.eval(level_of),
        }
    }

    /// Every skill name the expression mentions.
    pub fn skills(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_skills(&mut out);
        out
    }

    fn collect_skills<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::True => {}
            Expr::Cmp { skill, .. } => {
                if !out.contains(&skill.as_str()) {
                    out.push(skill)
                }
            }
            Expr::Not(e) => e.collect_skills(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_skills(out);
                b.collect_skills(out);
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::True => Ok(()),
            Expr::Cmp { skill, op, level } => write!(f, "{skill}{}{level}", op.symbol()),
            Expr::Not(e) => write!(f, "!({e})"),
            Expr::And(a, b) => write!(f, "({a} & {b})"),
            Expr::Or(a, b) => write!(f, "({a} | {b})"),
        }
    }
}

struct ExprParser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl ExprParser {
    fn error(&self, message: impl Into<String>) -> SkillParseError {
        SkillParseError {
            column: self.at + 1,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.at < self.chars.len() && self.chars[self.at].is_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.at).copied()
    }

    fn enter(&mut self) -> Result<(), SkillParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Consumes the operator `op`, single or doubled (`|` or `||`), when it comes next.
    fn operator(&mut self, op: char) -> bool {
        if self.peek() != Some(op) {
            return false;
        }
        self.at += 1;
        if self.chars.get(self.at) == Some(&op) {
            self.at += 1;
        }
        true
    }

    fn or(&mut self) -> Result<Expr, SkillParseError> {
        self.chain('|', Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, SkillParseError> {
        self.chain('&', Self::unary, Expr::And)
    }

    /// A left-associative run of `operand`s joined by `op`, each pair joined by `join`.
    fn chain(
        &mut self,
        op: char,
        operand: fn(&mut Self) -> Result<Expr, SkillParseError>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, SkillParseError> {
        let mut left = operand(self)?;
        while self.operator(op) {
            let right = operand(self)?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SkillParseError> {
        match self.peek() {
            Some('!') => {
                self.at += 1;
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(inner)))
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, SkillParseError> {
        match self.peek() {
            None => Err(self.error("expected a skill or `(`, found the end")),
            Some('(') => {
                self.at += 1;
                self.enter()?;
                let inner = self.or()?;
                self.depth -= 1;
                if self.peek() != Some(')') {
                    return Err(match self.chars.get(self.at) {
                        Some(c) => self.error(format!("expected `)`, found `{c}`")),
                        None => self.error("expected `)`, found the end"),
                    });
                }
                self.at += 1;
                Ok(inner)
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.at;
                while self.at < self.chars.len()
                    && (self.chars[self.at].is_alphanumeric() || self.chars[self.at] == '_')
                {
                    self.at += 1;
                }
                let skill: String = self.chars[start..self.at]
                    .iter()
                    .collect::<String>()
                    .to_lowercase();
                if skill.len() > 126 {
                    return Err(SkillParseError {
                        column: start + 1,
                        message: "skill name longer than 126 characters".into(),
                    });
                }
                let Some(op) = self.op() else {
                    return Ok(Expr::Cmp {
                        skill,
                        op: CmpOp::Gt,
                        level: 0,
                    });
                };
                let level = self.level()?;
                Ok(Expr::Cmp { skill, op, level })
            }
            Some(c) => Err(self.error(format!("expected a skill or `(`, found `{c}`"))),
        }
    }

    fn op(&mut self) -> Option<CmpOp> {
        self.skip_ws();
        let c0 = self.chars.get(self.at).copied();
        let c1 = self.chars.get(self.at + 1).copied();
        let (op, len) = match (c0, c1) {
            (Some('='), Some('=')) => (CmpOp::Eq, 2),
            (Some('='), _) => (CmpOp::Eq, 1),
            (Some('!'), Some('=')) => (CmpOp::Ne, 2),
            (Some('>'), Some('=')) => (CmpOp::Ge, 2),
            (Some('>'), _) => (CmpOp::Gt, 1),
            (Some('<'), Some('=')) => (CmpOp::Le, 2),
            (Some('<'), _) => (CmpOp::Lt, 1),
            _ => return None,
        };
        self.at += len;
        Some(op)
    }

    fn level(&mut self) -> Result<u8, SkillParseError> {
        self.skip_ws();
        let start = self.at;
        while self.at < self.chars.len() && self.chars[self.at].is_ascii_digit() {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("expected a level (0 to 10) after the operator"));
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        match digits.parse::<u32>() {
            Ok(v) if v <= MAX_LEVEL as u32 => Ok(v as u8),
            _ => Err(SkillParseError {
                column: start + 1,
                message: format!("level {digits} is out of range 0 to {MAX_LEVEL}"),
            }),
        }
    }
}

/// Dense number for a skill name, so agents' levels live in a flat array.
pub type SkillId = u16;

/// Interns skill names (case-insensitive) to dense ids shared by agents and expressions.
#[derive(Debug, Default)]
pub struct SkillCatalog {
    ids: RwLock<HashMap<String, SkillId>>,
}

impl SkillCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, assigning the next one if it is new.
    pub fn intern(&self, name: &str) -> SkillId {
        let key = name.to_lowercase();
        if let Some(id) = self.read().get(&key) {
            return *id;
        }
        let mut ids = self.ids.write();
        let next = ids.len() as SkillId;
        *ids.entry(key).or_insert(next)
    }

    /// The id of `name` if any agent or expression has used it.
    pub fn lookup(&self, name: &str) -> Option<SkillId> {
        self.read().get(&name.to_lowercase()).copied()
    }

    /// How many distinct skills are known.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no skill has been interned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, HashMap<String, SkillId>> {
        self.ids.read()
    }
}

/// An agent's skill levels indexed by [`SkillId`]; a missing skill reads as level 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkillLevels {
    levels: Vec<u8>,
}

impl SkillLevels {
    /// Levels from `(name, level)` pairs, interning names in `catalog`; levels above 10 clamp.
    pub fn from_pairs<'a>(
        catalog: &SkillCatalog,
        pairs: impl IntoIterator<Item = (&'a str, u8)>,
    ) -> Self {
        let mut s = SkillLevels::default();
        for (name, level) in pairs {
            s.set(catalog.intern(name), level);
        }
        s
    }

    /// Sets one skill's level.
    pub fn set(&mut self, id: SkillId, level: u8) {
        let i = id as usize;
        if self.levels.len() <= i {
            self.levels.resize(i + 1, 0);
        }
        self.levels[i] = level.min(MAX_LEVEL);
    }

    /// One skill's level (0 when the agent lacks it).
    #[inline]
    pub fn get(&self, id: SkillId) -> u8 {
        self.levels.get(id as usize).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    True,
    Cmp(SkillId, CmpOp, u8),
    Not,
    And,
    Or,
}

/// A skill expression compiled to postfix operations over skill ids, evaluated with a bit stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledExpr {
    ops: Vec<Op>,
    source: String,
}

impl CompiledExpr {
    /// Parses and compiles `text`, interning its skills in `catalog`.
    pub fn compile(text: &str, catalog: &SkillCatalog) -> Result<Self, SkillParseError> {
        let expr = Expr::parse(text)?;
        Ok(Self::from_expr(&expr, text, catalog))
    }

    /// Compiles an already parsed expression.
    pub fn from_expr(expr: &Expr, source: &str, catalog: &SkillCatalog) -> Self {
        let mut ops = Vec::new();
        emit(expr, catalog, &mut ops);
        CompiledExpr {
            ops,
            source: source.to_string(),
        }
    }

    /// The text this was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when an agent with `levels` satisfies the expression.
    #[inline]
    pub fn matches(&self, levels: &SkillLevels) -> bool {
        // The parser bounds nesting, so the stack never exceeds 64 entries.
        let mut stack: u64 = 0;
        let mut depth: u32 = 0;
        for op in &self.ops {
            match *op {
                Op::True => {
                    stack = (stack << 1) | 1;
                    depth += 1;
                }
                Op::Cmp(id, cmp, value) => {
                    stack = (stack << 1) | cmp.apply(levels.get(id), value) as u64;
                    depth += 1;
                }
                Op::Not => stack ^= 1,
                Op::And => {
                    let b = stack & 1;
                    stack >>= 1;
                    stack = (stack & !1) | (stack & b & 1);
                    depth -= 1;
                }
                Op::Or => {
                    let b = stack & 1;
                    stack >>= 1;
                    stack |= b;
                    depth -= 1;
                }
            }
        }
        debug_assert_eq!(depth, 1);
        stack & 1 == 1
    }
}

fn emit(expr: &Expr, catalog: &SkillCatalog, ops: &mut Vec<Op>) {
    match expr {
        Expr::True => ops.push(Op::True),
        Expr::Cmp { skill, op, level } => ops.push(Op::Cmp(catalog.intern(skill), *op, *level)),
        Expr::Not(e) => {
            emit(e, catalog, ops);
            ops.push(Op::Not);
        }
        Expr::And(a, b) => {
            emit(a, catalog, ops);
            emit(b, catalog, ops);
            ops.push(Op::And);
        }
        Expr::Or(a, b) => {
            emit(a, catalog, ops);
            emit(b, catalog, ops);
            ops.push(Op::Or);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agent(cat: &SkillCatalog, pairs: &[(&str, u8)]) -> SkillLevels {
        SkillLevels::from_pairs(cat, pairs.iter().copied())
    }

    #[test]
    fn the_issue_example_matches_as_expected() {
        let cat = SkillCatalog::new();
        let e =
            CompiledExpr::compile("Sales>=5 & (English>3 | Spanish>3) & !Trainee", &cat).unwrap();
        assert!(e.matches(&agent(&cat, &[("sales", 5), ("english", 4)])));
        assert!(e.matches(&agent(&cat, &[("Sales", 9), ("Spanish", 10)])));
        assert!(!e.matches(&agent(&cat, &[("Sales", 4), ("English", 9)])));
        assert!(!e.matches(&agent(&cat, &[("Sales", 5), ("English", 3)])));
        assert!(!e.matches(&agent(
            &cat,
            &[("Sales", 5), ("English", 4), ("Trainee", 1)]
        )));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let e = Expr::parse("a | b & !c").unwrap();
        assert_eq!(e.to_string(), "(a>0 | (b>0 & !(c>0)))");
    }

    #[test]
    fn every_operator_and_missing_skills_read_as_zero() {
        let cat = SkillCatalog::new();
        let a = agent(&cat, &[("x", 5)]);
        for (text, want) in [
            ("x=5", true),
            ("x==5", true),
            ("x!=5", false),
            ("x>4", true),
            ("x>5", false),
            ("x>=5", true),
            ("x<5", false),
            ("x<=5", true),
            ("y<3", true),
            ("y", false),
            ("!y", true),
            ("", true),
            ("x && y || x", true),
        ] {
            assert_eq!(
                CompiledExpr::compile(text, &cat).unwrap().matches(&a),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("Sales >= ", 10, "expected a level"),
            ("Sales > 11", 9, "out of range"),
            ("(a & b", 7, "expected `)`"),
            ("a & & b", 5, "expected a skill"),
            ("a b", 3, "unexpected `b`"),
            ("3x", 1, "expected a skill"),
        ];
        for (text, column, msg) in cases {
            let err = Expr::parse(text).unwrap_err();
            assert_eq!(err.column, column, "{text}: {err}");
            assert!(err.message.contains(msg), "{text}: {err}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(Expr::parse(&deep).unwrap_err().message.contains("nested"));
        let bangs = format!("{}a", "!".repeat(1000));
        assert!(Expr::parse(&bangs).is_err());
    }

    fn arb_expr() -> impl Strategy<Value = String> {
        let leaf = (0..6usize, 0..7usize, 0..=10u8).prop_map(|(s, op, lvl)| {
            let ops = ["=", "!=", ">", ">=", "<", "<="];
            if op == 6 {
                format!("s{s}")
            } else {
                format!("s{s}{}{lvl}", ops[op])
            }
        });
        leaf.prop_recursive(6, 40, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} & {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | {b}")),
                inner.clone().prop_map(|a| format!("!{a}")),
                inner.prop_map(|a| format!("({a})")),
            ]
        })
    }

    proptest! {
        #[test]
        fn compiled_form_agrees_with_the_tree_walker(text in arb_expr(), levels in proptest::collection::vec(0..=10u8, 6)) {
            let cat = SkillCatalog::new();
            let expr = Expr::parse(&text).unwrap();
            let compiled = CompiledExpr::from_expr(&expr, &text, &cat);
            let names: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
            let agent = SkillLevels::from_pairs(&cat, names.iter().map(String::as_str).zip(levels.iter().copied()));
            let by_tree = expr.eval(&|name: &str| {
                names.iter().position(|n| n == name).map(|i| levels[i]).unwrap_or(0)
            });
            prop_assert_eq!(compiled.matches(&agent), by_tree, "{}", text);
        }

        #[test]
        fn the_parser_never_panics(text in ".{0,64}") {
            let _ = Expr::parse(&text);
        }
    }
}
