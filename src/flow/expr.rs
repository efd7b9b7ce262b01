//! The small expression language of If, Assign and block properties: literals, variables,
//! comparisons, `&&`/`||`/`!`, `+` (numbers add, anything else concatenates), `-`, and a few
//! functions. Parsed once when the flow loads, so a typo is a load error with its column.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

/// A value a variable holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text (digits collected, numbers to call, ids).
    Str(String),
    /// A number (EWT seconds, positions, priorities).
    Num(f64),
    /// A flag.
    Bool(bool),
}

impl Value {
    /// Truthiness for conditions: empty text, zero and false are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0,
            Value::Bool(b) => *b,
        }
    }

    /// Numeric view: numbers, numeric text and booleans (1/0).
    pub fn as_num(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Value::Num(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Num(n as f64)
    }
}

/// Variables of one call: system ones (`ani`, `dnis`…) and the flow's own.
pub type Variables = BTreeMap<String, Value>;

/// A syntax error, with the 0-based character offset in the expression text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ExprError {
    /// Offset of the problem in the expression text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Functions the language knows, with their arity.
const FUNCTIONS: &[(&str, usize)] = &[
    ("len", 1),
    ("starts_with", 2),
    ("ends_with", 2),
    ("contains", 2),
    ("is_empty", 1),
    ("number", 1),
    ("text", 1),
];

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// A variable; unknown variables read as empty text.
    Var(String),
    /// `!e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// A binary operation.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(String, Vec<Expr>),
}

/// Binary operators, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
}

