//! The engine file (`boomerang.yaml`): listeners, route points, trunks, agents, business hours
//! and virtual queues with their CALLBACK_SETTINGS row. Loading reports every problem at once,
//! each with its YAML path and line/column.

pub mod hours;
pub mod model;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use hours::{BusinessHours, BusinessHoursSpec, DayHours, DayKind};
pub use model::*;

use crate::diagnostics::{self, suggest};
use crate::routing::skills::Expr;
use crate::yaml::{self, Diagnostic, Node, Pos};

/// Everything wrong with a configuration file, in file order, with the text for rendering.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The problems found, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// The file's text, for carets.
    pub source: String,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.render(&self.source))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A validated configuration with its references resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// Directory relative paths are resolved against (the file's directory).
    pub base_dir: PathBuf,
    /// The file's content, validated.
    pub spec: ConfigSpec,
    /// Business hours by name, resolved with their time zones.
    pub hours: BTreeMap<String, Arc<BusinessHours>>,
}

impl Config {
    /// Loads and validates a file; every problem is reported, not just the first.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            diagnostics: vec![Diagnostic::whole_file(format!("cannot read: {e}")).in_file(path)],
            source: String::new(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Self::from_str_in(&text, &base).map_err(|mut e| {
            for d in &mut e.diagnostics {
                d.file = Some(path.to_path_buf());
            }
            e
        })?;
        cfg.file = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// Parses and validates YAML text, resolving relative paths against `base_dir`.
    pub fn from_str_in(text: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
        let fail = |diagnostics: Vec<Diagnostic>| ConfigErrors {
            diagnostics,
            source: text.to_string(),
        };
        let root = yaml::parse(text).map_err(|d| fail(vec![d]))?;
        let mut v = Validator {
            diags: Vec::new(),
            text,
            base_dir,
        };
        let spec = v.decode(&root);
        let hours = v.check(&root, &spec);
        if v.diags.is_empty() {
            Ok(Config {
                file: None,
                base_dir: base_dir.to_path_buf(),
                spec,
                hours,
            })
        } else {
            let mut d = v.diags;
            diagnostics::tidy(&mut d);
            Err(fail(d))
        }
    }

    /// The demo configuration shipped at the repository root, embedded in the binary.
    pub fn demo_text() -> &'static str {
        include_str!("../../boomerang.yaml")
    }

    /// A queue by service name.
    pub fn queue(&self, name: &str) -> Option<&QueueSpec> {
        self.spec.queues.iter().find(|q| q.name == name)
    }

    /// The business hours a queue follows (always open when it names none).
    pub fn queue_hours(&self, queue: &QueueSpec) -> Arc<BusinessHours> {
        queue
            .business_hours
            .as_ref()
            .and_then(|n| self.hours.get(n).cloned())
            .unwrap_or_else(|| Arc::new(BusinessHours::always_open()))
    }

    /// The hours during which a queue offers immediate callback, if it restricts them.
    pub fn immediate_offer_hours(&self, queue: &QueueSpec) -> Option<Arc<BusinessHours>> {
        queue
            .immediate_offer_hours
            .as_ref()
            .and_then(|n| self.hours.get(n).cloned())
    }

    /// The route point for a dialled number.
    /// A leading `+` is ignored on both sides, so the E.164 form a call-in request hands out
    /// (`+8001`) reaches route point `8001`.
    pub fn route_point(&self, number: &str) -> Option<&RoutePointSpec> {
        let bare = number.trim_start_matches('+');
        self.spec
            .route_points
            .iter()
            .find(|r| r.number.trim_start_matches('+') == bare)
    }

    /// An agent by id.
    pub fn agent(&self, id: &str) -> Option<&AgentSpec> {
        self.spec.agents.iter().find(|a| a.id == id)
    }

    /// A trunk by name, or the first one when `name` is `None`.
    pub fn trunk(&self, name: Option<&str>) -> Option<&TrunkSpec> {
        match name {
            Some(n) => self.spec.trunks.iter().find(|t| t.name == n),
            None => self.spec.trunks.first(),
        }
    }

