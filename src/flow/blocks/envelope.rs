//! What every block has besides its own properties: its `id` and its `next`. They are held once
//! here rather than in each block's model; the loader takes them out of the block's mapping and
//! decodes the rest into the block's model, and the schema lists them with the block's own.

use std::borrow::Cow;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::BlockType;
use crate::yaml::{self, Diagnostic, Kind, Node};

/// A block with its `id` and `next`; derefs to the block's own model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<B> {
    /// The author's id.
    pub id: Option<String>,
    /// The explicit `next` (always `None` for a block type without one).
    pub next: Option<String>,
    /// The block's own properties.
    pub body: B,
}

impl<B> Deref for Envelope<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.body
    }
}

/// The envelope's properties as decoded (only these keys are given to it).
#[derive(Deserialize)]
struct Head {
    id: Option<String>,
    next: Option<String>,
}

/// Schema text of `id`, the same for every block type.
const ID_DOC: &str = "Block id.";

impl<B: BlockType + DeserializeOwned> Envelope<B> {
    /// The property names the envelope takes from a block of type `B`, in schema order.
    fn keys() -> &'static [&'static str] {
        if B::NEXT.is_some() {
            &["id", "next"]
        } else {
            &["id"]
        }
    }

    /// Decodes a block from its mapping `rest` (without `type`) at `path`: `id` and `next`
    /// here, the other properties into `B`, whose unknown-property error lists all of them.
    pub fn decode(rest: &Node, path: &str) -> Result<Self, Diagnostic> {
        let keys = Self::keys();
        let entries = match &rest.kind {
            Kind::Map(entries) => entries.as_slice(),
            _ => &[],
        };
        let (head, body): (Vec<_>, Vec<_>) = entries
            .iter()
            .cloned()
            .partition(|(k, _)| k.as_key().is_some_and(|k| keys.contains(&k.as_str())));
        let map = |entries| Node {
            pos: rest.pos,
            kind: Kind::Map(entries),
        };
        let body = map(body).decode::<B>(path).map_err(|mut d| {
            let field = d.message.split('`').nth(1).unwrap_or_default().to_string();
            if d.message.starts_with("unknown field `") && d.path == yaml::join(path, &field) {
                let known: Vec<String> = keys
                    .iter()
                    .copied()
                    .chain(d.message.split('`').skip(3).step_by(2))
                    .map(|k| format!("`{k}`"))
                    .collect();
                d.message = format!(
                    "unknown field `{field}`, expected one of {}",
                    known.join(", ")
                );
            }
            d
        })?;
        let head = map(head).decode::<Head>(path)?;
        Ok(Envelope {
            id: head.id,
            next: head.next,
            body,
        })
    }
}

impl<B: BlockType + JsonSchema> JsonSchema for Envelope<B> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        B::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        B::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = B::json_schema(generator);
        let mut property = |doc: &str| {
            let mut p = generator.subschema_for::<Option<String>>();
            p.insert("description".into(), doc.into());
            Value::from(p)
        };
        let id = property(ID_DOC);
        let next = B::NEXT.map(property);
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            props.insert("id".into(), id);
            if let Some(next) = next {
                props.insert("next".into(), next);
            }
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::blocks::{play_message::PlayMessage, terminate_call::TerminateCall};

    fn node(text: &str) -> Node {
        crate::yaml::parse(text).unwrap()
    }

    #[test]
    fn id_and_next_are_taken_out_and_listed_with_the_block_properties() {
        let b =
            Envelope::<PlayMessage>::decode(&node("id: a\nnext: b\nprompts: [x]\n"), "p").unwrap();
        assert_eq!((b.id.as_deref(), b.next.as_deref()), (Some("a"), Some("b")));
        assert_eq!(b.prompts.len(), 1);
        let e = Envelope::<PlayMessage>::decode(&node("prompts: [x]\nnxet: b\n"), "p").unwrap_err();
        assert_eq!(e.path, "p.nxet");
        assert_eq!(
            e.message,
            "unknown field `nxet`, expected one of `id`, `next`, `prompts`, `barge_in`"
        );
    }

    #[test]
    fn a_block_without_next_refuses_it() {
        let e = Envelope::<TerminateCall>::decode(&node("id: a\nnext: b\n"), "p").unwrap_err();
        assert_eq!(
            e.message,
            "unknown field `next`, expected one of `id`, `cause`"
        );
        let e = Envelope::<TerminateCall>::decode(&node("id: [a]\n"), "p").unwrap_err();
        assert_eq!(e.path, "p.id");
    }
}
