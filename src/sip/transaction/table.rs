//! The transaction table: routes incoming messages and drives every transaction's timers.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use rsip::SipMessage;

use super::{
    ClientInvite, ClientNonInvite, Event, ServerInvite, ServerNonInvite, Side, Timers, Transaction,
    TransactionError, TransactionKey,
};

/// What the table did with an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Given to an existing transaction (a retransmission is absorbed there).
    Matched(TransactionKey),
    /// A new request: a server transaction was created under this key; the TU handles it.
    NewServer(TransactionKey, rsip::Request),
    /// An ACK with no transaction: the ACK for a 2xx, which belongs to the dialog.
    AckForDialog(rsip::Request),
    /// A response no client transaction expects (e.g. a late 2xx retransmission).
    Stray(rsip::Response),
    /// No usable Via/CSeq to key the message on; drop it.
    Unkeyed,
}

/// The transaction table: routes incoming messages and drives every transaction's timers.
/// Work is proportional to what changed, not to the table's size: transactions touched since
/// the last poll sit in a dirty list, and deadlines in an ordered timer map, so tens of
/// thousands of transactions lingering in their absorb states (Timers J and K) cost nothing.
#[derive(Debug, Default)]
pub struct Transactions {
    timers: Timers,
    map: HashMap<TransactionKey, Transaction>,
    /// Deadline of each transaction that has one, with the sequence number of its timer entry.
    deadlines: HashMap<TransactionKey, (Instant, u64)>,
    /// Every pending deadline, ordered.
    wheel: std::collections::BTreeMap<(Instant, u64), TransactionKey>,
    seq: u64,
    /// Transactions that may have output or events.
    dirty: VecDeque<TransactionKey>,
    in_dirty: std::collections::HashSet<TransactionKey>,
    /// Handed out by `get_mut`: re-examined at the next poll.
    touched: Vec<TransactionKey>,
}

impl Transactions {
    /// An empty table with the given timer values.
    pub fn new(timers: Timers) -> Self {
        Transactions {
            timers,
            ..Default::default()
        }
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `key` names a live transaction (a retransmission, not a new request).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.map.contains_key(key)
    }

    /// Gives back the table's room beyond what it holds (hash tables keep the capacity of
    /// their peak: a flood's tens of thousands of transactions).
    pub fn shrink_to_fit(&mut self) {
        self.map.shrink_to_fit();
        self.deadlines.shrink_to_fit();
        self.dirty.shrink_to_fit();
        self.in_dirty.shrink_to_fit();
        self.touched.shrink_to_fit();
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A transaction by key (it is re-examined at the next poll).
    pub fn get_mut(&mut self, key: &TransactionKey) -> Option<&mut Transaction> {
        if self.map.contains_key(key) {
            self.touched.push(key.clone());
        }
        self.map.get_mut(key)
    }

    /// Records that `key` changed: its deadline is re-read and it may have output.
    fn touch(&mut self, key: &TransactionKey) {
        let next = self.map.get(key).and_then(Transaction::poll_timeout);
        let old = self.deadlines.get(key).copied();
        if old.map(|(at, _)| at) != next {
            if let Some(entry) = old {
                self.wheel.remove(&entry);
                self.deadlines.remove(key);
            }
            if let Some(at) = next {
                self.seq += 1;
                self.wheel.insert((at, self.seq), key.clone());
                self.deadlines.insert(key.clone(), (at, self.seq));
            }
        }
        if self.in_dirty.insert(key.clone()) {
            self.dirty.push_back(key.clone());
        }
    }

    fn sync(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            self.touch(&key);
        }
    }

    fn remove(&mut self, key: &TransactionKey) {
        self.map.remove(key);
        if let Some(entry) = self.deadlines.remove(key) {
            self.wheel.remove(&entry);
        }
    }

