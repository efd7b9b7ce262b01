//! Scenarios: a flow author runs the `boomerang` binary to check flows, print the flow schema
//! and check the configuration; exit codes and output are what scripts and editors rely on.

use std::path::Path;
use std::process::{Command, Output};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn boomerang(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(args)
        .current_dir(REPO)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_flows_accepts_the_shipped_flows_one_ok_line_per_file() {
    let out = boomerang(&["check-flows"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ivr-flows/click-to-call-in.yaml: ok (default application `click-to-call-in`, 9 blocks)
ivr-flows/delayed-call-in.yaml: ok (callback application `delayed-call-in`, 4 blocks)
ivr-flows/in-queue-callback.yaml: ok (default application `in-queue-callback`, 8 blocks)
ivr-flows/outbound-callback.yaml: ok (callback application `outbound-callback`, 4 blocks)
ivr-flows/scheduled-callback.yaml: ok (default application `scheduled-callback`, 4 blocks)
"
    );
    assert_eq!(text(&out.stderr), "");
    // Naming a file checks just that file.
    let out = boomerang(&["check-flows", "ivr-flows/outbound-callback.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "ivr-flows/outbound-callback.yaml: ok (callback application `outbound-callback`, 4 blocks)\n"
    );
}

#[test]
fn check_flows_on_a_directory_with_a_broken_flow_fails_with_positions_and_carets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(REPO).join("ivr-flows/outbound-callback.yaml"),
        dir.path().join("good.yaml"),
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "application: bad
type: default
self_service:
  - type: play_message
    prompts: [welcom]
  - type: route_call
    queue: Sales_VQ
    timeout_seconds: 0
    on_timeout: byee
  - type: terminate_call
    id: bye
",
    )
    .unwrap();
    let out = boomerang(&["check-flows", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let b = bad.display().to_string();
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: ok (callback application `outbound-callback`, 4 blocks)\n",
            dir.path().join("good.yaml").display()
        )
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "{b}:5:15: self_service[0].prompts[0]: no prompt `welcom` in the prompt directory (did you mean `welcome`?)
5 |     prompts: [welcom]
  |               ^
{b}:8:22: self_service[1].timeout_seconds: timeout_seconds must be between 1 and 86400, not 0
8 |     timeout_seconds: 0
  |                      ^
{b}:9:17: self_service[1].on_timeout: no block has id `byee` (did you mean `bye`?)
9 |     on_timeout: byee
  |                 ^
{b}: 3 problem(s)
1 file(s) with problems, 1 ok
"
        )
    );
}

#[test]
fn check_flows_with_a_missing_config_is_an_error_not_a_panic() {
    let out = boomerang(&["check-flows", "--config", "/nonexistent/boomerang.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: loading /nonexistent/boomerang.yaml"),
        "{err}"
    );
}

#[test]
fn schema_flow_prints_the_json_schema_of_an_application() {
    let out = boomerang(&["schema", "flow"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema, boomerang::flow::model::schema());
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "application",
        "type",
        "description",
        "variables",
        "initialize",
        "self_service",
        "assisted_service",
        "finalize",
    ] {
        assert!(props.contains_key(key), "no property {key}");
    }
    assert_eq!(
        schema["required"],
        serde_json::json!(["application", "type"])
    );
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    // Every block type is one alternative of the Block definition, tagged by `type`.
    let alternatives = schema["$defs"]["Block"]["oneOf"].as_array().unwrap();
    let mut types: Vec<&str> = alternatives
        .iter()
        .map(|a| a["properties"]["type"]["const"].as_str().unwrap())
        .collect();
    types.sort();
    let mut expected = boomerang::flow::model::BLOCK_TYPES.to_vec();
    expected.sort();
    assert_eq!(types, expected);
    assert_eq!(types.len(), 18);
    for a in alternatives {
        assert_eq!(a["additionalProperties"], serde_json::json!(false), "{a}");
    }
    // Defaults are visible to editors.
    let user_input = alternatives
        .iter()
        .find(|a| a["properties"]["type"]["const"] == "user_input")
        .unwrap();
    assert_eq!(user_input["properties"]["max_digits"]["default"], 16);
    assert_eq!(user_input["properties"]["terminator"]["default"], "#");
}

#[test]
fn check_config_accepts_the_shipped_configuration() {
    let out = boomerang(&["check-config", "boomerang.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "boomerang.yaml: ok (3 route points, 4 queues, 3 agents, 1 trunks)\n"
    );
}

#[test]
fn check_config_on_a_broken_file_fails_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boomerang.yaml");
    std::fs::write(
        &file,
        "queues:\n  - name: Sales_VQ\n    business_hours: nine_to_five\n",
    )
    .unwrap();
    let out = boomerang(&["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let f = file.display();
    assert!(
        err.starts_with(&format!(
            "{f}:3:21: queues[0].business_hours: no business hours named `nine_to_five`"
        )),
        "{err}"
    );
    assert!(
        err.contains("3 |     business_hours: nine_to_five\n  |                     ^"),
        "{err}"
    );
    assert!(err.ends_with(&format!("1 problem(s) in {f}\n")), "{err}");
}
