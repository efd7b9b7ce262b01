//! How problems in YAML files are told, for the configuration and the flows alike: a position,
//! a path and a message; rendered with the offending source line and a caret; with a
//! did-you-mean for a misspelt name (`strsim`), and columns that line up inside quoted scalars.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::yaml::{Kind, Node};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, counted from 1.
    pub line: usize,
    /// Column in characters, counted from 1.
    pub column: usize,
}

/// One problem found in a YAML file, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in, when it came from one.
    pub file: Option<PathBuf>,
    /// Where in the file.
    pub pos: Pos,
    /// The YAML path of the offending value, such as `queues[2].slot_capacity`.
    pub path: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl Diagnostic {
    /// A problem at `pos`, reached by `path`.
    pub fn new(pos: Pos, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: None,
            pos,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A problem with the file as a whole (shown at its start).
    pub fn whole_file(message: impl Into<String>) -> Self {
        Diagnostic::new(Pos { line: 1, column: 1 }, "", message)
    }

    /// The same problem, attributed to `file`.
    pub fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_path_buf());
        self
    }

    /// The diagnostic with the offending source line and a caret under the column.
    pub fn render(&self, source: &str) -> String {
        let mut out = self.to_string();
        if let Some(line) = source.lines().nth(self.pos.line.saturating_sub(1)) {
            let gutter = self.pos.line.to_string();
            out.push('\n');
            out.push_str(&format!("{gutter} | {line}\n"));
            let pad: String = line
                .chars()
                .take(self.pos.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{} | {pad}^", " ".repeat(gutter.len())));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}:", file.display())?;
        }
        write!(f, "{}:{}: ", self.pos.line, self.pos.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

/// Problems in file order, each once.
pub fn tidy(diags: &mut Vec<Diagnostic>) {
    diags.sort_by_key(|d| d.pos);
    diags.dedup();
}

/// ` (did you mean `x`?)` for the closest known name within a small edit distance, else "".
pub fn suggest(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d > 0)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// "unknown property `x` (did you mean `y`?); expected one of …", `noun` naming what `key` is.
pub fn unknown_key(noun: &str, key: &str, known: &[&str]) -> String {
    format!(
        "unknown {noun} `{key}`{}; expected one of {}",
        suggest(key, known),
        known.join(", ")
    )
}

/// A problem for each key of the mapping `node` that is not in `known`, at the key.
pub fn unknown_keys(node: &Node, noun: &str, known: &[&str]) -> Vec<Diagnostic> {
    node.entries()
        .iter()
        .filter_map(|(k, _)| {
            let key = k.as_key().unwrap_or_default();
            (!known.contains(&key.as_str()))
                .then(|| Diagnostic::new(k.pos, key.clone(), unknown_key(noun, &key, known)))
        })
        .collect()
}

/// Checks a document's root into `diags`: a mapping whose keys are in `known`. False (after
/// `not_a_map`'s message, given the kind found) when the root is not a mapping at all.
pub fn root_mapping(
    root: &Node,
    noun: &str,
    known: &[&str],
    diags: &mut Vec<Diagnostic>,
    not_a_map: impl FnOnce(&str) -> String,
) -> bool {
    if !matches!(root.kind, Kind::Map(_)) {
        diags.push(Diagnostic::new(root.pos, "", not_a_map(root.kind_name())));
        return false;
    }
    diags.extend(unknown_keys(root, noun, known));
    true
}

/// serde's "unknown field `x`, expected one of `a`, `b`" told like [`unknown_key`] does, with
/// a did-you-mean; any other message unchanged.
pub fn explain_unknown_field(mut d: Diagnostic) -> Diagnostic {
    if d.message.starts_with("unknown field `") {
        let names: Vec<&str> = d.message.split('`').skip(1).step_by(2).collect();
        if let Some((field, known)) = names.split_first()
            && !known.is_empty()
        {
            d.message = unknown_key("property", field, known);
        }
    }
    d
}

/// 1 when the scalar at `pos` starts with a quote, so offsets inside it start a column later.
pub fn quote_offset(source: &str, pos: Pos) -> usize {
    source
        .lines()
        .nth(pos.line.saturating_sub(1))
        .and_then(|l| l.chars().nth(pos.column.saturating_sub(1)))
        .map(|c| usize::from(c == '"' || c == '\''))
        .unwrap_or(0)
}

/// The position `chars` characters into the scalar written at `pos` (past its opening quote).
pub fn inside(source: &str, pos: Pos, chars: usize) -> Pos {
    Pos {
        line: pos.line,
        column: pos.column + quote_offset(source, pos) + chars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name_within_a_small_distance() {
        let known = ["queues", "agents", "trunks"];
        assert_eq!(suggest("queus", &known), " (did you mean `queues`?)");
        assert_eq!(suggest("queues", &known), "");
        assert_eq!(suggest("listeners", &known), "");
    }

    #[test]
    fn renders_the_source_line_with_a_caret_under_the_column() {
        let d = Diagnostic::new(Pos { line: 2, column: 5 }, "a.b", "bad");
        assert_eq!(
            d.render("x: 1\nab: cd\n"),
            "2:5: a.b: bad\n2 | ab: cd\n  |     ^"
        );
    }

    #[test]
    fn offsets_inside_a_quoted_scalar_start_after_the_quote() {
        let source = "k: \"abc\"\nj: abc\n";
        let at = |line| Pos { line, column: 4 };
        assert_eq!(inside(source, at(1), 2), Pos { line: 1, column: 7 });
        assert_eq!(inside(source, at(2), 2), Pos { line: 2, column: 6 });
    }
}