    /// Routes a parsed incoming message; `reliable` is true when it came over TCP.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage, reliable: bool) -> Routed {
        let Some(key) = TransactionKey::of(&msg) else {
            return Routed::Unkeyed;
        };
        if let Some(t) = self.map.get_mut(&key) {
            t.handle_message(now, msg);
            self.touch(&key);
            return Routed::Matched(key);
        }
        match msg {
            SipMessage::Response(r) => Routed::Stray(r),
            SipMessage::Request(r) if r.method == rsip::Method::Ack => Routed::AckForDialog(r),
            SipMessage::Request(r) => {
                let t = if r.method == rsip::Method::Invite {
                    Transaction::ServerInvite(ServerInvite::new(
                        now,
                        r.clone(),
                        reliable,
                        self.timers,
                    ))
                } else {
                    Transaction::ServerNonInvite(ServerNonInvite::new(
                        now,
                        r.clone(),
                        reliable,
                        self.timers,
                    ))
                };
                self.map.insert(key.clone(), t);
                self.touch(&key);
                Routed::NewServer(key, r)
            }
        }
    }

    /// Starts a client transaction for `request` (which must carry a Via with a branch).
    pub fn start_client(
        &mut self,
        now: Instant,
        request: rsip::Request,
        reliable: bool,
    ) -> Result<TransactionKey, TransactionError> {
        let key = TransactionKey {
            side: Side::Client,
            ..TransactionKey::of(&SipMessage::Request(request.clone()))
                .ok_or(TransactionError::BadRequest("no Via or CSeq"))?
        };
        let t = if request.method == rsip::Method::Invite {
            Transaction::ClientInvite(ClientInvite::new(now, request, reliable, self.timers))
        } else {
            Transaction::ClientNonInvite(ClientNonInvite::new(now, request, reliable, self.timers))
        };
        self.map.insert(key.clone(), t);
        self.touch(&key);
        Ok(key)
    }

    /// Sends a TU response through the server transaction `key`.
    pub fn send_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        resp: rsip::Response,
    ) -> Result<(), TransactionError> {
        let result = self
            .map
            .get_mut(key)
            .ok_or(TransactionError::BadRequest("no such transaction"))?
            .send_response(now, resp);
        self.touch(key);
        result
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sync();
        while let Some((&(at, seq), _)) = self.wheel.first_key_value() {
            if at > now {
                break;
            }
            let Some(key) = self.wheel.remove(&(at, seq)) else {
                break;
            };
            self.deadlines.remove(&key);
            if let Some(t) = self.map.get_mut(&key) {
                t.handle_timeout(now);
            }
            self.touch(&key);
        }
    }

    /// The earliest deadline over all transactions.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let touched = self
            .touched
            .iter()
            .filter_map(|k| self.map.get(k))
            .filter_map(Transaction::poll_timeout);
        self.wheel
            .first_key_value()
            .map(|((at, _), _)| *at)
            .into_iter()
            .chain(touched)
            .min()
    }

    /// The next message to send, from any transaction. Drain it before `poll_event`.
    pub fn poll_transmit(&mut self) -> Option<(TransactionKey, SipMessage)> {
        self.sync();
        for key in &self.dirty {
            if let Some(t) = self.map.get_mut(key)
                && let Some(m) = t.poll_transmit()
            {
                return Some((key.clone(), m));
            }
        }
        None
    }

    /// The next event from any transaction; terminated transactions leave the table once
    /// their last event has been taken.
    pub fn poll_event(&mut self) -> Option<(TransactionKey, Event)> {
        self.sync();
        while let Some(key) = self.dirty.front().cloned() {
            let event = self.map.get_mut(&key).and_then(Transaction::poll_event);
            match event {
                Some(Event::Terminated) => {
                    self.remove(&key);
                    return Some((key, Event::Terminated));
                }
                Some(e) => {
                    // Its timer may have changed with the event (e.g. a final response).
                    self.touch(&key);
                    return Some((key, e));
                }
                None => {
                    self.dirty.pop_front();
                    self.in_dirty.remove(&key);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn table_creates_server_transactions_and_absorbs_retransmissions() {
        let t0 = crate::clock::monotonic_now();
        let mut table = Transactions::new(Timers::default());
        let inv = invite();
        let Routed::NewServer(key, _) = table.handle_message(t0, inv.clone().into(), false) else {
            panic!("new server transaction expected")
        };
        assert!(
            matches!(table.poll_transmit(), Some((k, _)) if k == key),
            "100 Trying"
        );
        assert_eq!(
            table.handle_message(t0 + ms(500), inv.clone().into(), false),
            Routed::Matched(key.clone())
        );
        assert!(table.poll_transmit().is_some(), "100 Trying again");
        table
            .send_response(t0 + ms(600), &key, resp(&inv, 486))
            .unwrap();
        table.poll_transmit();
        assert_eq!(
            table.handle_message(t0 + ms(700), ack_of(&inv).into(), false),
            Routed::Matched(key.clone())
        );
        assert_eq!(table.poll_event(), Some((key.clone(), Event::AckReceived)));
        // An ACK for a 2xx carries its own branch: it belongs to the dialog.
        let other_ack = req(&ack_of(&inv)
            .to_string()
            .replace("z9hG4bK776asdhds", "z9hG4bKother"));
        assert!(matches!(
            table.handle_message(t0, other_ack.into(), false),
            Routed::AckForDialog(_)
        ));
        let at = table.poll_timeout().unwrap();
        table.handle_timeout(at);
        assert_eq!(table.poll_event(), Some((key, Event::Terminated)));
        assert!(table.is_empty());
    }

    #[test]
    fn table_routes_responses_to_client_transactions() {
        let t0 = crate::clock::monotonic_now();
        let mut table = Transactions::new(Timers::default());
        let reg = register();
        let key = table.start_client(t0, reg.clone(), false).unwrap();
        assert!(table.poll_transmit().is_some());
        assert_eq!(
            table.handle_message(t0 + ms(50), resp(&reg, 200).into(), false),
            Routed::Matched(key.clone())
        );
        assert!(matches!(table.poll_event(), Some((k, Event::Response(_))) if k == key));
        // Our own request looping back is a new server transaction, not a match.
        assert!(matches!(
            table.handle_message(t0, reg.clone().into(), false),
            Routed::NewServer(k, _) if k.side == Side::Server
        ));
        assert_eq!(table.len(), 2);
        let stray = resp(&invite(), 200);
        assert!(matches!(
            table.handle_message(t0, stray.into(), false),
            Routed::Stray(_)
        ));
    }
}
