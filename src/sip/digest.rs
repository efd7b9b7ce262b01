//! Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): MD5 and SHA-256, qop=auth.
//!
//! Issuing keeps no per-nonce state: a nonce is its issue time and a salt plus an HMAC of
//! both under a secret, so any node holding the secret can check it and tell a forged nonce
//! from a merely expired (stale) one. Replay within the nonce's lifetime is caught by the
//! caller with the nonce and nonce-count of [`Verified`] (see `auth_guard`).

use chrono::{DateTime, TimeDelta, Utc};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Hash function of a challenge, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5`, what most SIP phones still speak.
    Md5,
    /// `SHA-256`, RFC 8760.
    Sha256,
}

impl Algorithm {
    /// The token used in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Reads a header token; `-sess` variants are not supported.
    pub fn parse(s: &str) -> Result<Algorithm, DigestError> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(DigestError::UnsupportedAlgorithm(s.to_string()))
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hash_hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }

    /// HA1 = H(user:realm:password), what the response is computed from (and registrars may
    /// store instead of the clear password).
    pub fn ha1(self, user: &str, realm: &str, password: &str) -> String {
        self.hash_hex(&format!("{user}:{realm}:{password}"))
    }
}

/// Why a challenge or credentials were refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// Not a Digest header, or a parameter list we cannot read.
    #[error("malformed digest header: {0}")]
    Malformed(&'static str),
    /// A parameter the scheme needs is absent.
    #[error("digest parameter {0} missing")]
    Missing(&'static str),
    /// Algorithm other than MD5 / SHA-256.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// qop other than auth.
    #[error("unsupported qop {0}")]
    UnsupportedQop(String),
    /// The credentials are for another realm.
    #[error("wrong realm")]
    WrongRealm,
    /// The password lookup knows no such user.
    #[error("unknown user")]
    UnknownUser,
    /// The nonce was not issued by us.
    #[error("invalid nonce")]
    BadNonce,
    /// Our nonce, but too old: challenge again with stale=true.
    #[error("stale nonce")]
    Stale,
    /// The response hash does not match: wrong password.
    #[error("wrong credentials")]
    WrongResponse,
}

/// Parses `Digest a=b, c="d"` into lower-cased names and unquoted values.
pub fn parse_params(header: &str) -> Result<Vec<(String, String)>, DigestError> {
    let header = header.trim();
    let rest = header
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("Digest"))
        .map(|_| &header[6..])
        .ok_or(DigestError::Malformed("scheme is not Digest"))?;
    let bytes: Vec<char> = rest.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i].is_whitespace() || bytes[*i] == ',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != '=' && !bytes[i].is_whitespace() && bytes[i] != ',' {
            i += 1;
        }
        let name: String = bytes[start..i]
            .iter()
            .collect::<String>()
            .to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if name.is_empty() || i >= bytes.len() || bytes[i] != '=' {
            return Err(DigestError::Malformed("parameter without value"));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == '"' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(DigestError::Malformed("unterminated quoted string")),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let c = bytes
                            .get(i + 1)
                            .ok_or(DigestError::Malformed("dangling escape"))?;
                        value.push(*c);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && bytes[i] != ',' && !bytes[i].is_whitespace() {
                value.push(bytes[i]);
                i += 1;
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The response hash of RFC 2617 §3.2.2 / RFC 7616 §3.4.1 (qop=auth or none) from HA1
/// ([`Algorithm::ha1`]), so registrars need not keep clear passwords.
pub fn response_from_ha1(
    algorithm: Algorithm,
    ha1: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha2 = algorithm.hash_hex(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => {
            algorithm.hash_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
        }
        None => algorithm.hash_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// What the password lookup returns for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The clear password.
    Password(String),
    /// H(user:realm:password) for the algorithm in use.
    Ha1(String),
}

/// Who passed a successful [`DigestServer::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated user name.
    pub username: String,
    /// The digest-uri the client signed; callers may compare it with the Request-URI.
    pub uri: String,
    /// The nonce the client answered, and its issue time (Unix seconds), to track its uses.
    pub nonce: String,
    /// When that nonce was issued, Unix seconds.
    pub issued: i64,
    /// The nonce-count (qop=auth), `None` without qop: replay checks need it.
    pub nc: Option<u32>,
}

