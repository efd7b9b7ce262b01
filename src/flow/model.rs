//! The YAML model of an application: its type, phases and blocks, as flow authors write them.
//! Every struct rejects unknown properties so that a typo is an error with its position; the
//! same types produce the JSON Schema that editors use (`boomerang schema flow`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

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
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Name shown in logs and traces.
    pub application: String,
    /// Default (inbound) or Callback.
    #[serde(rename = "type")]
    pub kind: AppKind,
    /// Free text for the author.
    #[serde(default)]
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
    #[serde(default)]
    pub digits: Option<ExprText>,
    /// A prompt whose name an expression gives.
    #[serde(default)]
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

/// How the agent and customer are connected when the callback's turn comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// We dial the customer.
    BusinessToCustomer,
    /// The customer dials in (Click-to-Call-In delayed).
    CustomerDialsIn,
}

/// Which kinds of callback an offer proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    /// Keep the caller's place and call back when an agent is free.
    Immediate,
    /// Call back at a time the caller accepts.
    Scheduled,
}

/// A Click-to-Call-In match criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// The code the caller entered.
    AccessCode,
    /// The calling number.
    Ani,
    /// The dialled number.
    Dnis,
}

/// A menu option: a block to go to, or a map that also assigns variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MenuOption {
    /// Id of the block to go to.
    Goto(String),
    /// Assign variables, then go to a block (or continue after the menu).
    Full(MenuOptionSpec),
}

/// A menu option with assignments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuOptionSpec {
    /// Block to go to; continue after the menu when absent.
    #[serde(default)]
    pub goto: Option<String>,
    /// Variables to set (expressions), in the order written.
    #[serde(default)]
    pub assign: BTreeMap<String, ExprText>,
    /// The keys of `assign` in the order written (filled by the loader).
    #[serde(skip)]
    #[schemars(skip)]
    pub assign_order: Vec<String>,
}

impl MenuOptionSpec {
    /// The assignments in the order written.
    pub fn assignments(&self) -> Vec<(&str, &ExprText)> {
        in_order(&self.assign, &self.assign_order)
    }
}

/// A map's entries in the order `order` gives (the YAML order), or in key order without it.
fn in_order<'a>(
    map: &'a BTreeMap<String, ExprText>,
    order: &'a [String],
) -> Vec<(&'a str, &'a ExprText)> {
    if order.len() == map.len() {
        order
            .iter()
            .filter_map(|k| map.get_key_value(k))
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    } else {
        map.iter().map(|(k, v)| (k.as_str(), v)).collect()
    }
}

/// A condition of an If block.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// An expression; the first true one wins.
    pub when: ExprText,
    /// Block to go to.
    pub goto: String,
}

fn yes() -> bool {
    true
}
fn two() -> u32 {
    2
}
fn one() -> u32 {
    1
}
fn sixteen() -> u32 {
    16
}
fn five() -> u32 {
    5
}
fn three() -> u32 {
    3
}
fn hash() -> Option<String> {
    Some("#".into())
}
fn three_hundred() -> u32 {
    300
}
fn sixty() -> u32 {
    60
}
fn callback_var() -> String {
    "callback".into()
}
fn match_var() -> String {
    "match".into()
}
fn access_code_var() -> String {
    "access_code".into()
}
fn both_offers() -> Vec<OfferKind> {
    vec![OfferKind::Immediate, OfferKind::Scheduled]
}

/// Plays prompts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayMessage {
    /// Block id (needed only when another block goes here).
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run next instead of the one below.
    #[serde(default)]
    pub next: Option<String>,
    /// What to play, in order.
    #[schemars(length(min = 1))]
    pub prompts: Vec<PromptSpec>,
    /// A key press stops the prompt and is kept for the next input block (default true).
    #[serde(default = "yes")]
    pub barge_in: bool,
}

