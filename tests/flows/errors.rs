//! Scenarios: a flow author makes mistakes and `load_str` reports every one of them at once,
//! each with the exact line, column, YAML path and message (what `boomerang check-flows`
//! prints), checked against the shipped configuration and prompt library.

use std::collections::BTreeSet;
use std::path::Path;

use boomerang::config::Config;
use boomerang::flow::{self, LoadContext};

/// Loads `text` as `flow.yaml`; returns each problem as `file:line:col: path: message`.
fn problems(text: &str) -> Vec<String> {
    let config = Config::load(Path::new("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names: BTreeSet<String> = flow::load::prompt_names(Path::new("prompts"));
    assert!(names.contains("welcome"), "prompt library not found");
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    match flow::load_str(Path::new("flow.yaml"), text, &ctx) {
        Ok(f) => panic!("`{}` loaded without problems", f.name),
        Err(e) => {
            assert_eq!(e.file, Path::new("flow.yaml"));
            assert!(
                e.to_string()
                    .ends_with(&format!("flow.yaml: {} problem(s)", e.diagnostics.len())),
                "{e}"
            );
            e.diagnostics.iter().map(|d| d.to_string()).collect()
        }
    }
}

fn loads(text: &str) -> flow::Flow {
    let config = Config::load(Path::new("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names = flow::load::prompt_names(Path::new("prompts"));
    let ctx = LoadContext {
        config: &config,
        prompts: Some(&names),
    };
    flow::load_str(Path::new("flow.yaml"), text, &ctx).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_yaml_syntax_error_is_located_and_rendered_with_a_caret() {
    let text = "application: t
type: default
self_service:
  - type: play_message
     prompts: [welcome]
";
    assert_eq!(
        problems(text),
        ["flow.yaml:5:13: YAML syntax error: mapping values are not allowed in this context"]
    );
    let config = Config::load(Path::new("boomerang.yaml")).unwrap();
    let ctx = LoadContext {
        config: &config,
        prompts: None,
    };
    let e = flow::load_str(Path::new("flow.yaml"), text, &ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "flow.yaml:5:13: YAML syntax error: mapping values are not allowed in this context
5 |      prompts: [welcome]
  |             ^
flow.yaml: 1 problem(s)"
    );
}

#[test]
fn tabs_and_duplicate_keys_are_syntax_errors() {
    assert_eq!(
        problems("application: t\ntype: default\nself_service:\n\t- type: terminate_call\n"),
        [
            "flow.yaml:4:2: YAML syntax error: tabs disallowed within this context (block indentation)"
        ]
    );
    assert_eq!(
        problems(
            "application: t
type: default
self_service:
  - type: play_message
    prompts: [welcome]
    prompts: [goodbye]
"
        ),
        ["flow.yaml:6:5: prompts: duplicate key `prompts`"]
    );
}

#[test]
fn structure_errors_are_all_reported_one_per_block() {
    let text = "application: t
type: default
self_service:
  - type: play_mesage
    prompts: [welcome]
  - type: terminat_call
  - type: menu
    prompts: [welcome]
    options: {1: a}
    promtps: [x]
  - type: user_input
    variable: code
    min_digits: four
  - type: user_input
    prompts: [welcome]
  - type: terminate_call
    id: a
";
    let all = "expected one of play_message, user_input, menu, assign, if, business_hours, \
               call_data, call_module, callback_v2, callback_vq_watermark, click_to_call_in_match, \
               http_request, record, route_agent, route_call, survey, terminate_call, transfer";
    assert_eq!(
        problems(text),
        [
            format!(
                "flow.yaml:4:11: self_service[0].type: unknown block type `play_mesage` \
                 (did you mean `play_message`?); {all}"
            ),
            format!(
                "flow.yaml:6:11: self_service[1].type: unknown block type `terminat_call` \
                 (did you mean `terminate_call`?); {all}"
            ),
            // An unknown property is shown at its key.
            "flow.yaml:10:5: self_service[2].promtps: unknown property `promtps` (did you mean \
             `prompts`?); expected one of id, next, prompts, options, retries, timeout_seconds, \
             no_input_prompts, no_match_prompts, on_failure"
                .to_string(),
            // A wrong type at its value.
            "flow.yaml:13:17: self_service[3].min_digits: invalid type: string \"four\", \
             expected u32"
                .to_string(),
            // A missing property at the block.
            "flow.yaml:14:5: self_service[4]: missing field `variable`".to_string(),
        ]
    );
}

#[test]
fn unknown_properties_inside_blocks_are_shown_at_their_key_with_a_suggestion() {
    let text = "application: t
type: default
self_service:
  - type: if
    conditions:
      - when: x == 1
        goto: bye
        otherwise: bye
  - type: play_message
    prompts: [{digit: ani}]
  - type: terminate_call
    id: bye
    cuase: busy
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:8:9: self_service[0].conditions[0].otherwise: unknown property `otherwise`; expected one of when, goto",
            "flow.yaml:10:15: self_service[1].prompts[0]: a prompt is a prompt name, or a mapping with one of `digits`, `prompt`, `silence_ms`",
            "flow.yaml:13:5: self_service[2].cuase: unknown property `cuase` (did you mean `cause`?); expected one of id, cause",
        ]
    );
}

#[test]
fn root_problems_name_the_property() {
    let text = "type: inbound
colour: blue
variables:
  1x: 2
  ok: [1]
self_service:
  - type: terminate_call
  - terminate_call
  - type: 3
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:1:1: application: `application` is required",
            "flow.yaml:1:7: type: unknown variant `inbound`, expected `default` or `callback`",
            "flow.yaml:2:1: colour: unknown property `colour`; expected one of application, \
             type, description, variables, initialize, self_service, assisted_service, finalize",
            "flow.yaml:5:7: variables.ok: an initial value is text, a number or a boolean",
            "flow.yaml:8:5: self_service[1]: a block is a mapping with a `type`, not a string",
            "flow.yaml:9:11: self_service[2].type: `type` is a block type name",
        ]
    );
    assert_eq!(
        problems(
            "application: t\ntype: default\nvariables:\n  1x: 2\nself_service:\n  - type: terminate_call\n"
        ),
        [
            "flow.yaml:4:3: variables.1x: a variable name is letters, digits, `_` and `.`, starting with a letter"
        ]
    );
    assert_eq!(
        problems("application: t\ntype: default\nfinalize:\n  - type: assign\n    set: {x: 1}\n"),
        ["flow.yaml:1:1: the application has no blocks outside `finalize`"]
    );
}

#[test]
fn dangling_targets_and_duplicate_ids() {
    let text = "application: t
type: default
self_service:
  - type: user_input
    id: code
    variable: code
    on_failure: nowhere
    next: cod
  - type: if
    conditions:
      - when: code == '1'
        goto: menu1
    otherwise: bye
  - type: menu
    id: code
    prompts: [welcome]
    options:
      1: bye
      2: {goto: byee}
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:7:17: self_service[0].on_failure: no block has id `nowhere`",
            "flow.yaml:8:11: self_service[0].next: no block has id `cod` (did you mean `code`?)",
            "flow.yaml:12:15: self_service[1].conditions[0].goto: no block has id `menu1`",
            "flow.yaml:15:9: self_service[2].id: block id `code` is used twice",
            "flow.yaml:19:17: self_service[2].options.2.goto: no block has id `byee` (did you mean `bye`?)",
        ]
    );
}