/// Issues challenges and checks credentials, statelessly.
#[derive(Clone)]
pub struct DigestServer {
    secret: Vec<u8>,
    nonce_ttl: TimeDelta,
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("nonce_ttl", &self.nonce_ttl)
            .finish_non_exhaustive()
    }
}

impl DigestServer {
    /// A server whose nonces are signed with `secret` and live for `nonce_ttl`.
    pub fn new(secret: impl Into<Vec<u8>>, nonce_ttl: TimeDelta) -> Self {
        DigestServer {
            secret: secret.into(),
            nonce_ttl,
        }
    }

    /// How long a nonce lives.
    pub fn nonce_ttl(&self) -> TimeDelta {
        self.nonce_ttl
    }

    /// A nonce: issue time and a random salt in hex, and an HMAC-SHA-256 of both (truncated to
    /// 128 bits). The salt makes each nonce unique, so its uses can be tracked per client.
    pub fn nonce(&self, now: DateTime<Utc>) -> String {
        let signed = format!(
            "{:016x}{:016x}",
            now.timestamp().max(0),
            rand::random::<u64>()
        );
        let mac = hmac_sha256(&self.secret, signed.as_bytes());
        format!("{signed}{}", hex::encode(&mac[..16]))
    }

    /// Checks a nonce: Ok when ours and fresh, `Stale` when ours and old, else `BadNonce`.
    pub fn check_nonce(&self, now: DateTime<Utc>, nonce: &str) -> Result<(), DigestError> {
        let (ts, signed, mac) = (nonce.get(..16), nonce.get(..32), nonce.get(32..));
        let (Some(ts), Some(signed), Some(mac)) = (ts, signed, mac) else {
            return Err(DigestError::BadNonce);
        };
        let expected = hex::encode(&hmac_sha256(&self.secret, signed.as_bytes())[..16]);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(DigestError::BadNonce);
        }
        let issued = i64::from_str_radix(ts, 16).map_err(|_| DigestError::BadNonce)?;
        let age = now.timestamp() - issued;
        if age < -5 {
            return Err(DigestError::BadNonce);
        }
        if age > self.nonce_ttl.num_seconds() {
            return Err(DigestError::Stale);
        }
        Ok(())
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) value for a 401 (407).
    pub fn challenge(
        &self,
        now: DateTime<Utc>,
        realm: &str,
        algorithm: Algorithm,
        stale: bool,
    ) -> String {
        let mut v = format!(
            "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
            quote(realm),
            quote(&self.nonce(now)),
            algorithm.as_str()
        );
        if stale {
            v.push_str(", stale=true");
        }
        v
    }

    /// Checks an Authorization value for `method` in `realm`; `lookup(user)` gives the secret.
    pub fn verify(
        &self,
        now: DateTime<Utc>,
        realm: &str,
        authorization: &str,
        method: &str,
        lookup: impl FnOnce(&str) -> Option<Secret>,
    ) -> Result<Verified, DigestError> {
        let p = parse_params(authorization)?;
        let username = get(&p, "username").ok_or(DigestError::Missing("username"))?;
        let their_realm = get(&p, "realm").ok_or(DigestError::Missing("realm"))?;
        let nonce = get(&p, "nonce").ok_or(DigestError::Missing("nonce"))?;
        let uri = get(&p, "uri").ok_or(DigestError::Missing("uri"))?;
        let response = get(&p, "response").ok_or(DigestError::Missing("response"))?;
        let algorithm = Algorithm::parse(get(&p, "algorithm").unwrap_or("MD5"))?;
        if their_realm != realm {
            return Err(DigestError::WrongRealm);
        }
        let qop = match get(&p, "qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = get(&p, "nc").ok_or(DigestError::Missing("nc"))?;
                let cnonce = get(&p, "cnonce").ok_or(DigestError::Missing("cnonce"))?;
                Some((nc, cnonce))
            }
            Some(q) => return Err(DigestError::UnsupportedQop(q.to_string())),
        };
        self.check_nonce(now, nonce)?;
        let nc = match qop {
            Some((nc, _)) => {
                Some(u32::from_str_radix(nc, 16).map_err(|_| DigestError::Malformed("bad nc"))?)
            }
            None => None,
        };
        let issued = nonce
            .get(..16)
            .and_then(|ts| i64::from_str_radix(ts, 16).ok())
            .ok_or(DigestError::BadNonce)?;
        let ha1 = match lookup(username).ok_or(DigestError::UnknownUser)? {
            Secret::Password(pw) => algorithm.ha1(username, realm, &pw),
            Secret::Ha1(h) => h.to_ascii_lowercase(),
        };
        let expected = response_from_ha1(algorithm, &ha1, method, uri, nonce, qop);
        if !bool::from(
            expected
                .as_bytes()
                .ct_eq(response.to_ascii_lowercase().as_bytes()),
        ) {
            return Err(DigestError::WrongResponse);
        }
        Ok(Verified {
            username: username.to_string(),
            uri: uri.to_string(),
            nonce: nonce.to_string(),
            issued,
            nc,
        })
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Answers a challenge from a trunk: the Authorization value for `method` on `uri`.
pub fn respond(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> Result<String, DigestError> {
    let cnonce = super::message::random_token();
    respond_with_cnonce(challenge, method, uri, user, password, &cnonce, 1)
}

/// As [`respond`] with a given cnonce and nonce-count, for retries and reproducible tests.
pub fn respond_with_cnonce(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let p = parse_params(challenge)?;
    let realm = get(&p, "realm").ok_or(DigestError::Missing("realm"))?;
    let nonce = get(&p, "nonce").ok_or(DigestError::Missing("nonce"))?;
    let algorithm_token = get(&p, "algorithm");
    let algorithm = Algorithm::parse(algorithm_token.unwrap_or("MD5"))?;
    let qop_auth = match get(&p, "qop") {
        None => false,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                true
            } else {
                return Err(DigestError::UnsupportedQop(list.to_string()));
            }
        }
    };
    let nc = format!("{nc:08x}");
    let qop = qop_auth.then_some((nc.as_str(), cnonce));
    let ha1 = algorithm.ha1(user, realm, password);
    let response = response_from_ha1(algorithm, &ha1, method, uri, nonce, qop);
    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri),
        quote(&response)
    );
    if let Some(a) = algorithm_token {
        v.push_str(&format!(", algorithm={a}"));
    }
    if qop_auth {
        v.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quote(cnonce)));
    }
    if let Some(opaque) = get(&p, "opaque") {
        v.push_str(&format!(", opaque={}", quote(opaque)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).single().unwrap()
    }

    /// The response in the RFCs' examples: Mufasa GETs /dir/index.html, first use of the nonce.
    fn mufasa(alg: Algorithm, realm: &str, password: &str, nonce: &str, cnonce: &str) -> String {
        let ha1 = alg.ha1("Mufasa", realm, password);
        response_from_ha1(
            alg,
            &ha1,
            "GET",
            "/dir/index.html",
            nonce,
            Some(("00000001", cnonce)),
        )
    }

    #[test]
    fn rfc2617_section_3_5_example() {
        let r = mufasa(
            Algorithm::Md5,
            "testrealm@host.com",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "0a4f113b",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_section_3_9_1_examples() {
        let args = |alg| {
            mufasa(
                alg,
                "http-auth@example.org",
                "Circle of Life",
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            )
        };
        assert_eq!(
            args(Algorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(args(Algorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn client_response_matches_the_rfc2617_example() {
        let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let v = respond_with_cnonce(
            challenge,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        )
        .unwrap();
        let p = parse_params(&v).unwrap();
        assert_eq!(
            get(&p, "response"),
            Some("6629fae49393a05397450978507c4ef1")
        );
        assert_eq!(get(&p, "nc"), Some("00000001"));
        assert_eq!(get(&p, "opaque"), Some("5ccc069c403ebaf9f0171e9517f40e41"));
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn challenge_and_verify_round_trip_for_both_algorithms() {
        let server = DigestServer::new(b"s3cret".to_vec(), TimeDelta::seconds(300));
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let ch = server.challenge(t0(), "boomerang", alg, false);
            assert!(ch.contains(&format!("algorithm={}", alg.as_str())));
            let auth = respond(&ch, "REGISTER", "sip:boomerang", "1001", "pw").unwrap();
            let ok = server
                .verify(
                    t0() + TimeDelta::seconds(10),
                    "boomerang",
                    &auth,
                    "REGISTER",
                    |u| (u == "1001").then(|| Secret::Password("pw".into())),
                )
                .unwrap();
            assert_eq!(ok.username, "1001");
            assert_eq!(ok.uri, "sip:boomerang");
            let wrong = server.verify(t0(), "boomerang", &auth, "REGISTER", |_| {
                Some(Secret::Password("nope".into()))
            });
            assert_eq!(wrong, Err(DigestError::WrongResponse));
        }
    }

    #[test]
    fn stored_ha1_works_like_a_password() {
        let server = DigestServer::new(b"k".to_vec(), TimeDelta::seconds(60));
        let ch = server.challenge(t0(), "r", Algorithm::Md5, false);
        let auth = respond(&ch, "INVITE", "sip:x@r", "u", "pw").unwrap();
        let ha1 = Algorithm::Md5.hash_hex("u:r:pw");
        assert!(
            server
                .verify(t0(), "r", &auth, "INVITE", |_| Some(Secret::Ha1(ha1)))
                .is_ok()
        );
    }

    #[test]
    fn nonces_expire_as_stale_and_forgeries_are_refused() {
        let server = DigestServer::new(b"k".to_vec(), TimeDelta::seconds(60));
        let nonce = server.nonce(t0());
        assert_eq!(
            server.check_nonce(t0() + TimeDelta::seconds(60), &nonce),
            Ok(())
        );
        assert_eq!(
            server.check_nonce(t0() + TimeDelta::seconds(61), &nonce),
            Err(DigestError::Stale)
        );
        let other = DigestServer::new(b"other".to_vec(), TimeDelta::seconds(60));
        assert_eq!(other.check_nonce(t0(), &nonce), Err(DigestError::BadNonce));
        assert_eq!(
            server.check_nonce(t0(), "short"),
            Err(DigestError::BadNonce)
        );
        assert!(
            server
                .challenge(t0(), "r", Algorithm::Sha256, true)
                .ends_with("stale=true")
        );
    }

    #[test]
    fn verify_refuses_wrong_realm_unknown_user_and_bad_headers() {
        let server = DigestServer::new(b"k".to_vec(), TimeDelta::seconds(60));
        let ch = server.challenge(t0(), "r", Algorithm::Md5, false);
        let auth = respond(&ch, "INVITE", "sip:x@r", "u", "pw").unwrap();
        assert_eq!(
            server.verify(t0(), "other", &auth, "INVITE", |_| None),
            Err(DigestError::WrongRealm)
        );
        assert_eq!(
            server.verify(t0(), "r", &auth, "INVITE", |_| None),
            Err(DigestError::UnknownUser)
        );
        assert!(matches!(
            server.verify(t0(), "r", "Basic dXNlcg==", "INVITE", |_| None),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            parse_params("Digest realm=\"unterminated"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            respond(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
                "A",
                "u",
                "u",
                "p"
            ),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn quoted_values_keep_escaped_quotes() {
        let p = parse_params(r#"Digest realm="a \"b\" c",nonce=xyz"#).unwrap();
        assert_eq!(get(&p, "realm"), Some("a \"b\" c"));
        assert_eq!(get(&p, "nonce"), Some("xyz"));
    }
}
