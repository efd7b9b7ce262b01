//! REGISTER processing (RFC 3261 §10.3): the bindings of agents' phones to their
//! addresses-of-record, with expiry so the engine can log out agents whose phones vanished.
//!
//! Authentication happens before [`Registrar::process`] (see `digest`). Contact URIs are
//! compared after lower-casing scheme and host; URI parameters are compared as written.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rsip::Header;
use rsip::headers::UntypedHeader;
use thiserror::Error;

use super::deadlines::Deadlines;
use super::message::{self, cseq, header_value, header_values, name_addr_parts, split_commas};

/// Limits on the registration interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shorter non-zero intervals get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer intervals are cut to this.
    pub max_expires: u32,
    /// Used when neither the contact nor the request says.
    pub default_expires: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
        }
    }
}

/// Why a REGISTER was refused; each maps to the response RFC 3261 asks for.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RegistrarError {
    /// Malformed or contradictory request (400).
    #[error("Bad Request: {0}")]
    BadRequest(&'static str),
    /// An interval below the minimum (423, with Min-Expires).
    #[error("Interval Too Brief")]
    IntervalTooBrief {
        /// The value for the Min-Expires header.
        min_expires: u32,
    },
    /// Same Call-ID with a CSeq not above the binding's (§10.3 step 7): the update fails (500).
    #[error("Out Of Order Request")]
    OutOfOrder,
}

impl RegistrarError {
    /// Status code of the error response.
    pub fn status_code(&self) -> u16 {
        match self {
            RegistrarError::BadRequest(_) => 400,
            RegistrarError::IntervalTooBrief { .. } => 423,
            RegistrarError::OutOfOrder => 500,
        }
    }

    /// The error response to send, with Min-Expires on a 423.
    pub fn response(&self, request: &rsip::Request) -> rsip::Response {
        let reason = match self {
            RegistrarError::BadRequest(why) => *why,
            RegistrarError::IntervalTooBrief { .. } => "Interval Too Brief",
            RegistrarError::OutOfOrder => "Out Of Order Request",
        };
        let mut resp = message::response_for(request, self.status_code(), reason);
        if let RegistrarError::IntervalTooBrief { min_expires } = self {
            resp.headers
                .push(Header::MinExpires(rsip::headers::MinExpires::new(
                    min_expires.to_string(),
                )));
        }
        resp
    }
}

/// One contact bound to an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI, as the phone sent it.
    pub uri: String,
    /// Preference among contacts (q parameter), if given.
    pub q: Option<String>,
    /// Call-ID of the REGISTER that last touched this binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// When the binding lapses.
    pub expires_at: Instant,
}

impl Binding {
    /// Seconds left at `now`, rounded down.
    pub fn remaining(&self, now: Instant) -> u32 {
        u32::try_from(self.expires_at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
    }
}

/// A binding with the seconds it has left, as kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLease {
    /// The contact URI.
    pub uri: String,
    /// Its q parameter, if given.
    pub q: Option<String>,
    /// Call-ID of the REGISTER that last touched it.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Seconds left.
    pub seconds_left: u32,
}

impl ContactLease {
    /// The lease of `b` at `now`.
    pub fn of(b: &Binding, now: Instant) -> Self {
        ContactLease {
            uri: b.uri.clone(),
            q: b.q.clone(),
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            seconds_left: b.remaining(now),
        }
    }

    /// The binding it gives at `now`.
    pub fn binding(self, now: Instant) -> Binding {
        Binding {
            uri: self.uri,
            q: self.q,
            call_id: self.call_id,
            cseq: self.cseq,
            expires_at: now + Duration::from_secs(u64::from(self.seconds_left)),
        }
    }
}

/// What a successful REGISTER did.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOutcome {
    /// The address-of-record (canonical To URI).
    pub aor: String,
    /// The AOR's bindings after the request.
    pub bindings: Vec<Binding>,
    /// True when this request removed the AOR's last binding (the agent's phone went away).
    pub unregistered: bool,
    /// The 200 OK listing every current contact with its remaining expires.
    pub response: rsip::Response,
}