#[test]
fn unreachable_blocks_and_busy_loops() {
    // The `if` always branches (it has `otherwise`), so the block below it never runs; `a`
    // falls through to `b`, which jumps back to `a` without ever waiting for the caller.
    let text = "application: t
type: default
self_service:
  - type: if
    conditions:
      - when: x == 1
        goto: a
    otherwise: b
  - type: play_message
    prompts: [welcome]
  - type: play_message
    id: a
    prompts: [welcome]
  - type: assign
    id: b
    set: {y: 1}
    next: a
  - type: terminate_call
    id: end
finalize:
  - type: assign
    id: f1
    set: {n: n + 1}
  - type: if
    conditions: [{when: n < 3, goto: f1}]
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:9:5: self_service[1]: block `play_message` can never run: nothing leads to it",
            "flow.yaml:11:5: self_service[2]: blocks a → b form a loop that never waits for the caller",
            "flow.yaml:18:5: self_service[4]: block `end` can never run: nothing leads to it",
            "flow.yaml:21:5: finalize[0]: blocks f1 → if form a loop that never waits for the caller",
        ]
    );
}

#[test]
fn an_assign_if_loop_is_refused_but_a_loop_through_user_input_is_accepted() {
    let busy = "application: t
type: default
variables:
  n: 0
self_service:
  - type: assign
    id: count
    set:
      n: n + 1
  - type: if
    id: again
    conditions:
      - when: n < 3
        goto: count
  - type: terminate_call
";
    assert_eq!(
        problems(busy),
        [
            "flow.yaml:6:5: self_service[0]: blocks count → again form a loop that never waits for the caller"
        ]
    );
    let waits = "application: t
type: default
variables:
  n: 0
self_service:
  - type: user_input
    id: ask
    variable: code
    prompts: [enter-access-code]
  - type: assign
    set:
      n: n + 1
  - type: if
    conditions:
      - when: n < 3 && code != '1234'
        goto: ask
  - type: terminate_call
";
    let f = loads(waits);
    assert_eq!(f.blocks.len(), 4);
    assert_eq!(f.index_of("ask"), Some(0));
}

