//! Reading what forms send: url-encoded bodies and queries with repeated keys (checkbox lists),
//! the one file of a `multipart/form-data` upload (CSV import), and the date-times the pages
//! use. Every reader is bounded by the body it is given and never fails: a malformed part is
//! simply absent.

use chrono::{DateTime, NaiveDateTime, Utc};

/// The fields of a url-encoded body or query, keys repeated as sent (checkbox lists).
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Percent- and plus-decoding of one url-encoded key or value.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 2;
            }
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `key` (empty when absent).
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Every non-empty value of `key`, in order.
pub fn all<'a>(fields: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, v)| k == key && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
        .collect()
}

/// Whether a checkbox `key` was ticked.
pub fn ticked(fields: &[(String, String)], key: &str) -> bool {
    fields.iter().any(|(k, _)| k == key)
}

/// Percent-encodes a query value.
pub fn urlencode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYY-MM-DDTHH:MM[:SS]` (an HTML `datetime-local`) or RFC 3339, as UTC.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                .ok()
                .map(|n| n.and_utc())
        })
}

/// A date-time as the tables show it (UTC).
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The trimmed text of an optional field, `None` when empty.
pub fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The parts of a `multipart/form-data` body: (field name, content), text fields and files
/// alike; `content_type` gives the boundary. A body that is not multipart has no parts.
pub fn multipart(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 200)
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    for chunk in split_bytes(body, delimiter.as_bytes()).into_iter().skip(1) {
        // The closing delimiter is followed by `--`.
        if chunk.starts_with(b"--") {
            break;
        }
        let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let Some(end) = find(chunk, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&chunk[..end]);
        let content = &chunk[end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .flat_map(|l| l.split(';'))
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string());
        if let Some(name) = name {
            out.push((name, content.to_vec()));
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, sep) {
        out.push(&hay[..i]);
        hay = &hay[i + sep.len()..];
    }
    out.push(hay);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_gives_each_field_and_the_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\n\
Content-Type: text/csv\r\n\r\n+3312,a\r\n+3313,b\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], ("csrf".to_string(), b"abc".to_vec()));
        assert_eq!(parts[1].0, "file");
        assert_eq!(parts[1].1, b"+3312,a\r\n+3313,b".to_vec());
        assert!(multipart("text/plain", body).is_empty());
    }

    #[test]
    fn repeated_keys_are_kept() {
        let f = form_fields(b"state=QUEUED&state=SCHEDULED&q=%2B33+6");
        assert_eq!(all(&f, "state"), vec!["QUEUED", "SCHEDULED"]);
        assert_eq!(field(&f, "q"), "+33 6");
    }
}
