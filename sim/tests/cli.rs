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
        "watermark.yaml",
        "relaxation.yaml",
        "priority.yaml",
        "offer.yaml",
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

/// Runs a shipped scenario, or a copy of it (and of its flows directory `flows/<flows>`) with each
/// `(from, to)` replaced in every file, and returns the JSON report.
fn run_variant(name: &str, flows: &str, replace: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let edit = |text: String| {
        replace
            .iter()
            .fold(text, |t, (from, to)| t.replace(from, to))
    };
    let flows_dir = dir.path().join("flows").join(flows);
    std::fs::create_dir_all(&flows_dir).unwrap();
    for entry in std::fs::read_dir(scenario("flows").join(flows)).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(flows_dir.join(path.file_name().unwrap()), edit(text)).unwrap();
    }
    let text = edit(std::fs::read_to_string(scenario(name)).unwrap()).replace(
        "engine: ../../boomerang.yaml",
        &format!("engine: {}/../boomerang.yaml", env!("CARGO_MANIFEST_DIR")),
    );
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let json = dir.path().join("r.json");
    let out = bin()
        .args(["run", "--quiet", "--json"])
        .arg(&json)
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

fn figure(report: &serde_json::Value, queue: &str, key: &str) -> f64 {
    report["queues"][queue][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{queue}.{key} in {}", report["queues"]))
}

/// The shipped `watermark.yaml` (an immediate callback offered only while fewer than 5 callbacks
/// are active) against the same flow with no effective limit, same seed: the watermark offers
/// and books markedly fewer callbacks.
#[test]
fn watermark_scenario_offers_fewer_callbacks_than_without_it() {
    let with = run_variant("watermark.yaml", "watermark", &[]);
    let without = run_variant("watermark.yaml", "watermark", &[("max: 5", "max: 1000000")]);
    let offered = |r: &serde_json::Value| figure(r, "Sales_VQ", "callbacks_offered");
    let booked = |r: &serde_json::Value| {
        r["queues"]["Sales_VQ"]["callbacks_accepted"]["immediate"]
            .as_f64()
            .unwrap_or(0.0)
    };
    println!(
        "offered {} / {}, booked {} / {} (watermark / none)",
        offered(&with),
        offered(&without),
        booked(&with),
        booked(&without)
    );
    assert!(offered(&with) > 20.0, "{}", with["overall"]);
    assert!(
        offered(&with) < 0.75 * offered(&without),
        "with: {}\nwithout: {}",
        with["overall"],
        without["overall"]
    );
    assert!(booked(&with) < booked(&without));
}

/// The shipped `relaxation.yaml` (Expert_VQ callers ask for a skill level two agents of eight
/// have, relaxed every 30 s) against the same flow without `relax_skills`, same seed: the expert
/// callers' mean and longest waits drop with relaxation.
#[test]
fn relaxation_scenario_shortens_the_hard_skill_callers_wait() {
    let relaxed = run_variant("relaxation.yaml", "relaxation", &[]);
    let strict = run_variant(
        "relaxation.yaml",
        "relaxation",
        &[("flow: relax-expert.yaml", "flow: relax-expert-strict.yaml")],
    );
    let asa = |r: &serde_json::Value| figure(r, "Expert_VQ", "asa_seconds");
    let longest = |r: &serde_json::Value| figure(r, "Expert_VQ", "longest_wait_seconds");
    println!(
        "Expert_VQ ASA {:.1} s relaxed, {:.1} s strict; longest {:.1} / {:.1}",
        asa(&relaxed),
        asa(&strict),
        longest(&relaxed),
        longest(&strict)
    );
    assert!(asa(&relaxed) < 0.7 * asa(&strict), "{relaxed}\n{strict}");
    assert!(longest(&relaxed) < longest(&strict));
    assert_eq!(
        figure(&relaxed, "Expert_VQ", "answered"),
        figure(&relaxed, "Expert_VQ", "offered")
    );
}

/// The shipped `priority.yaml` (Gold callers at priority 10, Basic at 0 growing by 1 every 30 s
/// up to 10) against the same queues without `priority_growth`, same seed: Basic callers no
/// longer starve — their mean and longest waits drop, paid for by Gold callers.
#[test]
fn priority_scenario_stops_low_priority_callers_starving() {
    let growth = run_variant("priority.yaml", "priority", &[]);
    let fixed = run_variant(
        "priority.yaml",
        "priority",
        &[(
            "    priority_growth: {increment: 1, every_seconds: 30, limit: 10}\n",
            "",
        )],
    );
    let f = |r: &serde_json::Value, q: &str, k: &str| figure(r, q, k);
    println!(
        "Basic_VQ ASA {:.1} s with growth, {:.1} s without; longest {:.1} / {:.1}; Gold_VQ ASA {:.1} / {:.1}",
        f(&growth, "Basic_VQ", "asa_seconds"),
        f(&fixed, "Basic_VQ", "asa_seconds"),
        f(&growth, "Basic_VQ", "longest_wait_seconds"),
        f(&fixed, "Basic_VQ", "longest_wait_seconds"),
        f(&growth, "Gold_VQ", "asa_seconds"),
        f(&fixed, "Gold_VQ", "asa_seconds"),
    );
    assert!(
        f(&growth, "Basic_VQ", "asa_seconds") < 0.6 * f(&fixed, "Basic_VQ", "asa_seconds"),
        "{growth}\n{fixed}"
    );
    assert!(
        f(&growth, "Basic_VQ", "longest_wait_seconds")
            < 0.5 * f(&fixed, "Basic_VQ", "longest_wait_seconds")
    );
    assert!(f(&growth, "Gold_VQ", "asa_seconds") > f(&fixed, "Gold_VQ", "asa_seconds"));
}

/// The shipped `offer.yaml` (a callback offered every 45 s to callers waiting with an EWT of a
/// minute or more) against the same line whose threshold is never reached, same seed: callers
/// accept the offer and leave the queue for a callback served in their turn, and fewer abandon.
#[test]
fn offer_scenario_turns_waiting_callers_into_callbacks() {
    let offer = run_variant("offer.yaml", "offer", &[]);
    let none = run_variant(
        "offer.yaml",
        "offer",
        &[("ewt_threshold_seconds: 60", "ewt_threshold_seconds: 86400")],
    );
    let f = |r: &serde_json::Value, k: &str| figure(r, "Sales_VQ", k);
    let booked = offer["queues"]["Sales_VQ"]["callbacks_accepted"]["immediate"]
        .as_f64()
        .unwrap_or(0.0);
    println!(
        "offered {} booked {} left {}; abandoned {} / {} (offers / none)",
        f(&offer, "callbacks_offered"),
        booked,
        f(&offer, "left_for_callback"),
        f(&offer, "abandoned"),
        f(&none, "abandoned")
    );
    assert!(booked > 20.0, "{}", offer["overall"]);
    assert_eq!(f(&offer, "left_for_callback"), booked);
    assert_eq!(f(&none, "callbacks_offered"), 0.0, "{}", none["overall"]);
    assert_eq!(f(&none, "left_for_callback"), 0.0);
    assert!(
        f(&offer, "abandoned") < f(&none, "abandoned"),
        "offers: {}\nnone: {}",
        offer["overall"],
        none["overall"]
    );
}
