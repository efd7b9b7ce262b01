//! The YAML model of an application: its type, phases and blocks, as flow authors write them.
//! Every struct rejects unknown properties so that a typo is an error with its position; the
//! same types produce the JSON Schema that editors use (`boomerang schema flow`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::check::keys_in_order;
use crate::yaml::Node;

/// Application type, as in Designer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// Inbound calls: offers callbacks, matches call-ins, routes calls.
    Default,
    /// Runs on the customer leg of a callback (outbound, or the customer dialling in).
    Callback,
}

/// Phases, run in this order; Finalize runs after the call ends, however it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Set up variables.
    Initialize,
    /// The automated part.
    SelfService,
    /// Routing to agents.
    AssistedService,
    /// After the call: bookkeeping only.
    Finalize,
}

impl Phase {
    /// Name as written in YAML.
    pub fn key(self) -> &'static str {
        match self {
            Phase::Initialize => "initialize",
            Phase::SelfService => "self_service",
            Phase::AssistedService => "assisted_service",
            Phase::Finalize => "finalize",
        }
    }

    /// All phases in order.
    pub const ALL: [Phase; 4] = [
        Phase::Initialize,
        Phase::SelfService,
        Phase::AssistedService,
        Phase::Finalize,
    ];
}

/// An application file (the schema's root; the loader reads it part by part).
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Name shown in logs and traces.
    pub application: String,
    /// Default (inbound) or Callback.
    #[serde(rename = "type")]
    pub kind: AppKind,
    /// Free text for the author.
    pub description: Option<String>,
    /// User variables and their initial values (text, number or boolean).
    #[serde(default)]
    pub variables: BTreeMap<String, InitialValue>,
    /// Blocks run first.
    #[serde(default)]
    pub initialize: Vec<Block>,
    /// The automated part.
    #[serde(default)]
    pub self_service: Vec<Block>,
    /// Routing to agents.
    #[serde(default)]
    pub assisted_service: Vec<Block>,
    /// Run after the call ended (no prompts can be played).
    #[serde(default)]
    pub finalize: Vec<Block>,
}

/// An initial variable value.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InitialValue {
    /// A flag.
    Bool(bool),
    /// A number.
    Num(f64),
    /// Text.
    Str(String),
}

/// Expression text; YAML numbers and booleans are accepted and read as literals.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(with = "ExprSchema")]
pub struct ExprText(pub String);

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ExprSchema {
    Text(String),
    Num(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(ExprText(s)),
            serde_json::Value::Number(n) => Ok(ExprText(n.to_string())),
            serde_json::Value::Bool(b) => Ok(ExprText(b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected an expression (text, number or boolean), found {other}"
            ))),
        }
    }
}

/// One item of a prompt list: a prompt name, or a map with exactly one of the keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PromptSpec {
    /// A prompt from the library, by file name without `.wav`.
    Name(String),
    /// A computed item.
    Item(PromptItemSpec),
}

/// A computed prompt item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptItemSpec {
    /// Read the value of an expression digit by digit (a number to confirm, a time).
    pub digits: Option<ExprText>,
    /// A prompt whose name an expression gives.
    pub prompt: Option<ExprText>,
    /// Silence, in milliseconds (1 to 60000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 60000))]
    pub silence_ms: Option<u64>,
}

/// The cause of ending a call (SIP response or BYE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// Normal clearing.
    #[default]
    Normal,
    /// Busy (486 before answer).
    Busy,
    /// Unavailable (480 before answer).
    Unavailable,
}

/// Name → expression in the order written (assignments, call data): serde decodes the map,
/// which a JSON map sorts, and the loader reads the order from the YAML node afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub struct Assignments {
    map: BTreeMap<String, ExprText>,
    #[serde(skip)]
    order: Vec<String>,
}

impl Assignments {
    /// Takes the order of the keys from the mapping `node` they were decoded from.
    pub fn read_order(&mut self, node: Option<&Node>) {
        self.order = keys_in_order(node);
    }

    /// The entries in the order written, or in key order when it was not read.
    pub fn in_order(&self) -> Vec<(&str, &ExprText)> {
        if self.order.len() == self.map.len() {
            self.order
                .iter()
                .filter_map(|k| self.map.get_key_value(k))
                .map(|(k, v)| (k.as_str(), v))
                .collect()
        } else {
            self.map.iter().map(|(k, v)| (k.as_str(), v)).collect()
        }
    }
}

impl std::ops::Deref for Assignments {
    type Target = BTreeMap<String, ExprText>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

/// Serde default.
pub(crate) fn yes() -> bool {
    true
}
/// Serde default: the constant `N` (`#[serde(default = "num::<30>")]`), one function for every
/// numeric default of the blocks.
pub(crate) fn num<const N: u32>() -> u32 {
    N
}

pub use super::blocks::assign::Assign;
pub use super::blocks::branch::{Condition, If};
pub use super::blocks::business_hours::BusinessHoursCheck;
pub use super::blocks::call_data::CallData;
pub use super::blocks::call_module::CallModule;
pub use super::blocks::callback_v2::{CallbackV2, ConnectMode, OfferKind};
pub use super::blocks::callback_vq_watermark::CallbackVqWatermark;
pub use super::blocks::click_to_call_in_match::{ClickToCallInMatch, Criterion};
pub use super::blocks::http_request::HttpRequest;
pub use super::blocks::menu::{Menu, MenuOption, MenuOptionSpec};
pub use super::blocks::play_message::PlayMessage;
pub use super::blocks::record::Record;
pub use super::blocks::route_agent::RouteAgent;
pub use super::blocks::route_call::RouteCall;
pub use super::blocks::survey::{Question, Survey};
pub use super::blocks::terminate_call::TerminateCall;
pub use super::blocks::transfer::Transfer;
pub use super::blocks::user_input::UserInput;
pub use super::blocks::{BLOCK_TYPES, Block};

/// The JSON Schema of an application file.
pub fn schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(ApplicationSpec)).unwrap_or_default();
    default_null(&mut schema);
    schema
}

/// States `"default": null` for every optional property whose type admits null: serde leaves an
/// absent `Option` at `None`, so the models need no `#[serde(default)]` line per field.
fn default_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(map) = v else {
        if let Value::Array(items) = v {
            items.iter_mut().for_each(default_null);
        }
        return;
    };
    let required: Vec<String> = match map.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            let nullable = |t: &Value| {
                t == "null" || t.as_array().is_some_and(|a| a.iter().any(|t| t == "null"))
            };
            let may_be_null = prop.get("type").is_some_and(nullable);
            if let Value::Object(p) = prop
                && may_be_null
                && !required.contains(name)
            {
                p.entry("default").or_insert(Value::Null);
            }
        }
    }
    map.values_mut().for_each(default_null);
}
