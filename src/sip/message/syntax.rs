//! Small grammar pieces shared by the parser and the header helpers: comma lists, parameters,
//! Via hops, quoted strings.

use super::ParseError;

pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Splits on commas outside quoted strings and angle brackets.
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out
}

/// Header parameters in order, names lower-cased; `None` value for flags.
pub type Params = Vec<(String, Option<String>)>;

/// A Via hop parsed by us, tolerant of LWS as RFC 3261 allows and strict about the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper-cased (UDP, TCP, TLS, SCTP, …).
    pub transport: String,
    /// host[:port] as sent.
    pub sent_by: String,
    /// Parameters in order, names lower-cased; `None` value for flags.
    pub params: Params,
}

impl Via {
    /// Parses one via-parm (a single hop, no commas).
    pub fn parse(hop: &str) -> Result<Via, ParseError> {
        let bad = || ParseError::MalformedHeader("Via".into());
        let mut slash = hop.splitn(3, '/');
        let name = slash.next().ok_or_else(bad)?.trim();
        let version = slash.next().ok_or_else(bad)?.trim();
        let rest = slash.next().ok_or_else(bad)?.trim_start();
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(bad());
        }
        if version != "2.0" {
            return Err(ParseError::BadVersion);
        }
        let (transport, rest) = rest.split_once([' ', '\t']).ok_or_else(bad)?;
        if transport.is_empty() || !transport.bytes().all(is_token_char) {
            return Err(bad());
        }
        let mut parts = rest.split(';');
        let sent_by = parts.next().ok_or_else(bad)?.trim();
        if sent_by.is_empty()
            || sent_by.contains([' ', '\t', ',', '<', '>', '"'])
            || !v6_references_valid(sent_by)
        {
            return Err(bad());
        }
        let params = parse_params(parts).ok_or_else(bad)?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            sent_by: sent_by.to_string(),
            params,
        })
    }

    /// The branch parameter, the transaction's name on the wire.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
    }

    /// A parameter's value (`Some("")` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Parses `;name[=value]` parameters, refusing empty ones; None on a malformed parameter.
pub(super) fn parse_params<'a>(parts: impl Iterator<Item = &'a str>) -> Option<Params> {
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        if k.is_empty() || !k.bytes().all(is_token_char) || v.is_some_and(str::is_empty) {
            return None;
        }
        out.push((k.to_ascii_lowercase(), v.map(str::to_string)));
    }
    Some(out)
}

/// True when a SIP URI (after the scheme) carries `?headers`; a `?` in the userinfo does not count.
pub(super) fn has_uri_headers(rest: &str) -> bool {
    let host_part = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    host_part.contains('?')
}

/// True when every bracketed IPv6 reference in `text` holds a valid IPv6 address (RFC 5118
/// §4.9: `[2001:db8:::192.0.2.1]`, three colons in a row, is refused).
pub(super) fn v6_references_valid(text: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let Some(len) = rest[start..].find(']') else {
            return false;
        };
        if rest[start + 1..start + len]
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return false;
        }
        rest = &rest[start + len + 1..];
    }
    true
}

pub(crate) fn find_unquoted(v: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == target {
            return Some(i);
        }
    }
    None
}

pub(super) fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i);
        }
    }
    None
}
