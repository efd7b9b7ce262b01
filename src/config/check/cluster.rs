//! Checks of the store backend and the cluster settings: a PostgreSQL store needs a URL that
//! parses, a node needs a usable name, and leases and pools stay within sane bounds.

use super::super::*;
use super::K;

impl Validator<'_> {
    /// `store.kind`, `store.url`, `store.pool_size` and the `cluster` section.
    pub(super) fn check_store_and_cluster(&mut self, root: &Node, spec: &ConfigSpec) {
        let (st, c) = (&spec.store, &spec.cluster);
        self.range(
            root,
            &[K("store"), K("pool_size")],
            i64::from(st.pool_size),
            1,
            1000,
        );
        if st.kind == StoreKind::Postgres {
            let steps = [K("store"), K("url")];
            if st.url.is_empty() {
                self.err_at(
                    root,
                    &steps,
                    "`kind: postgres` needs the database URL, e.g. \
                     postgres://boomerang:secret@db.example.com:5432/boomerang",
                );
            } else if let Err(e) = st.url.parse::<tokio_postgres::Config>() {
                self.err_at(root, &steps, format!("not a PostgreSQL URL: {e}"));
            }
        }
        self.range(
            root,
            &[K("cluster"), K("lease_seconds")],
            i64::from(c.lease_seconds),
            3,
            3600,
        );
        self.range(
            root,
            &[K("cluster"), K("fallback_delay_seconds")],
            i64::from(c.fallback_delay_seconds),
            0,
            86_400,
        );
        self.range(
            root,
            &[K("cluster"), K("claim_poll_milliseconds")],
            i64::from(c.claim_poll_milliseconds),
            50,
            60_000,
        );
        let url = &c.internal_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            self.err_at(
                root,
                &[K("cluster"), K("internal_url")],
                "an http:// or https:// URL at which the other nodes reach this node's API",
            );
        }
        if !c.secret.is_empty() && c.secret.len() < 16 {
            self.err_at(
                root,
                &[K("cluster"), K("secret")],
                "at least 16 characters: it lets other nodes reserve this node's agents",
            );
        }
        let valid = !c.node_id.is_empty()
            && c.node_id.len() <= 64
            && c.node_id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !valid {
            self.err_at(
                root,
                &[K("cluster"), K("node_id")],
                format!(
                    "`{}` is not a node name: 1 to 64 letters, digits, `-`, `_` or `.`",
                    c.node_id
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, StoreKind};

    fn paths(text: &str) -> Vec<String> {
        match Config::from_str_in(text, Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(errs) => errs.diagnostics.iter().map(|d| d.path.clone()).collect(),
        }
    }

    #[test]
    fn sqlite_and_node_1_by_default_postgres_needs_a_url_that_parses() {
        let c = Config::from_str_in("queues: []\n", Path::new("/nonexistent")).unwrap();
        assert_eq!(c.spec.store.kind, StoreKind::Sqlite);
        assert_eq!(c.spec.cluster.node_id, "node-1");
        assert_eq!(c.spec.cluster.lease_seconds, 15);
        assert_eq!(paths("store:\n  kind: postgres\n"), ["store.url"]);
        assert_eq!(
            paths("store:\n  kind: postgres\n  url: \"postgres://x@host:notaport/db\"\n"),
            ["store.url"]
        );
        assert!(
            paths("store:\n  kind: postgres\n  url: postgres://boomerang@db:5432/b\n").is_empty()
        );
        assert_eq!(
            paths("store:\n  pool_size: 0\ncluster:\n  node_id: \"a b\"\n  lease_seconds: 1\n"),
            [
                "store.pool_size",
                "cluster.node_id",
                "cluster.lease_seconds"
            ]
        );
        assert_eq!(paths("store:\n  kind: mysql\n"), ["store.kind"]);
        assert_eq!(
            paths("cluster:\n  secret: short\n  internal_url: ftp://x\n"),
            ["cluster.secret", "cluster.internal_url"]
        );
        assert!(
            paths("cluster:\n  secret: 0123456789abcdef\n  internal_url: http://10.0.0.2:8080\n")
                .is_empty()
        );
    }
}
