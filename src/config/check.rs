//! Checks of a decoded configuration: ranges, names, references between sections, business
//! hours; each problem at the position of the value it is about.

use std::borrow::Cow;
use std::collections::HashSet;

use super::*;
use crate::diagnostics::{self, suggest};
use crate::routing::skills::Expr;

mod cluster;
mod flows_http;

/// A setting's name, value and allowed range from `owner.field` (optionally `as i64`), for the
/// range tables below: the name is written once.
macro_rules! within {
    ($owner:ident . $field:ident $(as $t:ty)?, $lo:expr, $hi:expr) => {
        (stringify!($field), $owner.$field $(as $t)?, $lo, $hi)
    };
}

impl Validator<'_> {
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

    /// A problem about the value at `steps`, at its position.
    fn err_at(&mut self, root: &Node, steps: &[Step], msg: impl Into<String>) {
        let pos = self.pos_of(root, steps);
        self.err(pos, path_of(steps), msg);
    }

    /// `name` is none of the `known` names of `what`s: a problem at `steps` with a did-you-mean.
    fn unknown_name(
        &mut self,
        root: &Node,
        steps: &[Step],
        what: &str,
        name: &str,
        known: &[&str],
    ) {
        self.err_at(
            root,
            steps,
            format!("no {what} named `{name}`{}", suggest(name, known)),
        );
    }

    fn range(&mut self, root: &Node, steps: &[Step], value: i64, lo: i64, hi: i64) {
        if value < lo || value > hi {
            self.err_at(root, steps, format!("{value} is out of range {lo} to {hi}"));
        }
    }

    pub(super) fn check(
        &mut self,
        root: &Node,
        spec: &ConfigSpec,
    ) -> BTreeMap<String, Arc<BusinessHours>> {
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
        let prefix = &s.call_data_header_prefix;
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix.bytes().all(crate::flow::call_data::is_token_byte)
        {
            let pos = self.pos_of(root, &[K("sip"), K("call_data_header_prefix")]);
            self.err(
                pos,
                "sip.call_data_header_prefix",
                format!(
                    "`{prefix}` is not a SIP header-name prefix (1 to 64 letters, digits and \
                     `-.!%*_+`'~`)"
                ),
            );
        }
        let (m, st, a, sd) = (&spec.media, &spec.store, &spec.api, &spec.shutdown);
        let tcp_max = s.tcp_max_connections.max(1) as i64;
        for (section, (key, value, lo, hi)) in [
            ("sip", within!(s.max_message_bytes as i64, 1024, 1_048_576)),
            ("sip", within!(s.max_headers as i64, 16, 1024)),
            ("sip", within!(s.session_expires_seconds as i64, 90, 86400)),
            (
                "sip",
                within!(s.max_register_expires_seconds as i64, 60, 86400),
            ),
            ("shutdown", within!(sd.drain_seconds as i64, 0, 86400)),
            ("sip", within!(s.max_calls as i64, 1, 100_000)),
            ("sip", within!(s.workers as i64, 0, 256)),
            (
                "sip",
                within!(s.max_setup_calls as i64, 1, s.max_calls.max(1) as i64),
            ),
            ("sip", within!(s.tcp_header_timeout_seconds as i64, 1, 300)),
            ("sip", within!(s.tcp_body_timeout_seconds as i64, 1, 300)),
            ("sip", within!(s.tcp_idle_timeout_seconds as i64, 1, 86400)),
            ("sip", within!(s.tcp_max_connections as i64, 1, 1_000_000)),
            (
                "sip",
                within!(s.tcp_max_connections_per_address as i64, 1, tcp_max),
            ),
            ("media", within!(m.rtp_timeout_seconds as i64, 0, 3600)),
            ("media", within!(m.rtp_port_min as i64, 1024, 65534)),
            (
                "media",
                within!(m.recordings_max_total_mb as i64, 1, 1_000_000),
            ),
            ("media", within!(m.rtp_realtime_priority as i64, 0, 99)),
            ("store", within!(st.retention_days, 1, 3650)),
            ("store", within!(st.retention_sweep_minutes, 1, 1440)),
            ("api", within!(a.rate_limit_per_second, 1, 100_000)),
            ("api", within!(a.max_body_bytes, 1024, 10_485_760)),
            ("api", within!(a.header_timeout_seconds, 1, 3600)),
            ("api", within!(a.body_timeout_seconds, 1, 3600)),
            ("api", within!(a.max_connections, 1, 1_000_000)),
            ("api", within!(a.max_connections_per_address, 1, 1_000_000)),
        ] {
            self.range(root, &[K(section), K(key)], value, lo, hi);
        }
        if s.max_queue_delay_ms != 0 {
            self.range(
                root,
                &[K("sip"), K("max_queue_delay_ms")],
                s.max_queue_delay_ms as i64,
                10,
                10_000,
            );
        }
        if !m.rtp_port_min.is_multiple_of(2) {
            let pos = self.pos_of(root, &[K("media"), K("rtp_port_min")]);
            self.err(
                pos,
                "media.rtp_port_min",
                "RTP ports must start on an even number",
            );
        }
        if (m.rtp_port_max as i64) < m.rtp_port_min as i64 + 2 {
            let pos = self.pos_of(root, &[K("media"), K("rtp_port_max")]);
            self.err(
                pos,
                "media.rtp_port_max",
                "the RTP port range must hold at least one even/odd pair",
            );
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
                    self.err_at(root, &steps, "give exactly one of `key` and `key_sha256`");
                }
            }
        }
        for (i, origin) in a.cors_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                let steps = [K("api"), K("cors_origins"), I(i)];
                self.err_at(
                    root,
                    &steps,
                    format!("`{origin}` is not an origin like https://app.example.com"),
                );
            }
        }

        self.check_store_and_cluster(root, spec);
        self.check_admin(root, spec);
        self.check_captcha(root, spec);
        self.check_flows_http(root, spec);

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
            if !made_of(&rp.number, "+*#_.-") {
                self.err_at(
                    root,
                    &n,
                    format!("`{}` is not a dialable number", rp.number),
                );
            }
            if !seen.insert(rp.number.clone()) {
                self.err_at(
                    root,
                    &n,
                    format!("route point {} is defined twice", rp.number),
                );
            }
            if !flows_dir.join(&rp.flow).is_file() {
                let f = [K("route_points"), I(i), K("flow")];
                self.err_at(
                    root,
                    &f,
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
                self.err_at(root, &s, format!("trunk `{}` is defined twice", t.name));
            }
            if t.host.trim().is_empty() {
                let s = [K("trunks"), I(i), K("host")];
                self.err_at(root, &s, "the trunk needs a host");
            }
            if t.password.is_some() && t.username.is_none() {
                let s = [K("trunks"), I(i), K("password")];
                self.err_at(root, &s, "a password needs a username");
            }
        }

        // Agents.
        let mut ids = HashSet::new();
        let mut users = HashSet::new();
        for (i, ag) in spec.agents.iter().enumerate() {
            if ag.id.trim().is_empty() || !ids.insert(ag.id.clone()) {
                let s = [K("agents"), I(i), K("id")];
                self.err_at(
                    root,
                    &s,
                    format!("agent id `{}` is empty or used twice", ag.id),
                );
                continue;
            }
            let user = ag.sip_user.clone().unwrap_or_else(|| ag.id.clone());
            if !users.insert(user.clone()) {
                let s = [K("agents"), I(i), K("sip_user")];
                self.err_at(root, &s, format!("SIP user `{user}` belongs to two agents"));
            }
            // With the default REGISTER authentication, only agents given a SIP user need one
            // (an agent without a password cannot register).
            let needs_password = spec.sip.authenticate_invite
                || (spec.sip.authenticate_register && ag.sip_user.is_some());
            if needs_password && ag.password.is_none() {
                let s = [K("agents"), I(i)];
                self.err_at(root, &s, "sip.authenticate_register (the default) or authenticate_invite is on: the agent needs a password (or set sip.authenticate_register: false)");
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
            if !made_of(&q.name, "_-.") {
                self.err_at(
                    root,
                    &at("name"),
                    format!("`{}` is not a queue name (letters, digits, _ - .)", q.name),
                );
            }
            if !names.insert(q.name.clone()) {
                self.err_at(
                    root,
                    &at("name"),
                    format!("queue `{}` is defined twice", q.name),
                );
            }
            for (field, value, lo, hi) in [
                within!(q.slot_capacity, 0, 10_000),
                within!(q.slot_duration_minutes, 5, 1440),
                within!(q.callback_purge_time_minutes, 1, 10_080),
                within!(q.immediate_blackout_minutes, 0, 720),
                within!(q.max_dial_attempts, 1, 20),
                within!(q.retry_interval_seconds, 10, 86_400),
                within!(q.ring_timeout_seconds, 5, 300),
                within!(q.wrap_up_seconds, 0, 3600),
                within!(q.pushed_callback_expiry_minutes, 1, 10_080),
                within!(q.push_notification_threshold_minutes, 0, 1440),
                within!(q.priority, 0, 1_000_000),
                within!(q.ewt_offer_threshold_seconds, 0, 86_400),
                within!(q.max_days_ahead, 1, 90),
                within!(q.service_level_seconds, 1, 3600),
            ] {
                self.range(root, &at(field), value, lo, hi);
            }
            if let Some(amd) = &q.amd {
                let at = |f: &'static str| [K("queues"), I(i), K("amd"), K(f)];
                for (field, value, lo, hi) in [
                    within!(amd.max_human_greeting_ms as i64, 300, 5000),
                    within!(amd.machine_greeting_ms as i64, 1000, 10_000),
                    within!(amd.max_analysis_ms as i64, 2000, 15_000),
                ] {
                    self.range(root, &at(field), value, lo, hi);
                }
                if amd.on_machine == crate::config::MachineAction::Message
                    && amd.message_prompt.is_none()
                {
                    self.err_at(
                        root,
                        &at("on_machine"),
                        "`on_machine: message` needs a `message_prompt`",
                    );
                }
            }
            for (field, name) in [
                ("business_hours", &q.business_hours),
                ("immediate_offer_hours", &q.immediate_offer_hours),
            ] {
                if let Some(n) = name
                    && !spec.business_hours.contains_key(n)
                {
                    let known = keys(&spec.business_hours);
                    self.unknown_name(root, &at(field), "business hours", n, &known);
                }
            }
            if let Some(t) = &q.trunk
                && !spec.trunks.iter().any(|x| &x.name == t)
            {
                let known: Vec<&str> = spec.trunks.iter().map(|x| x.name.as_str()).collect();
                self.unknown_name(root, &at("trunk"), "trunk", t, &known);
            }
            if let Some(app) = &q.callback_application
                && !flows_dir.join(app).is_file()
            {
                self.err_at(
                    root,
                    &at("callback_application"),
                    format!("flow file `{app}` not found in {}", flows_dir.display()),
                );
            }
            if let Some((field, problem)) = q.calling_hours.as_ref().and_then(|h| h.problem()) {
                let steps = [K("queues"), I(i), K("calling_hours"), K(field)];
                self.err_at(root, &steps, problem);
            }
            if let Some((field, problem)) = q.priority_growth.and_then(|g| g.problem()) {
                let steps = [K("queues"), I(i), K("priority_growth"), K(field)];
                self.err_at(root, &steps, problem);
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
        for (i, q) in spec.queues.iter().enumerate() {
            if let Some(u) = &q.push_webhook_url
                && !crate::push::webhook::is_http_url(u)
            {
                self.err_at(
                    root,
                    &[K("queues"), I(i), K("push_webhook_url")],
                    format!("`{u}` is not an http:// or https:// URL"),
                );
            }
        }
        for (field, msg) in spec.push.problems(self.base_dir) {
            let mut steps = vec![K("push")];
            steps.extend(
                field
                    .split('.')
                    .map(|k| Step::Key(Cow::Owned(k.to_string()))),
            );
            self.err_at(root, &steps, msg);
        }
        hours
    }

    /// Administration users: names unique, hashes verifiable, roles given, queues known.
    /// `api.captcha`: a secret, an http(s) verify URL (http only in this build), a score in
    /// 0–1, a timeout in range, and enforcement lists naming configured keys and queues.
    fn check_captcha(&mut self, root: &Node, spec: &ConfigSpec) {
        let Some(c) = &spec.api.captcha else {
            return;
        };
        let at = |f: &'static str| [K("api"), K("captcha"), K(f)];
        if c.secret.trim().is_empty() {
            self.err_at(root, &at("secret"), "the reCAPTCHA secret key is empty");
        }
        if !(c.verify_url.starts_with("https://") || c.verify_url.starts_with("http://")) {
            self.err_at(
                root,
                &at("verify_url"),
                "expected an https:// or http:// URL",
            );
        }
        if !(0.0..=1.0).contains(&c.min_score) {
            self.err_at(root, &at("min_score"), "expected a score from 0.0 to 1.0");
        }
        self.range(root, &at("timeout_ms"), c.timeout_ms, 100, 30_000);
        for (i, k) in c.enforce_keys.iter().enumerate() {
            if !spec.api.keys.iter().any(|x| &x.name == k) {
                let steps = [K("api"), K("captcha"), K("enforce_keys"), I(i)];
                self.err_at(root, &steps, format!("no API key is named `{k}`"));
            }
        }
        for (i, q) in c.enforce_queues.iter().enumerate() {
            if !spec.queues.iter().any(|x| &x.name == q) {
                let steps = [K("api"), K("captcha"), K("enforce_queues"), I(i)];
                self.err_at(root, &steps, format!("no queue is named `{q}`"));
            }
        }
    }

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
            within!(a.login_concurrency, 0, 256),
            within!(a.login_wait_ms, 0, 30_000),
            within!(a.lockout_failures, 1, 1000),
            within!(a.lockout_seconds, 1, 86_400),
            within!(a.lockout_max_seconds, a.lockout_seconds.max(1), 604_800),
        ] {
            self.range(root, &[K("admin"), K(key)], value, min, max);
        }
        let mut names = HashSet::new();
        for (i, u) in a.users.iter().enumerate() {
            let at = |f: &'static str| [K("admin"), K("users"), I(i), K(f)];
            if !crate::api::admin::auth::valid_user_name(&u.name) {
                self.err_at(
                    root,
                    &at("name"),
                    format!(
                        "`{}` is not a user name (1–64 letters, digits, _ - . @)",
                        u.name
                    ),
                );
            } else if !names.insert(u.name.clone()) {
                self.err_at(
                    root,
                    &at("name"),
                    format!("user `{}` is defined twice", u.name),
                );
            }
            if let Err(e) = crate::api::admin::auth::check_hash(&u.password_hash) {
                self.err_at(
                    root,
                    &at("password_hash"),
                    format!("{e}; make one with `boomerang hash-password`"),
                );
            }
            if u.roles.is_empty() {
                self.err_at(
                    root,
                    &at("roles"),
                    "give at least one role: Administrator, Supervisor, Monitor or Developer",
                );
            }
            for (j, q) in u.queues.iter().flatten().enumerate() {
                if !spec.queues.iter().any(|x| &x.name == q) {
                    let steps = [K("admin"), K("users"), I(i), K("queues"), I(j)];
                    let known: Vec<&str> = spec.queues.iter().map(|x| x.name.as_str()).collect();
                    self.unknown_name(root, &steps, "queue", q, &known);
                }
            }
        }
    }
}

/// Whether `s` is non-empty and made of ASCII letters, digits and the characters of `extra`.
fn made_of(s: &str, extra: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
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
