//! The `boomerang-sim` command line: `check`, `run` with JSON and SVG output, the seed flag,
//! and wire mode refusing to start without a target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boomerang-sim"))
}

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

#[test]
fn check_accepts_the_shipped_scenarios() {
    for name in [
        "erlang-c.yaml",
        "demo.yaml",
        "bench.yaml",
        "bench-days.yaml",
        "wire.yaml",
        "wire-load.yaml",
        "sip-small.yaml",
        "amd.yaml",
    ] {
        let out = bin().arg("check").arg(scenario(name)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(text.contains(": ok ("), "{text}");
    }
}

#[test]
fn run_writes_json_and_plots_and_honours_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let svg = dir.path().join("plots");
    let out = bin()
        .args(["run", "--quiet", "--calls", "--seed", "9", "--json"])
        .arg(&json)
        .arg("--svg-dir")
        .arg(&svg)
        .arg(scenario("erlang-c.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("P(wait>0)") && table.contains("seed 9"),
        "{table}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["seed"], 9);
    let offered = v["overall"]["offered"].as_u64().unwrap();
    assert!(offered > 1000, "{v}");
    assert_eq!(v["queues"]["Erlang_VQ"]["answered"].as_u64(), Some(offered));
    assert_eq!(
        v["calls"].as_array().unwrap().len() as u64,
        v["callers"].as_u64().unwrap()
    );
    for f in ["queue-length.svg", "wait-histogram.svg", "ewt.svg"] {
        assert!(svg.join(f).is_file(), "{f}");
    }
}

#[test]
fn wire_mode_without_a_target_fails_with_a_clear_message() {
    let out = bin()
        .args(["run", "--quiet", "--mode", "wire"])
        .arg(scenario("erlang-c.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wire mode needs --target HOST:PORT"), "{err}");
}

#[test]
fn a_broken_scenario_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "start: 2026-03-02T09:00:00Z\nduration: 1h\narrivals: []\nagents: []\n",
    )
    .unwrap();
    let out = bin().arg("check").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:3:11") && err.contains("at least one arrival stream"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:4:9") && err.contains("at least one agent profile"),
        "{err}"
    );
}

/// The shipped `amd.yaml` (a third of answers are machines, detected and retried) against the
/// same scenario leaving a message instead: retrying costs attempts and ends customers only
/// machines answer at the redial limit; a message ends them MESSAGE_LEFT at the first machine.
#[test]
fn amd_scenario_shows_the_machine_action_in_attempts_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let run = |path: &std::path::Path| -> serde_json::Value {
        let json = dir.path().join("r.json");
        let out = bin()
            .args(["run", "--quiet", "--json"])
            .arg(&json)
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
    };
    let retry = run(&scenario("amd.yaml"));
    let text = std::fs::read_to_string(scenario("amd.yaml"))
        .unwrap()
        .replace(
            "amd: {on_machine: retry}",
            "amd: {on_machine: message, message_prompt: machine-message}",
        )
        .replace(
            "engine: ../../boomerang.yaml",
            &format!("engine: {}/../boomerang.yaml", env!("CARGO_MANIFEST_DIR")),
        );
    let message_path = dir.path().join("amd-message.yaml");
    std::fs::write(&message_path, text).unwrap();
    let message = run(&message_path);
    let r = &retry["overall"];
    let m = &message["overall"];
    let done = |v: &serde_json::Value, k: &str| v["callbacks_completed"][k].as_u64().unwrap_or(0);
    assert_eq!(done(r, "MESSAGE_LEFT"), 0, "{r}");
    assert!(done(m, "MESSAGE_LEFT") > 10, "{m}");
    assert!(
        done(r, "AGENT") > done(m, "AGENT"),
        "retry: {r}\nmessage: {m}"
    );
    let attempts = |v: &serde_json::Value| v["dial_attempts_per_callback"].as_f64().unwrap();
    assert!(attempts(r) > attempts(m) + 0.1, "retry: {r}\nmessage: {m}");
    println!(
        "retry: attempts/callback {:.2}, {}\nmessage: attempts/callback {:.2}, {}",
        attempts(r),
        r["callbacks_completed"],
        attempts(m),
        m["callbacks_completed"]
    );
}
