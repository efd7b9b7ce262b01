//! A private PostgreSQL server for a test that stops and restarts it (the shared one from
//! `.ci/pg-cluster.sh` must not be): initdb and pg_ctl from `BOOMERANG_TEST_PG_BIN`, run through
//! `BOOMERANG_TEST_PG_AS` when root, in a temporary directory, stopped on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A server of the test's own.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PgServer {
    /// Starts one, or says why the test is skipped and gives `None` (no PostgreSQL set up:
    /// `source .ci/pg-cluster.sh; pg_start` sets the variables, as `./test.sh` does).
    pub fn start() -> Option<PgServer> {
        let (Ok(_), Ok(bin)) = (
            std::env::var("BOOMERANG_TEST_PG_URL"),
            std::env::var("BOOMERANG_TEST_PG_BIN"),
        ) else {
            eprintln!(
                "BOOMERANG_TEST_PG_URL is not set: multi-node PostgreSQL test skipped \
                 (./test.sh, or `source .ci/pg-cluster.sh; pg_start`, sets it)"
            );
            return None;
        };
        let run_as: Vec<String> = std::env::var("BOOMERANG_TEST_PG_AS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        if !run_as.is_empty() {
            assert!(
                Command::new("chown")
                    .arg("postgres:")
                    .arg(dir.path())
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let server = PgServer {
            dir,
            bin: bin.into(),
            run_as,
            port: super::free_port(),
        };
        let data = server.data();
        assert!(server.tool(
            "initdb",
            &["-D", &data, "-U", "boomerang", "--auth=trust", "--no-sync"]
        ));
        assert!(server.ctl("start"), "the private PostgreSQL starts");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(name);
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl start` or `pg_ctl stop` (fast), waiting for it; true when it worked.
    pub fn ctl(&self, action: &str) -> bool {
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        self.tool(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-m", "fast", "-o", &opts, action,
            ],
        )
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgres://boomerang@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}