#[test]
fn graph_problems_are_reported_alongside_other_problems() {
    // A prompt typo does not hide the unreachable block, and the jump into finalize is named.
    let text = "application: t
type: default
self_service:
  - type: play_message
    prompts: [welcom]
    next: fin
  - type: play_message
    id: orphan
    prompts: [goodbye]
  - type: terminate_call
    id: bye
finalize:
  - type: assign
    id: fin
    set: {x: 1}
  - type: if
    conditions: [{when: x == 1, goto: bye}]
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:15: self_service[0].prompts[0]: no prompt `welcom` in the prompt directory (did you mean `welcome`?)",
            "flow.yaml:6:11: self_service[0].next: block `fin` is in `finalize`, which runs by itself once the call has ended: end the call with terminate_call",
            "flow.yaml:7:5: self_service[1]: block `orphan` can never run: nothing leads to it",
            "flow.yaml:10:5: self_service[2]: block `bye` can never run: nothing leads to it",
            "flow.yaml:17:39: finalize[1].conditions[0].goto: block `bye` is not in `finalize`: finalize blocks can only go to finalize blocks",
        ]
    );
}

#[test]
fn unknown_queues_prompts_hours_and_bad_skill_expressions() {
    let text = "application: t
type: default
self_service:
  - type: play_message
    prompts: [welcom, goodbye, {prompt: \"'x' +\"}]
  - type: route_call
    queue: Sales_Q
    skill_expression: \"Sales >= \"
    hold_music: hold
  - type: route_call
    queue: Sales_VQ
    skill_expression: Sales > 3 & & English
    priority: \"1 +* 2\"
  - type: business_hours
    hours: sales_hour
  - type: business_hours
    queue: Sales_VQ
    hours: always
  - type: terminate_call
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:15: self_service[0].prompts[0]: no prompt `welcom` in the prompt directory (did you mean `welcome`?)",
            // Offsets inside a quoted expression count from the character after the quote.
            "flow.yaml:5:47: self_service[0].prompts[2].prompt: expression: the expression ends too early",
            "flow.yaml:7:12: self_service[1].queue: no virtual queue `Sales_Q` in the configuration (did you mean `Sales_VQ`?)",
            "flow.yaml:8:33: self_service[1].skill_expression: skill expression: expected a level (0 to 10) after the operator",
            "flow.yaml:9:17: self_service[1].hold_music: no prompt `hold` in the prompt directory",
            // Unquoted: the second `&`, 13th character of the value.
            "flow.yaml:12:35: self_service[2].skill_expression: skill expression: expected a skill or `(`, found `&`",
            "flow.yaml:13:19: self_service[2].priority: expression: unexpected `*`",
            "flow.yaml:15:12: self_service[3].hours: no business hours named `sales_hour` (did you mean `sales_hours`?)",
            "flow.yaml:16:5: self_service[4]: give exactly one of `queue` and `hours`",
        ]
    );
}

