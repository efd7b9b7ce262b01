//! Shared modules (`call_module`): flow files in a flows directory loaded together (as the
//! engine loads them), a golden transcript through nested modules with inputs and outputs, a
//! module that ends the call, the run-time depth bound, and the load errors (missing module,
//! cycle, wrong application type) with file, line and column.

use std::path::Path;

use boomerang::call::CallLeg;
use boomerang::call::memory::MemoryLeg;
use boomerang::flow::interpreter::system_variables;
use boomerang::flow::{self, Ending, LoadContext, RunReport};

use crate::common::repo;
use crate::harness::{Harness, harness};

/// Writes `files` into a fresh flows directory and loads it as the engine does.
fn load(h: &Harness, files: &[(&str, &str)]) -> (Vec<flow::Flow>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let prompts = flow::load::prompt_names(&repo().join("prompts"));
    let ctx = LoadContext {
        config: &h.core.config,
        prompts: Some(&prompts),
    };
    let (flows, errors) = flow::load_dir(dir.path(), &ctx);
    let problems = errors
        .iter()
        .flat_map(|e| {
            // File names only: the directory is a fresh temporary one.
            let dir = format!("{}/", dir.path().display());
            e.diagnostics
                .iter()
                .map(move |d| d.to_string().replace(&dir, ""))
        })
        .collect();
    (flows, problems)
}

async fn run(
    h: &Harness,
    files: &[(&str, &str)],
    main: &str,
    ani: &str,
) -> (RunReport, Vec<String>) {
    let (flows, problems) = load(h, files);
    assert!(problems.is_empty(), "{problems:?}");
    let f = flows
        .into_iter()
        .find(|f| f.file.file_name().unwrap() == Path::new(main))
        .unwrap();
    let leg = MemoryLeg::caller(ani, "8000", []);
    let vars = system_variables(leg.as_ref(), &leg.info().dnis);
    let r = flow::run(&f, leg.clone(), &h.services, vars).await;
    (r, leg.transcript())
}

