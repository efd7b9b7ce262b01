//! Call Data: attaches data to the interaction — computed values, and whole groups of
//! variables such as a matched call-in request's `match.user_data` or a callback's
//! `callback.user_data`. The agent's phone receives it as SIP headers on the agent leg, and a
//! callback booked later in the call keeps it as its `userData`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::BlockType;
use crate::flow::call_data::{MAX_ENTRIES, attach, valid_key};
use crate::flow::check::BlockCheck;
use crate::flow::interpreter::{Cx, Step};
use crate::flow::model::Assignments;
use crate::yaml::{self, Node};

/// Attaches data to the interaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallData {
    /// Key → expression; keys are SIP header-name tokens (letters, digits, `-._!%*+'~`).
    #[serde(default)]
    pub set: Assignments,
    /// Variable prefixes whose variables are attached under their last part: `match.user_data`
    /// attaches `match.user_data.order` as `order`.
    #[serde(default)]
    pub include: Vec<String>,
}

impl BlockType for CallData {
    const NEXT: Option<&'static str> = Some("Block to run next.");

    fn decoded(&mut self, node: &Node) {
        self.set.read_order(node.get("set"));
    }

    fn check(&self, c: &mut BlockCheck<'_>) {
        if self.set.is_empty() && self.include.is_empty() {
            c.block_err("give `set`, `include` or both");
        }
        if self.set.len() > MAX_ENTRIES {
            c.at(
                "set",
                format!("at most {MAX_ENTRIES} entries are attached to a call"),
            );
        }
        let map = c.node.get("set").cloned();
        for (key, e) in self.set.iter() {
            let pos = c.key_pos(map.as_ref(), key);
            let path = format!("{}.set.{key}", c.path);
            if !valid_key(key) {
                c.err(
                    pos,
                    &path,
                    format!(
                        "`{key}` cannot name a SIP header: 1 to 64 letters, digits and `-._!%*+'~`"
                    ),
                );
            }
            c.expr_at(map.as_ref().and_then(|m| m.get(key)), pos, &path, e);
        }
        let list = c.node.get("include").cloned();
        for (i, prefix) in self.include.iter().enumerate() {
            let pos = list
                .as_ref()
                .and_then(|l| l.items().get(i).map(|n| n.pos))
                .unwrap_or(c.node.pos);
            c.var_name_at(
                pos,
                &format!("{}[{i}]", yaml::join(c.path, "include")),
                prefix,
            );
        }
    }

    async fn run(&self, cx: &mut Cx<'_>) -> Step {
        run(self, cx)
    }
}

fn run(b: &CallData, cx: &mut Cx<'_>) -> Step {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for prefix in &b.include {
        let dotted = format!("{prefix}.");
        for (k, v) in cx.vars.iter() {
            if let Some(key) = k.strip_prefix(&dotted) {
                pairs.push((key.to_string(), v.to_string()));
            }
        }
    }
    for (k, e) in b.set.in_order() {
        let v = cx.eval(e).to_string();
        pairs.push((k.to_string(), v));
    }
    let mut attached = Vec::new();
    let mut dropped = 0usize;
    for (k, v) in pairs {
        if attach(&mut cx.call_data, &k, &v) {
            attached.push(k);
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "Call Data: entries past the limit were not attached"
        );
    }
    let all: Vec<(String, String)> = cx
        .call_data
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in all {
        cx.set(&format!("call_data.{k}"), v);
    }
    cx.outcome(if attached.is_empty() {
        "nothing attached".to_string()
    } else {
        format!("attached {}", attached.join(", "))
    });
    Step::Next
}