#[test]
fn bad_expressions_in_assign_and_if_point_inside_the_text() {
    let text = "application: t
type: default
self_service:
  - type: assign
    set:
      a: \"x = 1\"
      b: x = 1
      c: 'len(x'
  - type: if
    conditions:
      - when: a == 1 && b === 2
        goto: bye
      - when: \"lenn(a) > 1\"
        goto: bye
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:6:13: self_service[0].set.a: expression: use `==` to compare",
            "flow.yaml:7:12: self_service[0].set.b: expression: use `==` to compare",
            "flow.yaml:8:16: self_service[0].set.c: expression: expected `,` or `)`",
            "flow.yaml:11:29: self_service[1].conditions[0].when: expression: use `==` to compare",
            "flow.yaml:13:16: self_service[1].conditions[1].when: expression: unknown function `lenn` (known: len, starts_with, ends_with, contains, is_empty, number, text)",
        ]
    );
}

#[test]
fn out_of_range_values_and_min_above_max() {
    let text = "application: t
type: default
self_service:
  - type: user_input
    variable: code
    min_digits: 0
    max_digits: 33
    first_digit_timeout_seconds: 61
    inter_digit_timeout_seconds: 0
    retries: 10
    terminator: \"##\"
  - type: user_input
    variable: code
    min_digits: 6
    max_digits: 4
    pattern: \"[0-9\"
  - type: menu
    prompts: [welcome]
    options: {1: bye}
    retries: 11
    timeout_seconds: 0
  - type: route_call
    queue: Sales_VQ
    timeout_seconds: 0
    announce_every_seconds: 5
  - type: play_message
    prompts: [{digits: ani, silence_ms: 10}, {silence_ms: 0}]
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:6:17: self_service[0].min_digits: min_digits must be between 1 and 32, not 0",
            "flow.yaml:7:17: self_service[0].max_digits: max_digits must be between 1 and 32, not 33",
            "flow.yaml:8:34: self_service[0].first_digit_timeout_seconds: first_digit_timeout_seconds must be between 1 and 60, not 61",
            "flow.yaml:9:34: self_service[0].inter_digit_timeout_seconds: inter_digit_timeout_seconds must be between 1 and 30, not 0",
            "flow.yaml:10:14: self_service[0].retries: retries must be between 0 and 9, not 10",
            "flow.yaml:11:17: self_service[0].terminator: one key: 0-9, * or #",
            "flow.yaml:14:17: self_service[1].min_digits: min_digits (6) is above max_digits (4)",
            "flow.yaml:16:14: self_service[1].pattern: not a valid regular expression: error: unclosed character class",
            "flow.yaml:20:14: self_service[2].retries: retries must be between 0 and 9, not 11",
            "flow.yaml:21:22: self_service[2].timeout_seconds: timeout_seconds must be between 1 and 60, not 0",
            "flow.yaml:24:22: self_service[3].timeout_seconds: timeout_seconds must be between 1 and 86400, not 0",
            "flow.yaml:25:29: self_service[3].announce_every_seconds: announce_every_seconds must be between 10 and 3600, not 5",
            "flow.yaml:27:15: self_service[4].prompts[0]: a prompt item has exactly one of `digits`, `prompt`, `silence_ms`",
            "flow.yaml:27:59: self_service[4].prompts[1].silence_ms: silence_ms must be between 1 and 60000",
        ]
    );
}

#[test]
fn callback_only_properties_in_a_default_application() {
    let text = "application: t
type: default
self_service:
  - type: callback_v2
    queue: Sales_VQ_CB
    offer_prompts: [offer-callback]
    confirm_digit: \"1\"
    intro_prompts: [callback-intro]
    attempts: 0
  - type: callback_v2
    inbound_queue: Sales
  - type: terminate_call
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:7:5: self_service[0].confirm_digit: `confirm_digit` applies only in a Callback application",
            "flow.yaml:8:5: self_service[0].intro_prompts: `intro_prompts` applies only in a Callback application",
            "flow.yaml:9:15: self_service[0].attempts: attempts must be between 1 and 9, not 0",
            "flow.yaml:10:5: self_service[1]: `queue` (the callback virtual queue) is required",
            "flow.yaml:10:5: self_service[1]: `offer_prompts` is required: the caller must hear the offer",
            "flow.yaml:11:20: self_service[1].inbound_queue: no virtual queue `Sales` in the configuration",
        ]
    );
}

