//! Digest authentication of REGISTERs and INVITEs we receive (RFC 3261 §22, RFC 7616).

use super::*;

impl Endpoint {
    /// Digest check of a REGISTER: `Err` carries the response to send instead (401 with a
    /// challenge, or 403 when the credentials belong to someone else).
    pub(super) fn authenticate_register(
        &mut self,
        req: &rsip::Request,
        peer: Peer,
    ) -> Result<(), rsip::Response> {
        if !self.authenticate_register {
            return Ok(());
        }
        self.authenticate(req, "To", "REGISTER", peer)
    }

    /// Digest check of a request whose `who` header (To for REGISTER, From for INVITE) names
    /// the user who must prove it, from `peer`. A replayed nonce use and every failure count
    /// against the user and the source address; a blocked one gets 503 with Retry-After and is
    /// not verified (see `auth_guard`).
    pub(super) fn authenticate(
        &mut self,
        req: &rsip::Request,
        who: &str,
        method: &str,
        peer: Peer,
    ) -> Result<(), rsip::Response> {
        let Some(auth) = &self.register_auth else {
            return Ok(());
        };
        let now = auth.clock.now();
        let digest = &self.shared.digest;
        let guards = &self.shared.auth;
        let challenge = |stale: bool| {
            let mut resp = message::response_for(req, 401, "Unauthorized");
            // MD5 first: many phones (and SIPp) answer only the first challenge instead of the
            // first they support (RFC 8760 §2.4); SHA-256 beside it only when asked for, as
            // some phones give up on a challenge they cannot answer.
            let algorithms: &[digest::Algorithm] = if auth.offer_sha256 {
                &[digest::Algorithm::Md5, digest::Algorithm::Sha256]
            } else {
                &[digest::Algorithm::Md5]
            };
            for &alg in algorithms {
                resp.headers.push(Header::Other(
                    "WWW-Authenticate".into(),
                    digest.challenge(now, &auth.realm, alg, stale),
                ));
            }
            resp
        };
        let to_user = header_value(req, who)
            .and_then(|t| message::name_addr_parts(&t).map(|(uri, _)| user_of_uri(&uri)))
            .unwrap_or_default();
        let source = peer.addr.ip();
        let blocked = guards.lock().failures.blocked(&to_user, source, now);
        if let Some(wait) = blocked {
            let mut resp = message::response_for(req, 503, "Service Unavailable");
            resp.headers
                .push(Header::RetryAfter(rsip::headers::RetryAfter::new(
                    (wait.num_seconds() + 1).to_string(),
                )));
            return Err(resp);
        }
        let Some(header) = header_value(req, "Authorization") else {
            return Err(challenge(false));
        };
        let verified = digest.verify(now, &auth.realm, &header, method, |user| {
            auth.passwords
                .get(user)
                .map(|p| digest::Secret::Password(p.clone()))
        });
        // What failed, and whether the answer is 403 (someone else's valid credentials).
        let (failure, forbidden) = match verified {
            Ok(v) if v.username == to_user => {
                let ttl = digest.nonce_ttl().num_seconds();
                let mut guard = guards.lock();
                match guard.nonce_uses.record(now, ttl, &v.nonce, v.issued, v.nc) {
                    Ok(()) => {
                        guard.failures.succeeded(&to_user);
                        return Ok(());
                    }
                    Err(NonceRefusal::Stale) => return Err(challenge(true)),
                    Err(NonceRefusal::Replayed) => ("replayed credentials".to_string(), false),
                }
            }
            Ok(v) => (format!("credentials of `{}`", v.username), true),
            Err(digest::DigestError::Stale) => return Err(challenge(true)),
            Err(e) => (e.to_string(), false),
        };
        let blocked = guards.lock().failures.failed(&to_user, source, now);
        tracing::warn!(
            user = %to_user,
            from = %peer.addr,
            method,
            error = %failure,
            blocked,
            "authentication failed"
        );
        if forbidden {
            return Err(message::response_for(req, 403, "Forbidden"));
        }
        Err(challenge(false))
    }
}