/// Collects digits into a variable.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run next on success.
    #[serde(default)]
    pub next: Option<String>,
    /// Variable that receives the digits.
    pub variable: String,
    /// Prompts played before each attempt.
    #[serde(default)]
    pub prompts: Vec<PromptSpec>,
    /// Fewest digits accepted (1 to 32, default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 32))]
    pub min_digits: u32,
    /// Most digits collected (1 to 32, default 16).
    #[serde(default = "sixteen")]
    #[schemars(range(min = 1, max = 32))]
    pub max_digits: u32,
    /// Key that ends the input (default `#`; null for none).
    #[serde(default = "hash")]
    #[schemars(extend("pattern" = "^[0-9*#]$"))]
    pub terminator: Option<String>,
    /// Seconds to wait for the first digit (1 to 60, default 5).
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 60))]
    pub first_digit_timeout_seconds: u32,
    /// Seconds to wait between digits (1 to 30, default 3).
    #[serde(default = "three")]
    #[schemars(range(min = 1, max = 30))]
    pub inter_digit_timeout_seconds: u32,
    /// Further attempts after a no-input or no-match (0 to 9, default 2).
    #[serde(default = "two")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
    /// A regular expression the whole input must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Played after no input, before the retry.
    #[serde(default)]
    pub no_input_prompts: Vec<PromptSpec>,
    /// Played after input that does not match, before the retry.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Block to go to when all attempts failed (default: the next block, with the variable empty).
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// Plays a menu and branches on one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run after an option without `goto`.
    #[serde(default)]
    pub next: Option<String>,
    /// The menu prompt.
    pub prompts: Vec<PromptSpec>,
    /// Key (`0`-`9`, `*`, `#`) → option.
    #[schemars(extend("propertyNames" = {"pattern": "^[0-9*#]$"}, "minProperties" = 1))]
    pub options: BTreeMap<String, MenuOption>,
    /// Further attempts after a no-input or a wrong key (0 to 9, default 2).
    #[serde(default = "two")]
    #[schemars(range(min = 0, max = 9))]
    pub retries: u32,
    /// Seconds to wait for a key after the prompt (1 to 60, default 5).
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: u32,
    /// Played after no input.
    #[serde(default)]
    pub no_input_prompts: Vec<PromptSpec>,
    /// Played after a key with no option.
    #[serde(default)]
    pub no_match_prompts: Vec<PromptSpec>,
    /// Block to go to when all attempts failed (default: the next block).
    #[serde(default)]
    pub on_failure: Option<String>,
}

/// Sets variables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run next.
    #[serde(default)]
    pub next: Option<String>,
    /// Variable → expression, evaluated in the order written.
    #[schemars(extend("minProperties" = 1))]
    pub set: BTreeMap<String, ExprText>,
    /// The keys of `set` in the order written (filled by the loader).
    #[serde(skip)]
    #[schemars(skip)]
    pub order: Vec<String>,
}

impl Assign {
    /// The assignments in the order written.
    pub fn assignments(&self) -> Vec<(&str, &ExprText)> {
        in_order(&self.set, &self.order)
    }
}

/// Segmentation: the first true condition wins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct If {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when no condition holds and `otherwise` is absent.
    #[serde(default)]
    pub next: Option<String>,
    /// Conditions in order.
    #[schemars(length(min = 1))]
    pub conditions: Vec<Condition>,
    /// Block when none holds.
    #[serde(default)]
    pub otherwise: Option<String>,
}

/// Branches on business hours: a queue's, or a named set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursCheck {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    #[serde(default)]
    pub next: Option<String>,
    /// Use this queue's hours.
    #[serde(default)]
    pub queue: Option<String>,
    /// Or a named business-hours set.
    #[serde(default)]
    pub hours: Option<String>,
    /// Block when open on a regular day.
    #[serde(default)]
    pub open: Option<String>,
    /// Block when closed.
    #[serde(default)]
    pub closed: Option<String>,
    /// Block when open on a special (dated) day; defaults to `open`.
    #[serde(default)]
    pub special: Option<String>,
}