#[test]
fn default_only_properties_and_call_in_match_in_a_callback_application() {
    let text = "application: t
type: callback
initialize:
  - type: callback_v2
    confirm_digit: \"12\"
    intro_prompts: [callback-intro]
    offer: [immediate]
    offer_prompts: [offer-callback]
    on_not_offered: bye
  - type: click_to_call_in_match
    criteria: [ani]
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:5:20: initialize[0].confirm_digit: one key: 0-9, * or #",
            "flow.yaml:7:5: initialize[0].offer: `offer` applies only in a Default application",
            "flow.yaml:8:5: initialize[0].offer_prompts: `offer_prompts` applies only in a Default application",
            "flow.yaml:9:5: initialize[0].on_not_offered: `on_not_offered` applies only in a Default application",
            "flow.yaml:10:11: initialize[1].type: click_to_call_in_match runs on inbound calls: use it in a Default application",
        ]
    );
}

#[test]
fn only_assign_and_if_run_in_finalize() {
    let text = "application: t
type: default
self_service:
  - type: terminate_call
finalize:
  - type: play_message
    prompts: [goodbye]
  - type: assign
    set:
      x: 1
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:6:11: finalize[0].type: `play_message` cannot run in `finalize`: the call has ended (use assign or if)"
        ]
    );
}

#[test]
fn menu_keys_options_and_assignments() {
    let text = "application: t
type: default
self_service:
  - type: menu
    prompts: [welcome]
    options:
      1: bye
      12: bye
      \"*\": bye
      \"#\": bye
      a: bye
  - type: menu
    prompts: [welcome]
    options:
      1: {goto: bye, asign: {x: 1}}
  - type: menu
    prompts: [welcome]
    options:
      1: {goto: bye, assign: {x: 1 +}}
      2: {assign: {9x: 1}}
  - type: menu
    prompts: [welcome]
    options: {}
  - type: terminate_call
    id: bye
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:8:7: self_service[0].options.12: a menu option is one key: 0-9, * or #",
            "flow.yaml:11:7: self_service[0].options.a: a menu option is one key: 0-9, * or #",
            "flow.yaml:15:10: self_service[1].options.1: a menu option is a block id, or a mapping with `goto` and/or `assign`",
            "flow.yaml:19:37: self_service[2].options.1.assign.x: expression: the expression ends too early",
            "flow.yaml:20:20: self_service[2].options.2.assign.9x: `9x` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
            "flow.yaml:23:14: self_service[3].options: a menu needs at least one option",
        ]
    );
}

#[test]
fn route_call_and_terminate_call_shapes() {
    // `bye` does not decode (bad cause), yet references to it are not reported as dangling.
    let text = "application: t
type: default
self_service:
  - type: route_call
    on_timeout: bye
  - type: route_call
    queue: Sales_VQ
    queue_from: match.queue
    on_timeout: bye
  - type: click_to_call_in_match
    criteria: [ani, ani]
    result: 2match
    on_matched: bye
    on_no_match: bye
  - type: terminate_call
    id: bye
    cause: hangup
";
    assert_eq!(
        problems(text),
        [
            "flow.yaml:4:5: self_service[0]: give exactly one of `queue` and `queue_from`",
            "flow.yaml:6:5: self_service[1]: give exactly one of `queue` and `queue_from`",
            "flow.yaml:11:15: self_service[2].criteria: a criterion is listed twice",
            "flow.yaml:12:13: self_service[2].result: `2match` is not a variable name (letters, digits, `_` and `.`, starting with a letter)",
            "flow.yaml:17:12: self_service[3].cause: unknown variant `hangup`, expected one of `normal`, `busy`, `unavailable`",
        ]
    );
}

#[test]
fn the_shipped_flows_load_cleanly() {
    for name in [
        "click-to-call-in.yaml",
        "delayed-call-in.yaml",
        "in-queue-callback.yaml",
        "outbound-callback.yaml",
        "scheduled-callback.yaml",
    ] {
        let path = Path::new("ivr-flows").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=flow.schema.json\n"),
            "{name} lacks the schema modeline"
        );
        let f = loads(&text);
        assert_eq!(f.name, name.trim_end_matches(".yaml"));
    }
}