    /// Directory of flow files.
    pub fn flows_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.flows_dir)
    }

    /// Directory of prompt WAV files.
    pub fn prompts_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.media.prompts_dir)
    }

    /// Directory of the embedded store.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join(&self.spec.store.data_dir)
    }
}

impl QueueSpec {
    /// The inbound report queue: explicit, or by convention `X_VQ_CB` → `X_VQ`.
    pub fn inbound_report_queue(&self) -> Option<String> {
        self.inbound_queue
            .clone()
            .or_else(|| self.name.strip_suffix("_CB").map(str::to_string))
    }

    /// The outbound report queue: explicit, or by convention `X_VQ_CB` → `X_VQ_CB_OUT`.
    pub fn outbound_report_queue(&self) -> Option<String> {
        self.outbound_queue.clone().or_else(|| {
            self.name
                .ends_with("_CB")
                .then(|| format!("{}_OUT", self.name))
        })
    }
}

struct Validator<'a> {
    diags: Vec<Diagnostic>,
    text: &'a str,
    base_dir: &'a Path,
}

const TOP_KEYS: &[&str] = &[
    "listeners",
    "sip",
    "media",
    "store",
    "flows_dir",
    "business_hours",
    "route_points",
    "trunks",
    "agents",
    "queues",
    "api",
    "admin",
    "callin_groups",
    "shutdown",
    "logging",
    "metrics",
];