/// The binding table.
#[derive(Debug, Default)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: HashMap<String, Vec<Binding>>,
    /// Each AOR's earliest binding expiry, so expiring costs no scan of the table.
    expiry: Deadlines<String>,
}

/// A contact of the request, with the interval that applies to it.
struct RequestedContact {
    uri: String,
    q: Option<String>,
    expires: u32,
}

impl Registrar {
    /// An empty registrar.
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            aors: HashMap::new(),
            expiry: Deadlines::default(),
        }
    }

    /// The current bindings of an AOR (expired ones are only dropped by [`Registrar::expire`]).
    pub fn bindings(&self, aor: &str) -> &[Binding] {
        self.aors.get(aor).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of AORs with at least one binding.
    pub fn len(&self) -> usize {
        self.aors.len()
    }

    /// Every address-of-record with at least one binding.
    pub fn aors(&self) -> Vec<String> {
        self.aors
            .iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }

    /// Applies a REGISTER (already authenticated) at `now`.
    pub fn process(
        &mut self,
        now: Instant,
        request: &rsip::Request,
    ) -> Result<RegisterOutcome, RegistrarError> {
        if request.method != rsip::Method::Register {
            return Err(RegistrarError::BadRequest("Not A REGISTER"));
        }
        let to = header_value(request, "To").ok_or(RegistrarError::BadRequest("Missing To"))?;
        let aor = aor_of(&to).ok_or(RegistrarError::BadRequest("Bad To URI"))?;
        let call_id = header_value(request, "Call-ID")
            .ok_or(RegistrarError::BadRequest("Missing Call-ID"))?;
        let (seq, _) = cseq(request).ok_or(RegistrarError::BadRequest("Bad CSeq"))?;
        let header_expires = match header_value(request, "Expires") {
            Some(v) => Some(parse_interval(&v).ok_or(RegistrarError::BadRequest("Bad Expires"))?),
            None => None,
        };

        let contact_values: Vec<String> = header_values(request, "Contact")
            .iter()
            .flat_map(|v| {
                split_commas(v)
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let had_bindings = !self.bindings(&aor).is_empty();
        let mut list = self.aors.get(&aor).cloned().unwrap_or_default();

        if contact_values.iter().any(|c| c == "*") {
            // §10.3 step 6: "*" only alone and only with Expires: 0.
            if contact_values.len() != 1 || header_expires != Some(0) {
                return Err(RegistrarError::BadRequest("Invalid Wildcard Contact"));
            }
            for b in &list {
                check_order(b, &call_id, seq)?;
            }
            list.clear();
        } else {
            let requested = self.requested_contacts(&contact_values, header_expires)?;
            for c in requested {
                let existing = list.iter().position(|b| same_uri(&b.uri, &c.uri));
                if let Some(i) = existing {
                    check_order(&list[i], &call_id, seq)?;
                    list.remove(i);
                }
                if c.expires > 0 {
                    list.push(Binding {
                        uri: c.uri,
                        q: c.q,
                        call_id: call_id.clone(),
                        cseq: seq,
                        expires_at: now + Duration::from_secs(u64::from(c.expires)),
                    });
                }
            }
        }

        let mut response = message::response_for(request, 200, "OK");
        for b in &list {
            let mut v = format!("<{}>;expires={}", b.uri, b.remaining(now));
            if let Some(q) = &b.q {
                v.push_str(&format!(";q={q}"));
            }
            response
                .headers
                .push(Header::Contact(rsip::headers::Contact::new(v)));
        }
        let unregistered = had_bindings && list.is_empty();
        self.expiry.set(&aor, earliest(&list));
        if list.is_empty() {
            self.aors.remove(&aor);
        } else {
            self.aors.insert(aor.clone(), list.clone());
        }
        Ok(RegisterOutcome {
            aor,
            bindings: list,
            unregistered,
            response,
        })
    }

    fn requested_contacts(
        &self,
        values: &[String],
        header_expires: Option<u32>,
    ) -> Result<Vec<RequestedContact>, RegistrarError> {
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let (uri, params) =
                name_addr_parts(v).ok_or(RegistrarError::BadRequest("Bad Contact"))?;
            if !uri.contains(':') {
                return Err(RegistrarError::BadRequest("Bad Contact"));
            }
            let param = |n: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == n)
                    .and_then(|(_, v)| v.clone())
            };
            let expires = match param("expires") {
                Some(e) => parse_interval(&e).ok_or(RegistrarError::BadRequest("Bad Expires"))?,
                None => header_expires.unwrap_or(self.config.default_expires),
            };
            if expires != 0 && expires < self.config.min_expires {
                return Err(RegistrarError::IntervalTooBrief {
                    min_expires: self.config.min_expires,
                });
            }
            out.push(RequestedContact {
                uri,
                q: param("q"),
                expires: expires.min(self.config.max_expires),
            });
        }
        Ok(out)
    }

    /// Puts back an AOR's bindings kept across a restart (nothing when `bindings` is empty).
    pub fn restore(&mut self, aor: String, bindings: Vec<Binding>) {
        if !bindings.is_empty() {
            self.expiry.set(&aor, earliest(&bindings));
            self.aors.insert(aor, bindings);
        }
    }

    /// Drops bindings past their time; returns the AORs that lost their last contact.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        while let Some(aor) = self.expiry.pop_due(now) {
            let Some(list) = self.aors.get_mut(&aor) else {
                continue;
            };
            list.retain(|b| b.expires_at > now);
            if list.is_empty() {
                self.aors.remove(&aor);
                gone.push(aor);
            } else {
                let next = earliest(list);
                self.expiry.set(&aor, next);
            }
        }
        gone.sort();
        gone
    }

    /// The earliest instant at which a binding lapses, for the driver's timer.
    pub fn next_expiry(&mut self) -> Option<Instant> {
        self.expiry.earliest()
    }
}

