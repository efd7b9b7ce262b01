//! Packaging: the systemd unit passes `systemd-analyze verify` (when the tool is installed) and
//! keeps its stop timeout above the drain; the Dockerfile's build context is complete — every
//! COPY source exists and is not docker-ignored, the builder's files make a valid Cargo
//! workspace, and the runtime stage's configuration passes `check-config` laid out as in the
//! image. (Docker itself cannot pull images here, so the image is not built.)

use crate::common;

use std::path::Path;
use std::process::Command;

use common::repo;

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("packaging/boomerang.service")).unwrap()
}

/// The value of `key=` in the unit (the last one, as systemd reads it).
fn unit_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// Runs `systemd-analyze verify` on the unit with its binary path pointed at the one cargo
/// built; its exit status and the complaints that name the unit.
fn verify(text: &str) -> Option<(bool, Vec<String>)> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("boomerang.service");
    std::fs::write(
        &file,
        text.replace("/usr/local/bin/boomerang", env!("CARGO_BIN_EXE_boomerang")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("boomerang.service"))
        .map(str::to_string)
        .collect();
    Some((out.status.success(), complaints))
}

#[test]
fn systemd_unit_verifies_clean() {
    let text = unit_text();
    let Some((ok, complaints)) = verify(&text) else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    assert!(ok && complaints.is_empty(), "{complaints:#?}");
    // The check can fail: a misspelt directive is reported.
    let (_, complaints) = verify(&text.replace("PrivateTmp=yes", "PrivateTmpp=yes")).unwrap();
    assert!(
        complaints.iter().any(|c| c.contains("PrivateTmpp")),
        "{complaints:?}"
    );
}

#[test]
fn systemd_unit_stops_gracefully_and_is_sandboxed() {
    let text = unit_text();
    assert_eq!(unit_value(&text, "KillSignal").as_deref(), Some("SIGTERM"));
    let stop: u32 = unit_value(&text, "TimeoutStopSec")
        .expect("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    let drain = boomerang::config::ShutdownSettings::default().drain_seconds;
    assert!(
        stop > drain,
        "TimeoutStopSec {stop} <= drain_seconds {drain}"
    );
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "boomerang"),
        ("AmbientCapabilities", ""),
    ] {
        assert_eq!(unit_value(&text, key).as_deref(), Some(want), "{key}");
    }
    assert!(unit_value(&text, "LimitNOFILE").is_some());
}

/// The Dockerfile's `COPY` instructions from the build context (not `--from` a stage), as
/// (sources, destination).
fn context_copies(dockerfile: &str) -> Vec<(Vec<String>, String)> {
    dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .map(|l| {
            let mut parts: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            let dest = parts.pop().unwrap();
            (parts, dest)
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// Lays out each stage's context copies in a directory, as `docker build` would.
fn stage(copies: &[(Vec<String>, String)], into: &Path) {
    for (sources, dest) in copies {
        for s in sources {
            let target = if dest.ends_with('/') {
                into.join(dest).join(Path::new(s).file_name().unwrap())
            } else {
                into.join(dest)
            };
            copy_tree(&repo().join(s), &target);
        }
    }
}

#[test]
fn dockerfile_copies_files_that_exist_and_make_a_working_image() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap_or_default();
    let ignored: Vec<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let stages: Vec<&str> = text.split("\nFROM ").skip(1).collect();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage");
    assert!(stages[0].starts_with("rust:"), "{}", stages[0]);
    assert!(stages[1].starts_with("debian:"), "{}", stages[1]);
    let (build, runtime) = (context_copies(stages[0]), context_copies(stages[1]));
    for (sources, _) in build.iter().chain(&runtime) {
        for s in sources {
            assert!(repo().join(s).exists(), "COPY source {s} does not exist");
            let top = s.split('/').next().unwrap();
            assert!(
                !ignored.contains(&top),
                "COPY source {s} is in .dockerignore"
            );
        }
    }
    // The builder's files are a Cargo workspace whose every target is there (`fetch` parses
    // them all) and that resolves with the lock file as is.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("src-root");
    stage(&build, &dir.path().join("src-root/"));
    let out = Command::new(env!("CARGO"))
        .args(["fetch", "--locked", "--offline"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the sources embed at compile time is in the builder too.
    let embed = regex::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut pending = vec![root.join("src")];
    while let Some(p) = pending.pop() {
        if p.is_dir() {
            pending.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|x| x == "rs") {
            let code = std::fs::read_to_string(&p).unwrap();
            for c in embed.captures_iter(&code) {
                let wanted = p.parent().unwrap().join(&c[1]);
                assert!(wanted.exists(), "{} embeds {}", p.display(), &c[1]);
            }
        }
    }
    // The runtime stage's files pass check-config as the image's RUN step checks them.
    let opt = dir.path().join("opt");
    stage(&runtime, &opt);
    let out = Command::new(env!("CARGO_BIN_EXE_boomerang"))
        .args(["check-config", "boomerang.yaml"])
        .current_dir(&opt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Non-root, the service's ports exposed, a health check on /healthz.
    let user = stages[1]
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(!["root", "0"].contains(&user.trim()), "{user}");
    let expose = stages[1]
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    for port in ["5060/udp", "5060/tcp", "8080"] {
        assert!(expose.contains(port), "{port} not exposed: {expose}");
    }
    assert!(text.contains("HEALTHCHECK") && text.contains("http://127.0.0.1:8080/healthz"));
    let demo = std::fs::read_to_string(repo().join("boomerang.yaml")).unwrap();
    assert!(demo.contains("http: \"0.0.0.0:8080\"") && demo.contains("\"0.0.0.0:5060\""));
}

/// `cargo deny check licenses bans sources` passes on the tree with `deny.toml` (when
/// cargo-deny is installed, as `.ci/run` does), and the unit reloads with SIGHUP.
#[test]
fn cargo_deny_passes_offline_and_the_unit_reloads_with_sighup() {
    assert_eq!(
        unit_value(&unit_text(), "ExecReload").as_deref(),
        Some("/bin/kill -HUP $MAINPID")
    );
    let deny = std::env::var("HOME")
        .map(|h| Path::new(&h).join(".local/bin/cargo-deny"))
        .ok()
        .filter(|p| p.exists())
        .map(|p| p.into_os_string())
        .unwrap_or_else(|| "cargo-deny".into());
    let Ok(out) = Command::new(&deny)
        .args([
            "--log-level",
            "error",
            "check",
            "licenses",
            "bans",
            "sources",
        ])
        .current_dir(repo())
        .output()
    else {
        eprintln!("cargo-deny is not installed: check skipped (.ci/run installs it)");
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("licenses ok"), "{text}");
}
