//! Checks of `flows.http`: every allow-list prefix is an http(s) URL with a host, and the
//! concurrency and body bounds stay within sane ranges.

use super::super::*;
use super::{I, K};

impl Validator<'_> {
    /// `flows.http.allow`, `max_concurrent` and `max_response_bytes`.
    pub(super) fn check_flows_http(&mut self, root: &Node, spec: &ConfigSpec) {
        let h = &spec.flows.http;
        for (i, p) in h.allow.iter().enumerate() {
            if let Some(problem) = crate::flow::http::prefix_problem(p) {
                let steps = [K("flows"), K("http"), K("allow"), I(i)];
                self.err_at(root, &steps, problem);
            }
        }
        let at = |f: &'static str| [K("flows"), K("http"), K(f)];
        self.range(
            root,
            &at("max_concurrent"),
            i64::from(h.max_concurrent),
            1,
            1024,
        );
        self.range(
            root,
            &at("max_response_bytes"),
            i64::from(h.max_response_bytes),
            1024,
            10_485_760,
        );
    }
}