impl BinOp {
    fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne => 3,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 4,
            BinOp::Add | BinOp::Sub => 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Op(BinOp),
    Not,
    LParen,
    RParen,
    Comma,
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, message: String| ExprError { offset, message };
    while i < chars.len() {
        let (at, c) = chars[i];
        let next = chars.get(i + 1).map(|p| p.1);
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((at, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((at, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((at, Tok::Comma));
                i += 1;
            }
            '+' => {
                out.push((at, Tok::Op(BinOp::Add)));
                i += 1;
            }
            '-' => {
                out.push((at, Tok::Op(BinOp::Sub)));
                i += 1;
            }
            '&' | '|' => {
                if next != Some(c) {
                    return Err(err(at, format!("`{c}` must be doubled: `{c}{c}`")));
                }
                out.push((at, Tok::Op(if c == '&' { BinOp::And } else { BinOp::Or })));
                i += 2;
            }
            '=' => {
                if next != Some('=') {
                    return Err(err(at, "use `==` to compare".into()));
                }
                out.push((at, Tok::Op(BinOp::Eq)));
                i += 2;
            }
            '!' | '<' | '>' => {
                let eq = next == Some('=');
                let tok = match (c, eq) {
                    ('!', true) => Tok::Op(BinOp::Ne),
                    ('!', false) => Tok::Not,
                    ('<', true) => Tok::Op(BinOp::Le),
                    ('<', false) => Tok::Op(BinOp::Lt),
                    ('>', true) => Tok::Op(BinOp::Ge),
                    _ => Tok::Op(BinOp::Gt),
                };
                out.push((at, tok));
                i += if eq { 2 } else { 1 };
            }
            '\'' | '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(at, "text is not closed".into())),
                        Some(&(_, q)) if q == c => break,
                        Some(&(_, ch)) => s.push(ch),
                    }
                    j += 1;
                }
                out.push((at, Tok::Str(s)));
                i = j + 1;
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|p| p.1.is_ascii_digit() || p.1 == '.')
                {
                    j += 1;
                }
                let end = chars.get(j).map(|p| p.0).unwrap_or(text.len());
                let n = text[at..end]
                    .parse()
                    .map_err(|_| err(at, format!("`{}` is not a number", &text[at..end])))?;
                out.push((at, Tok::Num(n)));
                i = j;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|p| p.1.is_alphanumeric() || p.1 == '_' || p.1 == '.')
                {
                    j += 1;
                }
                let end = chars.get(j).map(|p| p.0).unwrap_or(text.len());
                out.push((at, Tok::Ident(text[at..end].to_string())));
                i = j;
            }
            other => return Err(err(at, format!("unexpected `{other}`"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.at).map(|t| t.0).unwrap_or(self.len)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            if op.precedence() < min_prec {
                break;
            }
            self.at += 1;
            let rhs = self.expr(op.precedence() + 1)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Not) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Tok::Op(BinOp::Sub)) => {
                self.at += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Num(n)) => {
                self.at += 1;
                Ok(Expr::Lit(Value::Num(n)))
            }
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(Expr::Lit(Value::Str(s)))
            }
            Some(Tok::LParen) => {
                self.at += 1;
                let e = self.expr(0)?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.fail("expected `)`");
                }
                self.at += 1;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                let start = self.offset();
                self.at += 1;
                match name.as_str() {
                    "true" => return Ok(Expr::Lit(Value::Bool(true))),
                    "false" => return Ok(Expr::Lit(Value::Bool(false))),
                    _ => {}
                }
                if self.peek() != Some(&Tok::LParen) {
                    return Ok(Expr::Var(name));
                }
                self.at += 1;
                let Some(&(_, arity)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
                    return Err(ExprError {
                        offset: start,
                        message: format!(
                            "unknown function `{name}` (known: {})",
                            FUNCTIONS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                        ),
                    });
                };
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.expr(0)?);
                        match self.peek() {
                            Some(Tok::Comma) => self.at += 1,
                            Some(Tok::RParen) => break,
                            _ => return self.fail("expected `,` or `)`"),
                        }
                    }
                }
                self.at += 1;
                if args.len() != arity {
                    return Err(ExprError {
                        offset: start,
                        message: format!("`{name}` takes {arity} argument(s), not {}", args.len()),
                    });
                }
                Ok(Expr::Call(name, args))
            }
            Some(_) => self.fail("expected a value, a variable or `(`"),
            None => self.fail("the expression ends too early"),
        }
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let toks = lex(text)?;
        if toks.is_empty() {
            return Err(ExprError {
                offset: 0,
                message: "empty expression".into(),
            });
        }
        let mut p = Parser {
            toks,
            at: 0,
            len: text.len(),
        };
        let e = p.expr(0)?;
        if p.at < p.toks.len() {
            return p.fail("unexpected text after the expression");
        }
        Ok(e)
    }

    /// Variables the expression reads, for load-time checks.
    pub fn variables(&self, out: &mut Vec<String>) {
        match self {
            Expr::Lit(_) => {}
            Expr::Var(v) => out.push(v.clone()),
            Expr::Not(e) | Expr::Neg(e) => e.variables(out),
            Expr::Bin(_, a, b) => {
                a.variables(out);
                b.variables(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.variables(out)),
        }
    }

    /// Evaluates against a call's variables; never fails (unknown variables are empty text).
    pub fn eval(&self, vars: &Variables) -> Value {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::Var(name) => vars
                .get(name)
                .cloned()
                .unwrap_or_else(|| Value::Str(String::new())),
            Expr::Not(e) => Value::Bool(!e.eval(vars).truthy()),
            Expr::Neg(e) => Value::Num(-e.eval(vars).as_num().unwrap_or(0.0)),
            Expr::Bin(op, a, b) => {
                let a = a.eval(vars);
                match op {
                    BinOp::And => {
                        if !a.truthy() {
                            return Value::Bool(false);
                        }
                        Value::Bool(b.eval(vars).truthy())
                    }
                    BinOp::Or => {
                        if a.truthy() {
                            return Value::Bool(true);
                        }
                        Value::Bool(b.eval(vars).truthy())
                    }
                    _ => binary(*op, a, b.eval(vars)),
                }
            }
            Expr::Call(name, args) => {
                let v: Vec<Value> = args.iter().map(|a| a.eval(vars)).collect();
                let text = |i: usize| v.get(i).map(|x| x.to_string()).unwrap_or_default();
                match name.as_str() {
                    "len" => Value::Num(text(0).chars().count() as f64),
                    "starts_with" => Value::Bool(text(0).starts_with(&text(1))),
                    "ends_with" => Value::Bool(text(0).ends_with(&text(1))),
                    "contains" => Value::Bool(text(0).contains(&text(1))),
                    "is_empty" => Value::Bool(text(0).is_empty()),
                    "number" => Value::Num(v.first().and_then(Value::as_num).unwrap_or(0.0)),
                    _ => Value::Str(text(0)),
                }
            }
        }
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Value {
    let nums = a.as_num().zip(b.as_num());
    let both_text = matches!((&a, &b), (Value::Str(_), Value::Str(_)));
    match op {
        BinOp::Add => match (&a, &b, nums) {
            (Value::Num(_), Value::Num(_), Some((x, y))) => Value::Num(x + y),
            _ => Value::Str(format!("{a}{b}")),
        },
        BinOp::Sub => Value::Num(nums.map(|(x, y)| x - y).unwrap_or(0.0)),
        BinOp::Eq | BinOp::Ne => {
            let equal = match nums {
                // "07" and "7" are different digit strings, so text compares as text.
                Some((x, y)) if !both_text => x == y,
                _ => a.to_string() == b.to_string(),
            };
            Value::Bool(equal == (op == BinOp::Eq))
        }
        _ => {
            let ord = match nums {
                Some((x, y)) => x.partial_cmp(&y),
                None => Some(a.to_string().cmp(&b.to_string())),
            };
            let Some(ord) = ord else {
                return Value::Bool(false);
            };
            Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, Value)]) -> Value {
        let vars: Variables = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Expr::parse(text).unwrap().eval(&vars)
    }

    #[test]
    fn precedence_and_short_circuit() {
        assert_eq!(eval("1 + 2 > 2 && !false", &[]), Value::Bool(true));
        assert_eq!(eval("1 == 2 || 3 >= 3", &[]), Value::Bool(true));
        assert_eq!(eval("(1 + 2) - 4", &[]), Value::Num(-1.0));
        assert_eq!(eval("-3 + 1", &[]), Value::Num(-2.0));
    }

    #[test]
    fn variables_and_text() {
        let vars = [
            ("ani", Value::from("+33123")),
            ("queue.ewt", Value::Num(300.0)),
            ("code", Value::from("0042")),
        ];
        assert_eq!(eval("queue.ewt > 120", &vars), Value::Bool(true));
        assert_eq!(eval("starts_with(ani, '+33')", &vars), Value::Bool(true));
        assert_eq!(eval("'tel:' + ani", &vars), Value::from("tel:+33123"));
        assert_eq!(eval("len(code) == 4", &vars), Value::Bool(true));
        // Digit strings compare as text: a leading zero matters.
        assert_eq!(eval("code == '42'", &vars), Value::Bool(false));
        assert_eq!(eval("number(code) == 42", &vars), Value::Bool(true));
        assert_eq!(eval("missing == ''", &vars), Value::Bool(true));
        assert_eq!(eval("is_empty(missing)", &vars), Value::Bool(true));
    }

    #[test]
    fn errors_point_at_the_offending_character() {
        let e = Expr::parse("ewt = 3").unwrap_err();
        assert_eq!(e.offset, 4);
        assert!(e.message.contains("=="));
        let e = Expr::parse("a && (b").unwrap_err();
        assert_eq!(e.offset, 7);
        let e = Expr::parse("lenn(x)").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("unknown function"));
        let e = Expr::parse("'open").unwrap_err();
        assert!(e.message.contains("not closed"));
        assert!(Expr::parse("len(a, b)").is_err());
        assert!(Expr::parse("").is_err());
        assert!(Expr::parse("1 2").is_err());
    }

    #[test]
    fn reports_variables_read() {
        let mut v = Vec::new();
        Expr::parse("a > 1 && len(b.c) == 2")
            .unwrap()
            .variables(&mut v);
        assert_eq!(v, vec!["a".to_string(), "b.c".to_string()]);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            if let Ok(e) = Expr::parse(&s) {
                let _ = e.eval(&Variables::new());
            }
        }
    }
}
