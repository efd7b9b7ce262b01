//! Decoding the configuration file section by section and item by item, so that one bad item
//! does not hide the problems of the others.

use super::*;

impl Validator<'_> {
    /// Decodes section by section and item by item, so one bad item does not hide the others.
    pub(super) fn decode(&mut self, root: &Node) -> ConfigSpec {
        let mut spec = ConfigSpec {
            flows_dir: "ivr-flows".into(),
            ..Default::default()
        };
        let not_a_map = |k: &str| format!("the configuration must be a mapping, found {k}");
        if !diagnostics::root_mapping(root, "section", TOP_KEYS, &mut self.diags, not_a_map) {
            return spec;
        }
        // The sections decoded whole, each into the spec field of its name.
        macro_rules! sections {
            ($($field:ident),*) => {$(
                let key = stringify!($field);
                if let Some(n) = root.get(key) {
                    if let Some(v) = self.decoded(n.decode(key)) {
                        spec.$field = v;
                    }
                }
            )*};
        }
        sections!(
            listeners, sip, media, store, cluster, flows_dir, flows, api, shutdown, logging,
            metrics, push
        );
        if let Some(n) = root.get("admin") {
            match n.decode::<AdminSettings>("admin") {
                Ok(v) => spec.admin = v,
                Err(whole) => self.decode_admin_users(n, whole, &mut spec.admin),
            }
        }
        // The sections that are lists, item by item.
        macro_rules! lists {
            ($($field:ident),*) => {$(
                let key = stringify!($field);
                if let Some(n) = root.get(key) {
                    match &n.kind {
                        yaml::Kind::Seq(items) => {
                            for (i, item) in items.iter().enumerate() {
                                let path = format!("{key}[{i}]");
                                spec.$field.extend(self.decoded(item.decode(&path)));
                            }
                        }
                        yaml::Kind::Null => {}
                        _ => self.err(
                            n.pos,
                            key,
                            format!("expected a list, found {}", n.kind_name()),
                        ),
                    }
                }
            )*};
        }
        lists!(route_points, trunks, agents, queues, callin_groups);
        if let Some(n) = root.get("business_hours") {
            for (k, v) in n.entries() {
                let name = k.as_key().unwrap_or_default();
                let path = format!("business_hours.{name}");
                if let Some(h) = self.decoded(v.decode::<BusinessHoursSpec>(&path)) {
                    spec.business_hours.insert(name, h);
                }
            }
            if !matches!(n.kind, yaml::Kind::Map(_) | yaml::Kind::Null) {
                self.err(
                    n.pos,
                    "business_hours",
                    format!(
                        "expected a mapping of names to hours, found {}",
                        n.kind_name()
                    ),
                );
            }
        }
        spec
    }

    /// After the `admin` section failed to decode: decodes user by user, so that one bad user
    /// does not hide the problems of the others (and the idle timeout still applies).
    fn decode_admin_users(&mut self, n: &Node, whole: Diagnostic, admin: &mut AdminSettings) {
        let mut reported = false;
        let users = n.get("users").map(Node::items).unwrap_or_default();
        for (i, item) in users.iter().enumerate() {
            match item.decode::<AdminUserSpec>(&format!("admin.users[{i}]")) {
                Ok(u) => admin.users.push(u),
                Err(d) => {
                    self.decode_failed(d);
                    reported = true;
                }
            }
        }
        let defaults = AdminSettings::default();
        for (key, field, default) in [
            (
                "session_idle_minutes",
                &mut admin.session_idle_minutes,
                defaults.session_idle_minutes,
            ),
            (
                "login_concurrency",
                &mut admin.login_concurrency,
                defaults.login_concurrency,
            ),
            (
                "login_wait_ms",
                &mut admin.login_wait_ms,
                defaults.login_wait_ms,
            ),
            (
                "lockout_failures",
                &mut admin.lockout_failures,
                defaults.lockout_failures,
            ),
            (
                "lockout_seconds",
                &mut admin.lockout_seconds,
                defaults.lockout_seconds,
            ),
            (
                "lockout_max_seconds",
                &mut admin.lockout_max_seconds,
                defaults.lockout_max_seconds,
            ),
        ] {
            *field = match n.get(key).map(|m| m.decode::<i64>(&format!("admin.{key}"))) {
                Some(Ok(m)) => m,
                _ => default,
            };
        }
        if !reported {
            self.diags.push(whole);
        }
    }
}