/// Callback V2: offers a callback (Default application) or drives the customer side of one
/// (Callback application).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackV2 {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    #[serde(default)]
    pub next: Option<String>,
    /// The callback virtual queue (its CALLBACK_SETTINGS row). In a Callback application the
    /// queue comes from the callback being served and this may be left out.
    #[serde(default)]
    pub queue: Option<String>,
    /// The inbound queue whose EWT decides the offer (default: `queue` without `_CB`).
    #[serde(default)]
    pub inbound_queue: Option<String>,
    /// Offer immediate and/or scheduled callbacks (default both).
    #[serde(default = "both_offers")]
    #[schemars(length(min = 1))]
    pub offer: Vec<OfferKind>,
    /// The offer prompt: 1 immediate, 2 scheduled, 3 keep waiting (keys as offered).
    #[serde(default)]
    pub offer_prompts: Vec<PromptSpec>,
    /// Played instead of `offer_prompts` when only the immediate callback can be offered (no
    /// free slot), so the caller is not told about a key that does nothing.
    #[serde(default)]
    pub immediate_only_prompts: Vec<PromptSpec>,
    /// Played instead of `offer_prompts` when only the scheduled callback can be offered
    /// (immediate disabled or outside its offer hours).
    #[serde(default)]
    pub scheduled_only_prompts: Vec<PromptSpec>,
    /// Read before the proposed time; the time follows as digits (HH MM, queue time zone).
    #[serde(default)]
    pub scheduled_prompts: Vec<PromptSpec>,
    /// Asks the caller for the time they want, as HHMM (today, or tomorrow when already past)
    /// or DHHMM (D days from today), then `#`; the nearest free slot from then is proposed.
    /// Without it the nearest free slot from now is proposed.
    #[serde(default)]
    pub choose_time_prompts: Vec<PromptSpec>,
    /// Played after the proposed time: 1 accepts it, 2 declines.
    #[serde(default)]
    pub accept_time_prompts: Vec<PromptSpec>,
    /// Confirm the number: 1 keeps the caller's number, 2 enters another.
    #[serde(default)]
    pub confirm_number_prompts: Vec<PromptSpec>,
    /// Asks for another number.
    #[serde(default)]
    pub enter_number_prompts: Vec<PromptSpec>,
    /// Played once the callback is booked.
    #[serde(default)]
    pub booked_prompts: Vec<PromptSpec>,
    /// Who places the call when an agent is ready (default: the queue's call direction).
    #[serde(default)]
    pub connect: Option<ConnectMode>,
    /// Initial routing priority of the callback.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Prefix of the result variables (`callback.id`, `callback.accepted`, …).
    #[serde(default = "callback_var")]
    pub result: String,
    /// Callback application: played to the customer when the callback call starts.
    #[serde(default)]
    pub intro_prompts: Vec<PromptSpec>,
    /// Callback application: key the customer presses to be connected (none: connect at once).
    #[serde(default)]
    #[schemars(extend("pattern" = "^[0-9*#]$"))]
    pub confirm_digit: Option<String>,
    /// Attempts to get the confirm digit or an offer choice (1 to 9, default 2).
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 9))]
    pub attempts: u32,
    /// Block when a callback was booked (Default) or the customer accepted (Callback).
    #[serde(default)]
    pub on_accepted: Option<String>,
    /// Block when the caller declined.
    #[serde(default)]
    pub on_declined: Option<String>,
    /// Block when no callback could be offered (closed, EWT below threshold, no slot).
    #[serde(default)]
    pub on_not_offered: Option<String>,
}

/// Click-to-Call-In Match: recognises a caller who asked for a number to call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickToCallInMatch {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    #[serde(default)]
    pub next: Option<String>,
    /// What to compare (at least one).
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub criteria: Vec<Criterion>,
    /// Variable holding the code a User Input block collected.
    #[serde(default = "access_code_var")]
    pub access_code_variable: String,
    /// Prefix of the result variables (`match.matched`, `match.queue`, …).
    #[serde(default = "match_var")]
    pub result: String,
    /// Block when matched.
    #[serde(default)]
    pub on_matched: Option<String>,
    /// Block when not matched.
    #[serde(default)]
    pub on_no_match: Option<String>,
    /// Block when this caller made too many wrong attempts (default: `on_no_match`).
    #[serde(default)]
    pub on_blocked: Option<String>,
    /// Block when the request matched but has nowhere to route the call (it is kept for a
    /// later call; default: `on_no_match`); play an apology there.
    #[serde(default)]
    pub on_unroutable: Option<String>,
}

/// Route Call: queue the caller for an agent and connect them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCall {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// Block to run when the taken branch has no target.
    #[serde(default)]
    pub next: Option<String>,
    /// Virtual queue by name.
    #[serde(default)]
    pub queue: Option<String>,
    /// Or an expression giving it (e.g. `match.queue`).
    #[serde(default)]
    pub queue_from: Option<ExprText>,
    /// Extra skill requirement of this call (checked at load).
    #[serde(default)]
    pub skill_expression: Option<String>,
    /// Or an expression giving it (e.g. `match.skill_expression`); an empty or invalid value
    /// adds no requirement (logged).
    #[serde(default)]
    pub skill_expression_from: Option<ExprText>,
    /// Priority (expression; default 0).
    #[serde(default)]
    pub priority: Option<ExprText>,
    /// Seconds to wait for an agent (1 to 86400, default 300).
    #[serde(default = "three_hundred")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: u32,
    /// Looped while waiting.
    #[serde(default)]
    pub hold_music: Option<String>,
    /// Announce the estimated wait.
    #[serde(default)]
    pub announce_ewt: bool,
    /// Announce the position in queue.
    #[serde(default)]
    pub announce_position: bool,
    /// Seconds between announcements (10 to 3600, default 60).
    #[serde(default = "sixty")]
    #[schemars(range(min = 10, max = 3600))]
    pub announce_every_seconds: u32,
    /// Block after the agent conversation ended (default: end the call).
    #[serde(default)]
    pub on_connected: Option<String>,
    /// Block when no agent was found in time.
    #[serde(default)]
    pub on_timeout: Option<String>,
}

/// Ends the call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminateCall {
    /// Block id.
    #[serde(default)]
    pub id: Option<String>,
    /// How the call ends.
    #[serde(default)]
    pub cause: EndCause,
}