/// The earliest expiry among `bindings`.
fn earliest(bindings: &[Binding]) -> Option<Instant> {
    bindings.iter().map(|b| b.expires_at).min()
}

/// §10.3 step 7: the same Call-ID must come with a higher CSeq.
fn check_order(b: &Binding, call_id: &str, seq: u32) -> Result<(), RegistrarError> {
    if b.call_id == call_id && seq <= b.cseq {
        return Err(RegistrarError::OutOfOrder);
    }
    Ok(())
}

/// Delta-seconds; absurdly large values are saturated (then clamped to the maximum).
fn parse_interval(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u32>().unwrap_or(u32::MAX))
}

/// The canonical address-of-record of a To value: scheme:user@host, scheme and host lower-cased.
pub fn aor_of(to: &str) -> Option<String> {
    let (uri, _) = name_addr_parts(to)?;
    let (scheme, rest) = uri.split_once(':')?;
    let rest = rest.split([';', '?']).next()?;
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    Some(match user {
        Some(u) => format!("{scheme}:{u}@{host}"),
        None => format!("{scheme}:{host}"),
    })
}

fn same_uri(a: &str, b: &str) -> bool {
    fn norm(u: &str) -> String {
        match u.rsplit_once('@') {
            Some((user, host)) => {
                let (scheme, user) = user.split_once(':').unwrap_or(("", user));
                format!(
                    "{}:{user}@{}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase()
                )
            }
            None => u.to_ascii_lowercase(),
        }
    }
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::test_support::request;

    fn register(
        contacts: &[&str],
        expires: Option<&str>,
        call_id: &str,
        seq: u32,
    ) -> rsip::Request {
        let mut text = format!(
            "REGISTER sip:example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK{seq}{call_id}\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:1001@Example.COM>\r\n\
             From: <sip:1001@example.com>;tag=a1\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {seq} REGISTER\r\n"
        );
        for c in contacts {
            text.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            text.push_str(&format!("Expires: {e}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        request(&text)
    }

    fn contacts_of(resp: &rsip::Response) -> Vec<String> {
        header_values(resp, "Contact")
    }

    const AOR: &str = "sip:1001@example.com";

    /// A fresh registrar at t0 = now once a first REGISTER (Call-ID c1, CSeq 1) of `contacts`
    /// was accepted: the registrar, t0 and that REGISTER's outcome.
    fn registered(
        contacts: &[&str],
        expires: Option<&str>,
    ) -> (Registrar, Instant, RegisterOutcome) {
        let mut reg = Registrar::new(RegistrarConfig::default());
        let t0 = crate::clock::monotonic_now();
        let out = reg.process(t0, &register(contacts, expires, "c1", 1));
        (reg, t0, out.expect("the first REGISTER is accepted"))
    }

    #[test]
    fn binds_several_contacts_and_lists_them_in_the_200() {
        let (reg, _, out) = registered(
            &["<sip:1001@192.0.2.10:5060>", "<sip:1001@192.0.2.11>;q=0.5"],
            Some("600"),
        );
        assert_eq!(out.aor, AOR);
        assert_eq!(out.response.status_code.code(), 200);
        assert_eq!(
            contacts_of(&out.response),
            vec![
                "<sip:1001@192.0.2.10:5060>;expires=600",
                "<sip:1001@192.0.2.11>;expires=600;q=0.5"
            ]
        );
        assert_eq!(reg.bindings(AOR).len(), 2);
        assert!(!out.unregistered);
    }

    #[test]
    fn contact_expires_param_beats_header_and_max_is_clamped() {
        let (mut reg, t0, out) =
            registered(&["<sip:a@h1>;expires=120", "<sip:b@h2>"], Some("99999"));
        let remaining: Vec<u32> = out.bindings.iter().map(|b| b.remaining(t0)).collect();
        assert_eq!(remaining, vec![120, 3600]);
        let out = reg
            .process(t0, &register(&["<sip:c@h3>"], None, "c2", 1))
            .unwrap();
        assert_eq!(out.bindings[2].remaining(t0), 3600, "default");
    }

    #[test]
    fn too_brief_interval_gets_423_with_min_expires() {
        let mut reg = Registrar::new(RegistrarConfig::default());
        let req = register(&["<sip:a@h1>"], Some("30"), "c1", 1);
        let err = reg
            .process(crate::clock::monotonic_now(), &req)
            .unwrap_err();
        assert_eq!(err, RegistrarError::IntervalTooBrief { min_expires: 60 });
        let resp = err.response(&req);
        assert_eq!(resp.status_code.code(), 423);
        assert_eq!(header_value(&resp, "Min-Expires").as_deref(), Some("60"));
        assert!(reg.is_empty(), "nothing bound");
    }

    #[test]
    fn refresh_moves_the_expiry_and_keeps_one_binding() {
        let (mut reg, t0, _) = registered(&["<sip:a@h1>"], Some("300"));
        let later = t0 + Duration::from_secs(200);
        let out = reg
            .process(later, &register(&["<SIP:a@H1>"], Some("300"), "c1", 2))
            .unwrap();
        assert_eq!(out.bindings.len(), 1);
        assert_eq!(out.bindings[0].expires_at, later + Duration::from_secs(300));
        assert_eq!(out.bindings[0].cseq, 2);
    }

    #[test]
    fn expires_zero_removes_one_contact_and_reports_the_last() {
        let (mut reg, t0, _) = registered(&["<sip:a@h1>", "<sip:b@h2>"], None);
        let out = reg
            .process(t0, &register(&["<sip:a@h1>;expires=0"], None, "c1", 2))
            .unwrap();
        assert_eq!(out.bindings.len(), 1);
        assert!(!out.unregistered);
        let out = reg
            .process(t0, &register(&["<sip:b@h2>"], Some("0"), "c1", 3))
            .unwrap();
        assert!(out.unregistered);
        assert!(contacts_of(&out.response).is_empty());
        assert!(reg.is_empty());
    }

    #[test]
    fn wildcard_removes_all_only_with_expires_zero() {
        let (mut reg, t0, _) = registered(&["<sip:a@h1>", "<sip:b@h2>"], None);
        assert_eq!(
            reg.process(t0, &register(&["*"], Some("60"), "c1", 2)),
            Err(RegistrarError::BadRequest("Invalid Wildcard Contact"))
        );
        assert_eq!(
            reg.process(t0, &register(&["*"], None, "c1", 2))
                .unwrap_err()
                .status_code(),
            400
        );
        assert!(
            reg.process(t0, &register(&["*", "<sip:a@h1>"], Some("0"), "c1", 2))
                .is_err()
        );
        let out = reg
            .process(t0, &register(&["*"], Some("0"), "c2", 1))
            .unwrap();
        assert!(out.unregistered);
        assert!(reg.bindings(AOR).is_empty());
    }

    #[test]
    fn same_call_id_needs_a_higher_cseq() {
        let mut reg = Registrar::new(RegistrarConfig::default());
        let t0 = crate::clock::monotonic_now();
        reg.process(t0, &register(&["<sip:a@h1>"], None, "c1", 5))
            .unwrap();
        for seq in [4, 5] {
            let err = reg
                .process(t0, &register(&["<sip:a@h1>"], Some("0"), "c1", seq))
                .unwrap_err();
            assert_eq!(err, RegistrarError::OutOfOrder);
            assert_eq!(err.status_code(), 500);
        }
        assert_eq!(
            reg.bindings(AOR).len(),
            1,
            "failed update left the binding alone"
        );
        // A different Call-ID (the phone rebooted) may update with any CSeq.
        let out = reg
            .process(t0, &register(&["<sip:a@h1>"], Some("0"), "c9", 1))
            .unwrap();
        assert!(out.unregistered);
        // Wildcard removal also respects ordering.
        reg.process(t0, &register(&["<sip:a@h1>"], None, "c1", 10))
            .unwrap();
        assert_eq!(
            reg.process(t0, &register(&["*"], Some("0"), "c1", 10)),
            Err(RegistrarError::OutOfOrder)
        );
    }

    #[test]
    fn query_without_contact_lists_bindings() {
        let (mut reg, t0, _) = registered(&["<sip:a@h1>"], Some("100"));
        let out = reg
            .process(t0 + Duration::from_secs(40), &register(&[], None, "c1", 2))
            .unwrap();
        assert_eq!(contacts_of(&out.response), vec!["<sip:a@h1>;expires=60"]);
    }

    #[test]
    fn expire_drops_lapsed_bindings_and_names_emptied_aors() {
        let (mut reg, t0, _) =
            registered(&["<sip:a@h1>;expires=60", "<sip:b@h2>;expires=120"], None);
        assert_eq!(reg.next_expiry(), Some(t0 + Duration::from_secs(60)));
        assert!(reg.expire(t0 + Duration::from_secs(59)).is_empty());
        assert!(reg.expire(t0 + Duration::from_secs(60)).is_empty());
        assert_eq!(reg.bindings(AOR).len(), 1);
        assert_eq!(
            reg.expire(t0 + Duration::from_secs(120)),
            vec![AOR.to_string()]
        );
        assert!(reg.is_empty());
        assert_eq!(reg.next_expiry(), None);
    }

    #[test]
    fn bad_values_are_400() {
        let mut reg = Registrar::new(RegistrarConfig::default());
        let t0 = crate::clock::monotonic_now();
        assert_eq!(
            reg.process(t0, &register(&["<sip:a@h1>;expires=soon"], None, "c1", 1))
                .unwrap_err()
                .status_code(),
            400
        );
        assert_eq!(
            aor_of("\"Bob\" <sips:Bob@Biloxi.EXAMPLE.com;transport=tls>;tag=1").as_deref(),
            Some("sips:Bob@biloxi.example.com")
        );
    }
}
