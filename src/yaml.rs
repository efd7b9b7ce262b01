//! YAML with positions: every node keeps its line and column, so configuration and flow errors
//! point at the exact spot (file:line:column with a caret), and several errors can be reported
//! at once instead of stopping at serde's first.
//!
//! Parsing uses `saphyr-parser` (the maintained YAML 1.2 successor of yaml-rust, panic-free and
//! carrying a span on every event); typed decoding goes through serde on a JSON view of a subtree
//! with `serde_path_to_error`, whose path is mapped back to the node's position.

use std::path::Path;

use saphyr::Scalar;
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::de::DeserializeOwned;

pub use crate::diagnostics::{Diagnostic, Pos};

/// A YAML value with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What the node holds.
    pub kind: Kind,
}

/// The shapes a YAML node can take after YAML 1.2 core-schema resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A plain integer.
    Int(i64),
    /// A plain floating-point number.
    Float(f64),
    /// Any quoted scalar, or a plain one that is not one of the above.
    Str(String),
    /// A block or flow sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys keep their own positions.
    Map(Vec<(Node, Node)>),
}

/// Parses one YAML document; an empty file is an empty mapping.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    while let Some(item) = parser.next_event() {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            Diagnostic::new(
                Pos {
                    line: m.line(),
                    column: m.col() + 1,
                },
                "",
                format!("YAML syntax error: {}", e.info()),
            )
        })?;
        let pos = Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        builder.event(event, pos)?;
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos { line: 1, column: 1 },
        kind: Kind::Map(Vec::new()),
    }))
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
}

struct Frame {
    node: Node,
    anchor: usize,
    pending_key: Option<Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), Diagnostic> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diagnostic::new(
                        pos,
                        "",
                        "only one YAML document per file is allowed",
                    ));
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let kind = resolve_scalar(&value, style, tag.is_some());
                self.push(Node { pos, kind }, anchor)?;
            }
            Event::Alias(id) => {
                let node =
                    self.anchors.get(&id).cloned().ok_or_else(|| {
                        Diagnostic::new(pos, "", "alias refers to an unknown anchor")
                    })?;
                self.push(Node { pos, ..node }, 0)?;
            }
            Event::SequenceStart(anchor, _) => self.open(pos, Kind::Seq(Vec::new()), anchor),
            Event::MappingStart(anchor, _) => self.open(pos, Kind::Map(Vec::new()), anchor),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    self.push(frame.node, frame.anchor)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Starts a collection; its items follow until its end event.
    fn open(&mut self, pos: Pos, kind: Kind, anchor: usize) {
        self.stack.push(Frame {
            node: Node { pos, kind },
            anchor,
            pending_key: None,
        });
    }

    fn push(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut top.node.kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(entries) => match top.pending_key.take() {
                None => top.pending_key = Some(node),
                Some(key) => {
                    if let Some(k) = key.as_key()
                        && entries
                            .iter()
                            .any(|(e, _)| e.as_key().as_deref() == Some(&k))
                    {
                        return Err(Diagnostic::new(
                            key.pos,
                            k.clone(),
                            format!("duplicate key `{k}`"),
                        ));
                    }
                    entries.push((key, node));
                }
            },
            _ => {}
        }
        Ok(())
    }
}

fn resolve_scalar(value: &str, style: ScalarStyle, tagged: bool) -> Kind {
    if style != ScalarStyle::Plain || tagged {
        return Kind::Str(value.to_string());
    }
    match Scalar::parse_from_cow(value.into()) {
        Scalar::Null => Kind::Null,
        Scalar::Boolean(b) => Kind::Bool(b),
        Scalar::Integer(i) => Kind::Int(i),
        Scalar::FloatingPoint(f) => Kind::Float(f.into_inner()),
        Scalar::String(s) => Kind::Str(s.into_owned()),
    }
}

