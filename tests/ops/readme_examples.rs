//! Every shell example of README.md and ivr-flows/README.md runs as written against the shipped
//! configuration (plus the README's one-line API key) on a live engine: the ```sh blocks of each
//! file run in order in one bash session (variables carry over, as in a reader's terminal), with
//! only the engine's address replaced. Every HTTP answer must be 2xx, or the status a
//! `# expect NNN` comment on its line names; every other command must succeed. Whatever
//! examples the READMEs hold when this runs are checked.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use boomerang::clock::SystemClock;
use boomerang::engine::Engine;

/// Lines that are not run, and why: long-running or whole-suite commands, softphones.
const SKIPPED_LINES: &[(&str, &str)] = &[
    ("cargo run", "builds and starts a long-running program"),
    ("./test.sh", "runs the whole test suite"),
    ("baresip", "a softphone session"),
    ("sipp", "a SIP load run"),
];

/// Blocks that are not run, and why (every line depends on the skipped part). None today: a
/// block goes here only with a reason a reader would accept.
const SKIPPED_BLOCKS: &[(&str, &str)] = &[];

/// The ```sh blocks of a Markdown file, each as logical lines (continuations joined).
fn sh_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in text.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```sh") => current = Some(Vec::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                if let Some(b) = current.take() {
                    blocks.push(b);
                }
            }
            Some(b) => {
                if let Some(head) = line.strip_suffix('\\') {
                    pending.push_str(head);
                    pending.push(' ');
                } else {
                    pending.push_str(line);
                    b.push(std::mem::take(&mut pending));
                }
            }
        }
    }
    blocks
}

/// The bash script for a file's blocks: a `curl` that reports each answer's status (and the
/// status expected of it) on stderr, then the runnable lines.
fn script(blocks: &[Vec<String>], http: &str) -> (String, Vec<String>) {
    let mut skipped = Vec::new();
    let mut s = String::from(
        "set -e -o pipefail\n\
         curl() { command curl -w \"%{stderr}STATUS %{http_code} ${EXPECT:-2xx} %{url_effective}\\n\" \"$@\"; }\n",
    );
    for block in blocks {
        let joined = block.join("\n");
        if let Some((_, why)) = SKIPPED_BLOCKS.iter().find(|(m, _)| joined.contains(m)) {
            skipped.push(format!("block {:?}…: {why}", block.first()));
            continue;
        }
        for line in block {
            let t = line.trim_start();
            if let Some((_, why)) = SKIPPED_LINES.iter().find(|(p, _)| t.starts_with(p)) {
                skipped.push(format!("{t}: {why}"));
                continue;
            }
            let line = line
                .replace("http://localhost:8080", &format!("http://{http}"))
                .replace("localhost:8080", http)
                .replace("127.0.0.1:8080", http);
            let expect = line
                .split("# expect ")
                .nth(1)
                .and_then(|r| r.get(..3))
                .filter(|c| c.chars().all(|c| c.is_ascii_digit()));
            match expect {
                Some(code) => s += &format!("EXPECT={code}\n{line}\nunset EXPECT\n"),
                None => s += &format!("{line}\n"),
            }
        }
    }
    (s, skipped)
}

async fn run_examples(file: &str) {
    let text = std::fs::read_to_string(common::repo().join(file)).expect("README");
    let blocks = sh_blocks(&text);
    assert!(!blocks.is_empty(), "{file} has no ```sh block");
    let dir = tempfile::tempdir().expect("temporary directory");
    // The README's one-line additions: an API key, and an Administrator whose hash is what
    // `echo 'admin-secret' | boomerang hash-password` prints.
    let hash = boomerang::api::admin::auth::hash_password("admin-secret").expect("hash");
    let config = common::demo_config(dir.path(), |spec| {
        spec.api.keys.push(common::api_key("demo", "demo-key"));
        spec.admin.users.push(common::administrator("admin", &hash));
    });
    let engine = Engine::start(Arc::new(config), SystemClock::shared())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (script, skipped) = script(&blocks, &engine.http_addr.to_string());
    let bin = Path::new(env!("CARGO_BIN_EXE_boomerang"))
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(common::repo())
        .env("PATH", path)
        .output()
        .await
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.success(),
        "an example of {file} failed:\n{report}"
    );
    let statuses: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("STATUS "))
        .collect();
    for l in &statuses {
        let mut parts = l.split_whitespace().skip(1);
        let (got, want) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let ok = if want == "2xx" {
            got.starts_with('2')
        } else {
            got == want
        };
        assert!(ok, "{file}: {l}\n{report}");
    }
    println!(
        "{file}: {} HTTP answers checked; skipped: {skipped:#?}",
        statuses.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_shell_examples_run_as_written() {
    run_examples("README.md").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_readme_shell_examples_run_as_written() {
    run_examples("ivr-flows/README.md").await;
}