const MAIN: &str = "application: main
type: default
variables: {tier: none}
self_service:
  - type: call_module
    id: ident
    module: identify.yaml
    inputs: {number: ani, greeting: \"'hello'\"}
    outputs: {tier: customer_tier, said: greeting}
  - type: if
    conditions:
      - {when: \"tier == 'gold'\", goto: gold}
  - type: terminate_call
  - type: play_message
    id: gold
    prompts: [digit-1]
finalize:
  - type: assign
    set: {summary: \"tier + '/' + said\"}
";

const IDENTIFY: &str = "application: identify
type: default
variables: {customer_tier: basic}
self_service:
  - type: call_module
    id: deeper
    module: welcome.yaml
  - type: if
    conditions:
      - {when: \"ends_with(number, '8')\", goto: vip}
    otherwise: done
  - type: assign
    id: vip
    set: {customer_tier: \"'gold'\"}
  - type: assign
    id: done
    set: {greeting: \"greeting + ' ' + number\"}
";

const WELCOME: &str = "application: welcome
type: default
self_service:
  - type: play_message
    prompts: [welcome]
";

#[tokio::test]
async fn a_module_runs_with_inputs_and_gives_back_outputs_through_nested_modules() {
    let h = harness().await;
    let files = [
        ("main.yaml", MAIN),
        ("identify.yaml", IDENTIFY),
        ("welcome.yaml", WELCOME),
    ];
    let (r, transcript) = run(&h, &files, "main.yaml", "+33612345678").await;
    assert_eq!(
        r.lines(),
        [
            "ident/deeper/self_service[0] (play_message): played",
            "ident/deeper (call_module): welcome.yaml returned",
            "ident/self_service[1] (if): ends_with(number, '8') → vip",
            "ident/vip (assign): customer_tier=gold",
            "ident/done (assign): greeting=hello +33612345678",
            "ident (call_module): identify.yaml returned",
            "self_service[1] (if): tier == 'gold' → gold",
            "gold (play_message): played",
            "finalize[0] (assign): summary=gold/hello +33612345678",
        ]
    );
    assert_eq!(
        transcript,
        ["play welcome", "play digit-1", "hang up (Normal)"]
    );
    // The module's own variables stay in the module.
    assert!(!r.variables.contains_key("customer_tier"));
    assert!(!r.variables.contains_key("number"));
    // Another caller: the module's default comes back.
    let (r, transcript) = run(&h, &files, "main.yaml", "+33612345671").await;
    assert_eq!(r.variables["tier"].to_string(), "basic");
    assert_eq!(transcript, ["play welcome", "hang up (Normal)"]);
}

#[tokio::test]
async fn a_module_that_ends_the_call_ends_it_for_its_caller() {
    let h = harness().await;
    let bye = "application: bye\ntype: default\nself_service:\n  - type: play_message\n    prompts: [goodbye]\n  - type: terminate_call\n    cause: busy\n";
    let main = "application: main\ntype: default\nself_service:\n  - type: call_module\n    id: leave\n    module: bye.yaml\n  - type: play_message\n    prompts: [welcome]\n";
    let (r, transcript) = run(
        &h,
        &[("main.yaml", main), ("bye.yaml", bye)],
        "main.yaml",
        "+331",
    )
    .await;
    assert_eq!(
        r.lines(),
        [
            "leave/self_service[0] (play_message): played",
            "leave/self_service[1] (terminate_call): end (busy)",
            "leave (call_module): bye.yaml ended the call",
        ]
    );
    assert_eq!(r.ending, Ending::Terminated);
    assert_eq!(transcript, ["play goodbye", "hang up (Busy)"]);
}

#[tokio::test]
async fn nesting_deeper_than_eight_modules_takes_on_error_at_run_time() {
    let h = harness().await;
    // m0 → m1 → … → m9: no cycle, so it loads; the ninth call is refused when it runs.
    let texts: Vec<(String, String)> = (0..10)
        .map(|i| {
            let body = if i < 9 {
                format!(
                    "  - type: call_module\n    id: m{i}\n    module: m{}.yaml\n    on_error: deep\n  - type: terminate_call\n  - type: assign\n    id: deep\n    set: {{deep: \"'m{i}'\"}}\n",
                    i + 1
                )
            } else {
                "  - type: play_message\n    prompts: [welcome]\n".to_string()
            };
            (
                format!("m{i}.yaml"),
                format!("application: m{i}\ntype: default\nself_service:\n{body}"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (r, transcript) = run(&h, &files, "m0.yaml", "+331").await;
    let lines = r.lines();
    assert!(
        lines.contains(
            &"m0/m1/m2/m3/m4/m5/m6/m7/m8 (call_module): module m9.yaml not run: more than 8 nested modules"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(lines.contains(&"m0/m1/m2/m3/m4/m5/m6/m7/deep (assign): deep=m8".to_string()));
    assert!(!transcript.contains(&"play welcome".to_string()));
}

#[tokio::test]
async fn missing_modules_cycles_and_wrong_types_are_load_errors_at_the_module() {
    let h = harness().await;
    let a =
        "application: a\ntype: default\nself_service:\n  - type: call_module\n    module: b.yaml\n";
    let b = "application: b\ntype: default\nself_service:\n  - type: play_message\n    prompts: [welcome]\n  - type: call_module\n    id: back\n    module: a.yaml\n";
    let c = "application: c\ntype: default\nself_service:\n  - type: call_module\n    module: welcom.yaml\n  - type: call_module\n    module: cb.yaml\n";
    let d = "application: d\ntype: default\nself_service:\n  - type: call_module\n    module: ../etc/x.yaml\n";
    let cb = "application: cb\ntype: callback\nself_service:\n  - type: play_message\n    prompts: [welcome]\n";
    let welcome = WELCOME;
    let (flows, problems) = load(
        &h,
        &[
            ("a.yaml", a),
            ("b.yaml", b),
            ("c.yaml", c),
            ("cb.yaml", cb),
            ("d.yaml", d),
            ("welcome.yaml", welcome),
        ],
    );
    let mut loaded: Vec<String> = flows.iter().map(|f| f.name.clone()).collect();
    loaded.sort();
    assert_eq!(loaded, ["cb", "welcome"]);
    assert_eq!(
        problems,
        [
            "d.yaml:5:13: self_service[0].module: `../etc/x.yaml` is not a flow file name of the flows directory (`name.yaml`)",
            "a.yaml:5:13: self_service[0].module: module `b.yaml` cannot be linked (see its problems)",
            "b.yaml:8:13: back.module: modules call each other in a cycle: a.yaml → b.yaml → a.yaml",
            "c.yaml:5:13: self_service[0].module: no module `welcom.yaml` in the flows directory (did you mean `welcome.yaml`?)",
            "c.yaml:7:13: self_service[1].module: module `cb.yaml` is a callback application; this one is default",
        ],
    );
}
