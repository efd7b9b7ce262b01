//! REGISTER: the registrar, kept registrations put back after a restart, and user lookups.

use super::*;

impl Endpoint {
    pub(super) fn registrar_aor_of_user(&self, user: &str) -> Option<String> {
        self.registrar
            .aors()
            .into_iter()
            .find(|aor| user_of_uri(aor) == user)
    }

    /// Registrations kept across a restart: bound again and their users told they registered.
    pub(super) fn restore_registrations(&mut self, list: Vec<PhoneRegistration>) {
        let now = self.now;
        for r in list {
            let bindings: Vec<Binding> = r
                .contacts
                .into_iter()
                .filter(|c| c.seconds_left > 0)
                .map(|c| c.binding(now))
                .collect();
            if bindings.is_empty() || self.sources.contains_key(&r.user) {
                continue;
            }
            self.registrar.restore(r.aor, bindings);
            self.sources.insert(r.user.clone(), r.source);
            self.notify(Notice::Registration {
                user: r.user.clone(),
                registered: true,
            });
        }
    }

    pub(super) fn on_register(&mut self, key: TransactionKey, req: rsip::Request, peer: Peer) {
        let user = header_value(&req, "To")
            .and_then(|t| message::name_addr_parts(&t).map(|(uri, _)| user_of_uri(&uri)))
            .unwrap_or_default();
        if !self.handler.knows_user(&user) {
            tracing::debug!(user, from = %peer.addr, "REGISTER for an unknown user");
            self.respond_with(&key, message::response_for(&req, 404, "Not Found"));
            return;
        }
        if let Err(resp) = self.authenticate_register(&req, peer) {
            self.respond_with(&key, resp);
            return;
        }
        let now = self.now;
        match self.registrar.process(now, &req) {
            Ok(outcome) => {
                let user = user_of_uri(&outcome.aor);
                self.respond_with(&key, outcome.response.clone());
                self.notify(Notice::RegistrationChanged(PhoneRegistration {
                    user: user.clone(),
                    aor: outcome.aor.clone(),
                    source: peer,
                    contacts: outcome
                        .bindings
                        .iter()
                        .map(|b| ContactLease::of(b, now))
                        .collect(),
                }));
                if outcome.bindings.is_empty() {
                    self.sources.remove(&user);
                    if outcome.unregistered {
                        self.notify(Notice::Registration {
                            user: user.clone(),
                            registered: false,
                        });
                    }
                } else {
                    let first = !self.sources.contains_key(&user);
                    self.sources.insert(user.clone(), peer);
                    if first {
                        self.notify(Notice::Registration {
                            user: user.clone(),
                            registered: true,
                        });
                    }
                }
            }
            Err(e) => {
                let resp = e.response(&req);
                self.respond_with(&key, resp);
            }
        }
    }
}
