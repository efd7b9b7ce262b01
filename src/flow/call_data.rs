//! A call's attached data (the Call Data block) and how it reaches the agent's phone: one SIP
//! header per entry under a configured prefix (`X-Boomerang-order: A-17`) and, when
//! configured, one RFC 7433 `User-to-User` header. Keys and values come from callers and API
//! clients, so everything is bounded and made safe for a header here.

use std::collections::BTreeMap;

/// Entries kept per call; more are dropped (logged) so that an INVITE stays small.
pub const MAX_ENTRIES: usize = 32;
/// Bytes kept of a value.
pub const MAX_VALUE_BYTES: usize = 256;
/// Bytes of User-to-User data before hex encoding (RFC 7433 implementations expect ≤ 128).
pub const MAX_UUI_BYTES: usize = 128;

/// A call's attached data, key → value, in key order.
pub type CallData = BTreeMap<String, String>;

/// Whether `b` may appear in a SIP header name (RFC 3261 `token`).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Whether `key` may be written in a Call Data block (a token, at most 64 bytes).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.bytes().all(is_token_byte)
}

/// `key` made into a header-name part: other bytes become `-`, at most 64 bytes.
fn safe_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii() && is_token_byte(c as u8) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// `v` without control characters (no CR/LF can end the header), cut to
/// [`MAX_VALUE_BYTES`] on a character boundary, trimmed.
pub fn safe_value(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_VALUE_BYTES {
            break;
        }
        out.push(c);
    }
    out.trim().to_string()
}

/// Adds `key = value` to `data` unless it is full; false when the entry was dropped.
pub fn attach(data: &mut CallData, key: &str, value: &str) -> bool {
    let key = safe_key(key);
    if key.is_empty() || (!data.contains_key(&key) && data.len() >= MAX_ENTRIES) {
        return false;
    }
    data.insert(key, safe_value(value));
    true
}

/// `map` (a callback's user data) as call data, made header-safe and bounded.
pub fn from_map(map: &BTreeMap<String, String>) -> CallData {
    let mut d = CallData::new();
    for (k, v) in map {
        attach(&mut d, k, v);
    }
    d
}

/// Percent-encoding of everything but unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SIP headers carrying `data` on the agent leg: one per entry named `prefix` + key, and
/// with `user_to_user` a `User-to-User` header (hex of `k=v&k=v`, the whole pairs that fit
/// in [`MAX_UUI_BYTES`]; `encoding=hex;purpose=call-data`).
pub fn sip_headers(data: &CallData, prefix: &str, user_to_user: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = data
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    if user_to_user && !data.is_empty() {
        let mut uui = String::new();
        for (k, v) in data {
            let pair = format!("{}={}", url_encode(k), url_encode(v));
            let extra = pair.len() + usize::from(!uui.is_empty());
            if uui.len() + extra > MAX_UUI_BYTES {
                continue;
            }
            if !uui.is_empty() {
                uui.push('&');
            }
            uui.push_str(&pair);
        }
        let hex: String = uui.bytes().map(|b| format!("{b:02x}")).collect();
        if !hex.is_empty() {
            out.push((
                "User-to-User".into(),
                format!("{hex};encoding=hex;purpose=call-data"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_keys_and_values_cannot_break_the_header() {
        let mut d = CallData::new();
        assert!(attach(&mut d, "or der\r\nVia", "A-17\r\nBYE sip:x SIP/2.0"));
        let h = sip_headers(&d, "X-Boomerang-", false);
        assert_eq!(
            h,
            [(
                "X-Boomerang-or-der--Via".to_string(),
                "A-17BYE sip:x SIP/2.0".to_string()
            )]
        );
        let long = "é".repeat(400);
        assert!(attach(&mut d, "long", &long));
        assert_eq!(d["long"].len(), MAX_VALUE_BYTES);
    }

    #[test]
    fn entries_are_bounded() {
        let mut d = CallData::new();
        for i in 0..MAX_ENTRIES {
            assert!(attach(&mut d, &format!("k{i}"), "v"));
        }
        assert!(!attach(&mut d, "one_more", "v"));
        // An existing key may still change.
        assert!(attach(&mut d, "k0", "w"));
        assert_eq!(d.len(), MAX_ENTRIES);
    }

    #[test]
    fn user_to_user_is_hex_of_url_encoded_pairs_within_128_bytes() {
        let mut d = CallData::new();
        attach(&mut d, "order", "A 17");
        attach(&mut d, "tier", "gold");
        let h = sip_headers(&d, "X-B-", true);
        let (name, value) = h.last().unwrap();
        assert_eq!(name, "User-to-User");
        let hex = value
            .strip_suffix(";encoding=hex;purpose=call-data")
            .unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(String::from_utf8(bytes).unwrap(), "order=A%2017&tier=gold");
        attach(&mut d, "big", &"x".repeat(200));
        let h = sip_headers(&d, "X-B-", true);
        let uui = &h.last().unwrap().1;
        // `big` (first in key order) does not fit: the pairs after it still do.
        assert!(uui.len() <= MAX_UUI_BYTES * 2 + ";encoding=hex;purpose=call-data".len());
        assert!(
            uui.starts_with(
                &"order="
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        );
    }
}