impl Validator<'_> {
    fn err(&mut self, pos: Pos, path: impl Into<String>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, path, msg));
    }

    /// A section or item that did not decode; an unknown field gets a did-you-mean.
    fn decode_failed(&mut self, d: Diagnostic) {
        self.diags.push(diagnostics::explain_unknown_field(d));
    }

    /// Decodes section by section and item by item, so one bad item does not hide the others.
    fn decode(&mut self, root: &Node) -> ConfigSpec {
        let mut spec = ConfigSpec {
            flows_dir: "ivr-flows".into(),
            ..Default::default()
        };
        if !matches!(root.kind, yaml::Kind::Map(_)) {
            self.err(
                root.pos,
                "",
                format!(
                    "the configuration must be a mapping, found {}",
                    root.kind_name()
                ),
            );
            return spec;
        }
        self.diags
            .extend(diagnostics::unknown_keys(root, "section", TOP_KEYS));
        macro_rules! section {
            ($key:literal, $field:ident) => {
                if let Some(n) = root.get($key) {
                    match n.decode($key) {
                        Ok(v) => spec.$field = v,
                        Err(d) => self.decode_failed(d),
                    }
                }
            };
        }
        section!("listeners", listeners);
        section!("sip", sip);
        section!("media", media);
        section!("store", store);
        section!("flows_dir", flows_dir);
        section!("api", api);
        section!("shutdown", shutdown);
        section!("logging", logging);
        section!("metrics", metrics);
        if let Some(n) = root.get("admin") {
            match n.decode::<AdminSettings>("admin") {
                Ok(v) => spec.admin = v,
                Err(whole) => self.decode_admin_users(n, whole, &mut spec.admin),
            }
        }
        macro_rules! list {
            ($key:literal, $field:ident) => {
                if let Some(n) = root.get($key) {
                    match &n.kind {
                        yaml::Kind::Seq(items) => {
                            for (i, item) in items.iter().enumerate() {
                                match item.decode(&format!("{}[{i}]", $key)) {
                                    Ok(v) => spec.$field.push(v),
                                    Err(d) => self.decode_failed(d),
                                }
                            }
                        }
                        yaml::Kind::Null => {}
                        _ => self.err(
                            n.pos,
                            $key,
                            format!("expected a list, found {}", n.kind_name()),
                        ),
                    }
                }
            };
        }
        list!("route_points", route_points);
        list!("trunks", trunks);
        list!("agents", agents);
        list!("queues", queues);
        list!("callin_groups", callin_groups);
        if let Some(n) = root.get("business_hours") {
            for (k, v) in n.entries() {
                let name = k.as_key().unwrap_or_default();
                match v.decode::<BusinessHoursSpec>(&format!("business_hours.{name}")) {
                    Ok(h) => {
                        spec.business_hours.insert(name, h);
                    }
                    Err(d) => self.decode_failed(d),
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

    /// Position of a value by path steps from the root; the closest existing ancestor otherwise.
    fn pos_of(&self, root: &Node, steps: &[Step]) -> Pos {
        let mut node = root;
        for step in steps {
            let next = match step {
                Step::Key(k) => node.get(k.as_ref()),
                Step::Index(i) => node.items().get(*i),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    fn range(&mut self, root: &Node, steps: &[Step], value: i64, lo: i64, hi: i64) {
        if value < lo || value > hi {
            let pos = self.pos_of(root, steps);
            self.err(
                pos,
                path_of(steps),
                format!("{value} is out of range {lo} to {hi}"),
            );
        }
    }

    fn check(&mut self, root: &Node, spec: &ConfigSpec) -> BTreeMap<String, Arc<BusinessHours>> {
        for (i, g) in spec.callin_groups.iter().enumerate() {
            if let Err(e) = g.validate() {
                let pos = self.pos_of(root, &[Step::Key("callin_groups".into()), Step::Index(i)]);
                self.err(pos, format!("callin_groups[{i}]"), e.to_string());
            }
        }
        let s = &spec.sip;
        if let Some(host) = s.public_host.as_deref()
            && host.parse::<std::net::IpAddr>().is_err()
            && !is_host_name(host)
        {
            let pos = self.pos_of(root, &[K("sip"), K("public_host")]);
            self.err(
                pos,
                "sip.public_host",
                format!(
                    "`{host}` is neither an IP address nor a host name (letters, digits, \
                     hyphens, dot-separated labels); a name must resolve when the engine starts"
                ),
            );
        }
        self.range(
            root,
            &[K("sip"), K("max_message_bytes")],
            s.max_message_bytes as i64,
            1024,
            1_048_576,
        );
        self.range(
            root,
            &[K("sip"), K("max_headers")],
            s.max_headers as i64,
            16,
            1024,
        );
        self.range(
            root,
            &[K("sip"), K("session_expires_seconds")],
            s.session_expires_seconds as i64,
            90,
            86400,
        );
        self.range(
            root,
            &[K("sip"), K("max_register_expires_seconds")],
            s.max_register_expires_seconds as i64,
            60,
            86400,
        );
        self.range(
            root,
            &[K("shutdown"), K("drain_seconds")],
            i64::from(spec.shutdown.drain_seconds),
            0,
            86400,
        );
        self.range(
            root,
            &[K("sip"), K("max_calls")],
            s.max_calls as i64,
            1,
            100_000,
        );
        self.range(
            root,
            &[K("sip"), K("max_setup_calls")],
            s.max_setup_calls as i64,
            1,
            s.max_calls.max(1) as i64,
        );
        if s.max_queue_delay_ms != 0 {
            self.range(
                root,
                &[K("sip"), K("max_queue_delay_ms")],
                s.max_queue_delay_ms as i64,
                10,
                10_000,
            );
        }
        for (key, value, hi) in [
            (
                "tcp_header_timeout_seconds",
                s.tcp_header_timeout_seconds,
                300,
            ),
            ("tcp_body_timeout_seconds", s.tcp_body_timeout_seconds, 300),
            (
                "tcp_idle_timeout_seconds",
                s.tcp_idle_timeout_seconds,
                86400,
            ),
            ("tcp_max_connections", s.tcp_max_connections, 1_000_000),
            (
                "tcp_max_connections_per_address",
                s.tcp_max_connections_per_address,
                s.tcp_max_connections.max(1),
            ),
        ] {
            self.range(root, &[K("sip"), K(key)], value as i64, 1, hi as i64);
        }
        let m = &spec.media;
        self.range(
            root,
            &[K("media"), K("rtp_timeout_seconds")],
            m.rtp_timeout_seconds as i64,
            0,
            3600,
        );
        self.range(
            root,
            &[K("media"), K("rtp_port_min")],
            m.rtp_port_min as i64,
            1024,
            65534,
        );
        if !m.rtp_port_min.is_multiple_of(2) {
            let pos = self.pos_of(root, &[K("media"), K("rtp_port_min")]);
            self.err(
                pos,
                "media.rtp_port_min",
                "RTP ports must start on an even number",
            );
        }
        self.range(
            root,
            &[K("media"), K("rtp_realtime_priority")],
            i64::from(m.rtp_realtime_priority),
            0,
            99,
        );
        if (m.rtp_port_max as i64) < m.rtp_port_min as i64 + 2 {
            let pos = self.pos_of(root, &[K("media"), K("rtp_port_max")]);
            self.err(
                pos,
                "media.rtp_port_max",
                "the RTP port range must hold at least one even/odd pair",
            );
        }
        let st = &spec.store;
        self.range(
            root,
            &[K("store"), K("retention_days")],
            st.retention_days,
            1,
            3650,
        );
        self.range(
            root,
            &[K("store"), K("retention_sweep_minutes")],
            st.retention_sweep_minutes,
            1,
            1440,
        );
        let a = &spec.api;
        self.range(
            root,
            &[K("api"), K("rate_limit_per_second")],
            a.rate_limit_per_second,
            1,
            100_000,
        );
        self.range(
            root,
            &[K("api"), K("max_body_bytes")],
            a.max_body_bytes,
            1024,
            10_485_760,
        );
        for (key, value, max) in [
            ("header_timeout_seconds", a.header_timeout_seconds, 3600),
            ("body_timeout_seconds", a.body_timeout_seconds, 3600),
            ("max_connections", a.max_connections, 1_000_000),
            (
                "max_connections_per_address",
                a.max_connections_per_address,
                1_000_000,
            ),
        ] {
            self.range(root, &[K("api"), K(key)], value, 1, max);
        }
        for (i, key) in a.keys.iter().enumerate() {
            let steps = [K("api"), K("keys"), I(i)];
            match (&key.key, &key.key_sha256) {
                (Some(_), None) => {}
                (None, Some(h)) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {}
                (None, Some(_)) => {
                    let pos = self.pos_of(root, &[K("api"), K("keys"), I(i), K("key_sha256")]);
                    self.err(
                        pos,
                        format!("api.keys[{i}].key_sha256"),
                        "expected 64 hexadecimal digits",
                    );
                }
                _ => {
                    let pos = self.pos_of(root, &steps);
                    self.err(
                        pos,
                        path_of(&steps),
                        "give exactly one of `key` and `key_sha256`",
                    );
                }
            }
        }
        for (i, origin) in a.cors_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                let steps = [K("api"), K("cors_origins"), I(i)];
                let pos = self.pos_of(root, &steps);
                self.err(
                    pos,
                    path_of(&steps),
                    format!("`{origin}` is not an origin like https://app.example.com"),
                );
            }
        }

        self.check_admin(root, spec);

        // Business hours.
        let mut hours = BTreeMap::new();
        for (name, h) in &spec.business_hours {
            match BusinessHours::from_spec(name, h) {
                Ok(bh) => {
                    hours.insert(name.clone(), Arc::new(bh));
                }
                Err(errors) => {
                    for (field, msg) in errors {
                        let mut steps =
                            vec![K("business_hours"), Step::Key(Cow::Owned(name.clone()))];
                        for part in field.split('.') {
                            if let Some((k, idx)) = part.split_once('[') {
                                steps.push(Step::Key(Cow::Owned(k.to_string())));
                                steps.push(I(idx.trim_end_matches(']').parse().unwrap_or(0)));
                            } else {
                                steps.push(Step::Key(Cow::Owned(part.to_string())));
                            }
                        }
                        let pos = self.pos_of(root, &steps);
                        self.err(pos, format!("business_hours.{name}.{field}"), msg);
                    }
                }
            }
        }

        // Route points.
        let mut seen = HashSet::new();
        let flows_dir = self.base_dir.join(&spec.flows_dir);
        for (i, rp) in spec.route_points.iter().enumerate() {
            let n = [K("route_points"), I(i), K("number")];
            if rp.number.is_empty()
                || !rp
                    .number
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+*#_.-".contains(c))
            {
                let pos = self.pos_of(root, &n);
                self.err(
                    pos,
                    path_of(&n),
                    format!("`{}` is not a dialable number", rp.number),
                );
            }
            if !seen.insert(rp.number.clone()) {
                let pos = self.pos_of(root, &n);
                self.err(
                    pos,
                    path_of(&n),
                    format!("route point {} is defined twice", rp.number),
                );
            }
            if !flows_dir.join(&rp.flow).is_file() {
                let f = [K("route_points"), I(i), K("flow")];
                let pos = self.pos_of(root, &f);
                self.err(
                    pos,
                    path_of(&f),
                    format!(
                        "flow file `{}` not found in {}",
                        rp.flow,
                        flows_dir.display()
                    ),
                );
            }
        }

        // Trunks.
        let mut seen = HashSet::new();
        for (i, t) in spec.trunks.iter().enumerate() {
            if !seen.insert(t.name.clone()) {
                let s = [K("trunks"), I(i), K("name")];
                let pos = self.pos_of(root, &s);
                self.err(
                    pos,
                    path_of(&s),
                    format!("trunk `{}` is defined twice", t.name),
                );
            }
            if t.host.trim().is_empty() {
                let s = [K("trunks"), I(i), K("host")];
                let pos = self.pos_of(root, &s);
                self.err(pos, path_of(&s), "the trunk needs a host");
            }
            if t.password.is_some() && t.username.is_none() {
                let s = [K("trunks"), I(i), K("password")];
                let pos = self.pos_of(root, &s);
                self.err(pos, path_of(&s), "a password needs a username");
            }
        }

        // Agents.
        let mut ids = HashSet::new();
        let mut users = HashSet::new();
        for (i, ag) in spec.agents.iter().enumerate() {
            if ag.id.trim().is_empty() || !ids.insert(ag.id.clone()) {
                let s = [K("agents"), I(i), K("id")];
                let pos = self.pos_of(root, &s);
                self.err(
                    pos,
                    path_of(&s),
                    format!("agent id `{}` is empty or used twice", ag.id),
                );
                continue;
            }
            let user = ag.sip_user.clone().unwrap_or_else(|| ag.id.clone());
            if !users.insert(user.clone()) {
                let s = [K("agents"), I(i), K("sip_user")];
                let pos = self.pos_of(root, &s);
                self.err(
                    pos,
                    path_of(&s),
                    format!("SIP user `{user}` belongs to two agents"),
                );
            }
            // With the default REGISTER authentication, only agents given a SIP user need one
            // (an agent without a password cannot register).
            let needs_password = spec.sip.authenticate_invite
                || (spec.sip.authenticate_register && ag.sip_user.is_some());
            if needs_password && ag.password.is_none() {
                let s = [K("agents"), I(i)];
                let pos = self.pos_of(root, &s);
                self.err(
                    pos,
                    path_of(&s),
                    "sip.authenticate_register (the default) or authenticate_invite is on: the agent needs a password (or set sip.authenticate_register: false)",
                );
            }
            for (skill, level) in &ag.skills {
                let s = [
                    K("agents"),
                    I(i),
                    K("skills"),
                    Step::Key(Cow::Owned(skill.clone())),
                ];
                if !valid_skill_name(skill) {
                    let pos = self.pos_of(root, &s[..3]);
                    self.err(
                        pos,
                        path_of(&s),
                        format!("`{skill}` is not a skill name (letters, digits, _)"),
                    );
                }
                self.range(root, &s, *level, 0, 10);
            }
        }

        // Queues.
        let mut names = HashSet::new();
        for (i, q) in spec.queues.iter().enumerate() {
            let at = |f: &'static str| [K("queues"), I(i), K(f)];
            if q.name.is_empty()
                || !q
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                let pos = self.pos_of(root, &at("name"));
                self.err(
                    pos,
                    path_of(&at("name")),
                    format!("`{}` is not a queue name (letters, digits, _ - .)", q.name),
                );
            }
            if !names.insert(q.name.clone()) {
                let pos = self.pos_of(root, &at("name"));
                self.err(
                    pos,
                    path_of(&at("name")),
                    format!("queue `{}` is defined twice", q.name),
                );
            }
            self.range(root, &at("slot_capacity"), q.slot_capacity, 0, 10_000);
            self.range(
                root,
                &at("slot_duration_minutes"),
                q.slot_duration_minutes,
                5,
                1440,
            );
            self.range(
                root,
                &at("callback_purge_time_minutes"),
                q.callback_purge_time_minutes,
                1,
                10_080,
            );
            self.range(
                root,
                &at("immediate_blackout_minutes"),
                q.immediate_blackout_minutes,
                0,
                720,
            );
            self.range(root, &at("max_dial_attempts"), q.max_dial_attempts, 1, 20);
            self.range(
                root,
                &at("retry_interval_seconds"),
                q.retry_interval_seconds,
                10,
                86_400,
            );
            self.range(
                root,
                &at("ring_timeout_seconds"),
                q.ring_timeout_seconds,
                5,
                300,
            );
            self.range(root, &at("wrap_up_seconds"), q.wrap_up_seconds, 0, 3600);
            self.range(
                root,
                &at("pushed_callback_expiry_minutes"),
                q.pushed_callback_expiry_minutes,
                1,
                10_080,
            );
            self.range(
                root,
                &at("push_notification_threshold_minutes"),
                q.push_notification_threshold_minutes,
                0,
                1440,
            );
            self.range(root, &at("priority"), q.priority, 0, 1_000_000);
            self.range(
                root,
                &at("ewt_offer_threshold_seconds"),
                q.ewt_offer_threshold_seconds,
                0,
                86_400,
            );
            self.range(root, &at("max_days_ahead"), q.max_days_ahead, 1, 90);
            self.range(
                root,
                &at("service_level_seconds"),
                q.service_level_seconds,
                1,
                3600,
            );
            for (field, name) in [
                ("business_hours", &q.business_hours),
                ("immediate_offer_hours", &q.immediate_offer_hours),
            ] {
                if let Some(n) = name
                    && !spec.business_hours.contains_key(n)
                {
                    let pos = self.pos_of(root, &at(field));
                    self.err(
                        pos,
                        path_of(&at(field)),
                        format!(
                            "no business hours named `{n}`{}",
                            suggest(n, &keys(&spec.business_hours))
                        ),
                    );
                }
            }
            if let Some(t) = &q.trunk
                && !spec.trunks.iter().any(|x| &x.name == t)
            {
                let pos = self.pos_of(root, &at("trunk"));
                self.err(
                    pos,
                    path_of(&at("trunk")),
                    format!(
                        "no trunk named `{t}`{}",
                        suggest(
                            t,
                            &spec
                                .trunks
                                .iter()
                                .map(|x| x.name.as_str())
                                .collect::<Vec<_>>()
                        )
                    ),
                );
            }
            if let Some(app) = &q.callback_application
                && !flows_dir.join(app).is_file()
            {
                let pos = self.pos_of(root, &at("callback_application"));
                self.err(
                    pos,
                    path_of(&at("callback_application")),
                    format!("flow file `{app}` not found in {}", flows_dir.display()),
                );
            }
            if let Err(e) = Expr::parse(&q.skill_expression) {
                let node_pos = self.pos_of(root, &at("skill_expression"));
                let pos = diagnostics::inside(self.text, node_pos, e.column - 1);
                self.err(
                    pos,
                    path_of(&at("skill_expression")),
                    format!("bad skill expression: {}", e.message),
                );
            }
        }
        hours
    }

    /// Administration users: names unique, hashes verifiable, roles given, queues known.
    fn check_admin(&mut self, root: &Node, spec: &ConfigSpec) {
        let a = &spec.admin;
        self.range(
            root,
            &[K("admin"), K("session_idle_minutes")],
            a.session_idle_minutes,
            1,
            1440,
        );
        for (key, value, min, max) in [
            ("login_concurrency", a.login_concurrency, 0, 256),
            ("login_wait_ms", a.login_wait_ms, 0, 30_000),
            ("lockout_failures", a.lockout_failures, 1, 1000),
            ("lockout_seconds", a.lockout_seconds, 1, 86_400),
            (
                "lockout_max_seconds",
                a.lockout_max_seconds,
                a.lockout_seconds.max(1),
                604_800,
            ),
        ] {
            self.range(root, &[K("admin"), K(key)], value, min, max);
        }
        let mut names = HashSet::new();
        for (i, u) in a.users.iter().enumerate() {
            let at = |f: &'static str| [K("admin"), K("users"), I(i), K(f)];
            if !crate::api::admin::auth::valid_user_name(&u.name) {
                let pos = self.pos_of(root, &at("name"));
                self.err(
                    pos,
                    path_of(&at("name")),
                    format!(
                        "`{}` is not a user name (1–64 letters, digits, _ - . @)",
                        u.name
                    ),
                );
            } else if !names.insert(u.name.clone()) {
                let pos = self.pos_of(root, &at("name"));
                self.err(
                    pos,
                    path_of(&at("name")),
                    format!("user `{}` is defined twice", u.name),
                );
            }
            if let Err(e) = crate::api::admin::auth::check_hash(&u.password_hash) {
                let pos = self.pos_of(root, &at("password_hash"));
                self.err(
                    pos,
                    path_of(&at("password_hash")),
                    format!("{e}; make one with `boomerang hash-password`"),
                );
            }
            if u.roles.is_empty() {
                let pos = self.pos_of(root, &at("roles"));
                self.err(
                    pos,
                    path_of(&at("roles")),
                    "give at least one role: Administrator, Supervisor, Monitor or Developer",
                );
            }
            for (j, q) in u.queues.iter().flatten().enumerate() {
                if !spec.queues.iter().any(|x| &x.name == q) {
                    let steps = [K("admin"), K("users"), I(i), K("queues"), I(j)];
                    let pos = self.pos_of(root, &steps);
                    self.err(
                        pos,
                        path_of(&steps),
                        format!(
                            "no queue named `{q}`{}",
                            suggest(
                                q,
                                &spec
                                    .queues
                                    .iter()
                                    .map(|x| x.name.as_str())
                                    .collect::<Vec<_>>()
                            )
                        ),
                    );
                }
            }
        }
    }
}

/// A map's keys, for a did-you-mean.
fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

/// True for skill names the expression parser accepts.
pub fn valid_skill_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

#[derive(Clone)]
enum Step {
    Key(Cow<'static, str>),
    Index(usize),
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[allow(non_snake_case)]
fn K(key: &'static str) -> Step {
    Step::Key(Cow::Borrowed(key))
}

#[allow(non_snake_case)]
fn I(index: usize) -> Step {
    Step::Index(index)
}

fn path_of(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Key(k) => out = yaml::join(&out, k),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_str_in(text, Path::new("/nonexistent"))
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let c = load("").unwrap();
        assert_eq!(c.spec.listeners.http.port(), 8080);
        assert_eq!(c.spec.listeners.sip_udp[0].port(), 5060);
        assert_eq!(c.spec.flows_dir, "ivr-flows");
        assert_eq!(c.spec.sip.max_message_bytes, 65536);
    }

    #[test]
    fn queue_defaults_and_naming_convention() {
        let c = load("queues:\n  - name: Sales_VQ_CB\n").unwrap();
        let q = c.queue("Sales_VQ_CB").unwrap();
        assert_eq!(q.slot_capacity, 10);
        assert_eq!(q.slot_duration_minutes, 15);
        assert_eq!(q.max_dial_attempts, 3);
        assert!(q.immediate_enabled && q.scheduled_enabled);
        assert_eq!(q.call_direction, CallDirection::BusinessToCustomer);
        assert_eq!(q.inbound_report_queue().as_deref(), Some("Sales_VQ"));
        assert_eq!(
            q.outbound_report_queue().as_deref(),
            Some("Sales_VQ_CB_OUT")
        );
        assert!(c.queue_hours(q).is_open(chrono::Utc::now()));
    }

    #[test]
    fn every_problem_is_reported_at_once_with_positions() {
        let text = "\
listeners:
  http: 'not an address'
queues:
  - name: A_VQ
    slot_capacity: 20000
    skill_expression: 'Sales >= & English'
    business_hours: nowhere
  - name: B_VQ
    colour: blue
agents:
  - id: a1
    skills: {Sales: 11}
  - id: a1
colour: red
";
        let errs = load(text).unwrap_err();
        let got: Vec<(usize, usize, &str)> = errs
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.pos.column, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, 9, "listeners.http"),
                (5, 20, "queues[0].slot_capacity"),
                (6, 33, "queues[0].skill_expression"),
                (7, 21, "queues[0].business_hours"),
                (9, 5, "queues[1].colour"),
                (12, 21, "agents[0].skills.Sales"),
                (13, 9, "agents[1].id"),
                (14, 1, "colour"),
            ],
            "{errs}"
        );
        let rendered = errs.to_string();
        assert!(
            rendered.contains("20000 is out of range 0 to 10000"),
            "{rendered}"
        );
        assert!(
            rendered.contains("bad skill expression: expected a level"),
            "{rendered}"
        );
    }

    #[test]
    fn admin_users_are_checked_with_positions() {
        let text = "\
queues:
  - name: Sales_VQ_CB
admin:
  session_idle_minutes: 0
  users:
    - {name: ann, password_hash: 'plain', roles: [Monitor]}
    - name: ann
      password_hash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$S7w3t7lXzlEm1b2UazRQvn+0tcJkYQVnH2fGiGo6wXU'
      roles: []
      queues: [Sales_VQ_CB, Nowhere]
    - {name: bob, password_hash: x, roles: [Janitor]}
";
        let errs = load(text).unwrap_err();
        let got: Vec<(usize, &str)> = errs
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4, "admin.session_idle_minutes"),
                (6, "admin.users[0].password_hash"),
                (7, "admin.users[1].name"),
                (9, "admin.users[1].roles"),
                (10, "admin.users[1].queues[1]"),
                (11, "admin.users[2].roles[0]"),
            ],
            "{errs}"
        );
        assert!(
            errs.to_string().contains("boomerang hash-password"),
            "{errs}"
        );
    }

    #[test]
    fn business_hours_errors_point_into_the_hours() {
        let text =
            "business_hours:\n  main:\n    time_zone: Mars/Base\n    weekly:\n      mon: 9-5\n";
        let errs = load(text).unwrap_err();
        let got: Vec<(usize, &str)> = errs
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, "business_hours.main.time_zone"),
                (5, "business_hours.main.weekly.mon")
            ]
        );
    }

    #[test]
    fn the_shipped_demo_configuration_is_valid() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&base.join("boomerang.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.spec.route_points.is_empty());
        assert!(!c.spec.agents.is_empty());
        assert!(c.spec.queues.iter().any(|q| q.name.ends_with("_CB")));
    }

    #[test]
    fn retention_settings_have_defaults_and_ranges() {
        let c = load("queues: []\n").unwrap();
        assert_eq!(
            (
                c.spec.store.retention_days,
                c.spec.store.retention_sweep_minutes
            ),
            (14, 60)
        );
        let errs =
            load("store:\n  retention_days: 0\n  retention_sweep_minutes: 2000\n").unwrap_err();
        let paths: Vec<&str> = errs.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            ["store.retention_days", "store.retention_sweep_minutes"],
            "{errs}"
        );
    }
}
