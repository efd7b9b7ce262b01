//! Scenario: an operator runs `boomerang check-config` on the shipped file and on a broken one.

use std::process::Command;

fn boomerang() -> Command {
    Command::new(env!("CARGO_BIN_EXE_boomerang"))
}

#[test]
fn the_shipped_configuration_passes() {
    let out = boomerang()
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/boomerang.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (3 route points, 4 queues, 3 agents, 1 trunks)"),
        "{stdout}"
    );
}

#[test]
fn a_broken_file_lists_every_problem_with_line_column_and_caret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "queues:\n  - name: Sales_VQ\n    max_dial_attempts: 0\n    trunk: nowhere\n  - name: Sales_VQ\nagents:\n  - id: a\n    skills: {Sales: -1}\n",
    )
    .unwrap();
    let out = boomerang().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display().to_string();
    for expected in [
        format!("{f}:3:24: queues[0].max_dial_attempts: 0 is out of range 1 to 20"),
        format!("{f}:4:12: queues[0].trunk: no trunk named `nowhere`"),
        format!("{f}:5:11: queues[1].name: queue `Sales_VQ` is defined twice"),
        format!("{f}:8:21: agents[0].skills.Sales: -1 is out of range 0 to 10"),
        "4 problem(s)".to_string(),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert!(
        err.contains("3 |     max_dial_attempts: 0\n  |                        ^"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_a_clear_error_not_a_panic() {
    let out = boomerang()
        .args(["check-config", "/nonexistent/boomerang.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/boomerang.yaml:1:1: cannot read"),
        "{err}"
    );
}

#[test]
fn push_settings_are_checked_a_bad_service_account_and_urls_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sa.json"),
        r#"{"project_id":"p","client_email":"e@p","private_key":"not a key"}"#,
    )
    .unwrap();
    let file = dir.path().join("push.yaml");
    std::fs::write(
        &file,
        "queues:\n  - name: Sales_VQ_CB\n    push_webhook_url: 'ftp://x/y'\npush:\n  max_attempts: 0\n  fcm: {service_account_file: sa.json, base_url: 'nowhere'}\n",
    )
    .unwrap();
    let out = boomerang().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "queues[0].push_webhook_url: `ftp://x/y` is not an http:// or https:// URL",
        "push.max_attempts: 0 is out of range 1 to 100",
        "push.fcm.service_account_file: the service account's private_key is not a PKCS#8 PEM RSA key",
        "push.fcm.base_url: `nowhere` is not an http:// or https:// URL",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    // A missing file is named too.
    std::fs::remove_file(dir.path().join("sa.json")).unwrap();
    let out = boomerang().arg("check-config").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("push.fcm.service_account_file: cannot read the service-account file"),
        "{err}"
    );
}

#[test]
fn flows_http_allow_prefixes_and_bounds_are_checked_where_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("http.yaml");
    std::fs::write(
        &file,
        "flows:\n  http:\n    allow: ['https://crm.example.com/api', 'ftp://x/', 'http://h/?q=1', 'nope']\n    max_concurrent: 0\n    max_response_bytes: 10\n",
    )
    .unwrap();
    let out = boomerang().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display().to_string();
    for expected in [
        format!("{f}:3:44: flows.http.allow[1]: `ftp://x/` is not an http:// or https:// URL"),
        format!("{f}:3:56: flows.http.allow[2]: `http://h/?q=1` has a query or fragment"),
        format!("{f}:3:73: flows.http.allow[3]: `nope` is not a URL"),
        format!("{f}:4:21: flows.http.max_concurrent: 0 is out of range 1 to 1024"),
        format!("{f}:5:25: flows.http.max_response_bytes: 10 is out of range 1024 to 10485760"),
        "5 problem(s)".to_string(),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
}