impl Node {
    /// The node as a mapping key: scalars become their text.
    pub fn as_key(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Null => Some("null".into()),
            _ => None,
        }
    }

    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The mapping's entries, or none.
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            Kind::Map(e) => e,
            _ => &[],
        }
    }

    /// The sequence's items, or none.
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(i) => i,
            _ => &[],
        }
    }

    /// A short name of the node's shape, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// A JSON view of the subtree, the form serde decodes from.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_key().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Decodes the subtree into `T`; on failure the diagnostic points at the offending value
    /// and names its path below `base` (the path of this node).
    pub fn decode<T: DeserializeOwned>(&self, base: &str) -> Result<T, Diagnostic> {
        let json = self.to_json();
        serde_path_to_error::deserialize::<_, T>(json).map_err(|err| {
            let mut node = self;
            let mut path = base.to_string();
            let mut pos = self.pos;
            let mut last_key: Option<(String, Pos)> = None;
            for seg in err.path().iter() {
                use serde_path_to_error::Segment;
                match seg {
                    Segment::Seq { index } => {
                        path.push_str(&format!("[{index}]"));
                        last_key = None;
                        if let Some(n) = node.items().get(*index) {
                            node = n;
                            pos = n.pos;
                        }
                    }
                    Segment::Map { key } => {
                        path = join(&path, key);
                        match node.entry(key) {
                            Some((k, v)) => {
                                last_key = Some((key.clone(), k.pos));
                                pos = if matches!(v.kind, Kind::Null) {
                                    k.pos
                                } else {
                                    v.pos
                                };
                                node = v;
                            }
                            None => {
                                last_key = None;
                                pos = node.pos;
                            }
                        }
                    }
                    _ => {}
                }
            }
            let inner = err.into_inner().to_string();
            // An unknown field is best shown at its key, not at its value.
            if inner.starts_with("unknown field") {
                let named = inner.split('`').nth(1).unwrap_or_default();
                match (&last_key, node.entry(named)) {
                    (Some((k, kpos)), _) if k == named => pos = *kpos,
                    (_, Some((k, _))) => {
                        pos = k.pos;
                        path = join(&path, named);
                    }
                    _ => {}
                }
            }
            Diagnostic::new(pos, path, inner)
        })
    }
}

/// Appends a key to a YAML path.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Reads `file` and parses it, with any syntax error attributed to the file.
pub fn parse_file(file: &Path) -> Result<(String, Node), Diagnostic> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::whole_file(format!("cannot read: {e}")).in_file(file))?;
    let node = parse(&text).map_err(|d| d.in_file(file))?;
    Ok((text, node))
}

/// Serde helper: accepts a string or a plain number and keeps its text (phone numbers, SIP users).
pub fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        I(i64),
    }
    match <Either as serde::Deserialize>::deserialize(d) {
        Ok(Either::S(s)) => Ok(s),
        Ok(Either::I(i)) => Ok(i.to_string()),
        Err(_) => Err(serde::de::Error::custom("expected a string or a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_values() {
        let doc = parse("a: 1\nlist:\n  - x: hello\n    y: 'quoted'\n").unwrap();
        assert_eq!(doc.get("a").unwrap().pos, Pos { line: 1, column: 4 });
        let item = &doc.get("list").unwrap().items()[0];
        assert_eq!(item.get("y").unwrap().pos, Pos { line: 4, column: 8 });
        assert_eq!(item.get("x").unwrap().kind, Kind::Str("hello".into()));
    }

    #[test]
    fn scalars_resolve_by_the_core_schema_and_quotes_keep_strings() {
        let doc = parse("i: 42\nf: 1.5\nb: true\nn: ~\ns: '42'\n").unwrap();
        assert_eq!(doc.get("i").unwrap().kind, Kind::Int(42));
        assert_eq!(doc.get("f").unwrap().kind, Kind::Float(1.5));
        assert_eq!(doc.get("b").unwrap().kind, Kind::Bool(true));
        assert_eq!(doc.get("n").unwrap().kind, Kind::Null);
        assert_eq!(doc.get("s").unwrap().kind, Kind::Str("42".into()));
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_are_located() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.contains("syntax"), "{err}");
        assert!(err.pos.line >= 1);
        let dup = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(dup.pos, Pos { line: 3, column: 1 });
        assert!(dup.message.contains("duplicate key `a`"));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        level: u8,
    }

    #[test]
    fn decode_errors_point_at_the_bad_value_or_unknown_key() {
        let doc = parse(
            "items:\n  - name: a\n    level: 300\n  - name: b\n    colour: red\n    level: 1\n",
        )
        .unwrap();
        let items = doc.get("items").unwrap();
        let e1 = items.items()[0].decode::<Item>("items[0]").unwrap_err();
        assert_eq!(e1.path, "items[0].level");
        assert_eq!(
            e1.pos,
            Pos {
                line: 3,
                column: 12
            }
        );
        let e2 = items.items()[1].decode::<Item>("items[1]").unwrap_err();
        assert_eq!(e2.pos, Pos { line: 5, column: 5 });
        assert!(e2.message.contains("unknown field `colour`"), "{e2}");
        let rendered = e2
            .in_file(Path::new("x.yaml"))
            .render("items:\n  - name: a\n    level: 300\n  - name: b\n    colour: red\n");
        assert!(
            rendered.starts_with("x.yaml:5:5: items[1].colour: unknown field"),
            "{rendered}"
        );
        assert!(rendered.ends_with("  |     ^"), "{rendered}");
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let doc = parse("base: &h {mon: '09:00-17:00'}\nother: *h\n").unwrap();
        assert_eq!(
            doc.get("other").unwrap().get("mon").unwrap().kind,
            Kind::Str("09:00-17:00".into())
        );
    }
}