/// A block; `type` selects it.
// Blocks are built once when a flow loads and read in place, so their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plays prompts.
    PlayMessage(PlayMessage),
    /// Collects digits.
    UserInput(UserInput),
    /// A menu.
    Menu(Menu),
    /// Sets variables.
    Assign(Assign),
    /// Segmentation.
    If(If),
    /// Business hours branch.
    BusinessHours(BusinessHoursCheck),
    /// Callback offer / callback customer side.
    CallbackV2(CallbackV2),
    /// Click-to-Call-In Match.
    ClickToCallInMatch(ClickToCallInMatch),
    /// Route to an agent.
    RouteCall(RouteCall),
    /// End the call.
    TerminateCall(TerminateCall),
}

/// Block type names as written in YAML.
pub const BLOCK_TYPES: &[&str] = &[
    "play_message",
    "user_input",
    "menu",
    "assign",
    "if",
    "business_hours",
    "callback_v2",
    "click_to_call_in_match",
    "route_call",
    "terminate_call",
];

impl Block {
    /// The YAML type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Block::PlayMessage(_) => "play_message",
            Block::UserInput(_) => "user_input",
            Block::Menu(_) => "menu",
            Block::Assign(_) => "assign",
            Block::If(_) => "if",
            Block::BusinessHours(_) => "business_hours",
            Block::CallbackV2(_) => "callback_v2",
            Block::ClickToCallInMatch(_) => "click_to_call_in_match",
            Block::RouteCall(_) => "route_call",
            Block::TerminateCall(_) => "terminate_call",
        }
    }

    /// The author's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            Block::PlayMessage(b) => b.id.as_deref(),
            Block::UserInput(b) => b.id.as_deref(),
            Block::Menu(b) => b.id.as_deref(),
            Block::Assign(b) => b.id.as_deref(),
            Block::If(b) => b.id.as_deref(),
            Block::BusinessHours(b) => b.id.as_deref(),
            Block::CallbackV2(b) => b.id.as_deref(),
            Block::ClickToCallInMatch(b) => b.id.as_deref(),
            Block::RouteCall(b) => b.id.as_deref(),
            Block::TerminateCall(b) => b.id.as_deref(),
        }
    }

    /// The explicit `next`, if any.
    pub fn next(&self) -> Option<&str> {
        match self {
            Block::PlayMessage(b) => b.next.as_deref(),
            Block::UserInput(b) => b.next.as_deref(),
            Block::Menu(b) => b.next.as_deref(),
            Block::Assign(b) => b.next.as_deref(),
            Block::If(b) => b.next.as_deref(),
            Block::BusinessHours(b) => b.next.as_deref(),
            Block::CallbackV2(b) => b.next.as_deref(),
            Block::ClickToCallInMatch(b) => b.next.as_deref(),
            Block::RouteCall(b) => b.next.as_deref(),
            Block::TerminateCall(_) => None,
        }
    }

    /// Branch targets with the YAML key that names each, for validation and graph checks.
    pub fn branches(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |key: &str, t: &Option<String>| {
            if let Some(t) = t {
                out.push((key.to_string(), t.clone()));
            }
        };
        match self {
            Block::UserInput(b) => add("on_failure", &b.on_failure),
            Block::Menu(b) => {
                add("on_failure", &b.on_failure);
                for (k, o) in &b.options {
                    match o {
                        MenuOption::Goto(t) => add(&format!("options.{k}"), &Some(t.clone())),
                        MenuOption::Full(f) => add(&format!("options.{k}.goto"), &f.goto),
                    }
                }
            }
            Block::If(b) => {
                for (i, c) in b.conditions.iter().enumerate() {
                    add(&format!("conditions[{i}].goto"), &Some(c.goto.clone()));
                }
                add("otherwise", &b.otherwise);
            }
            Block::BusinessHours(b) => {
                add("open", &b.open);
                add("closed", &b.closed);
                add("special", &b.special);
            }
            Block::CallbackV2(b) => {
                add("on_accepted", &b.on_accepted);
                add("on_declined", &b.on_declined);
                add("on_not_offered", &b.on_not_offered);
            }
            Block::ClickToCallInMatch(b) => {
                add("on_matched", &b.on_matched);
                add("on_no_match", &b.on_no_match);
                add("on_blocked", &b.on_blocked);
                add("on_unroutable", &b.on_unroutable);
            }
            Block::RouteCall(b) => {
                add("on_connected", &b.on_connected);
                add("on_timeout", &b.on_timeout);
            }
            Block::PlayMessage(_) | Block::Assign(_) | Block::TerminateCall(_) => {}
        }
        out
    }

    /// Whether the block waits for the caller (so a loop through it is not a busy loop).
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Block::UserInput(_) | Block::Menu(_) | Block::CallbackV2(_) | Block::RouteCall(_)
        )
    }
}

/// The JSON Schema of an application file.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ApplicationSpec)).unwrap_or_default()
}
