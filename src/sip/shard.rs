//! The user agent sharded over workers by Call-ID: each worker owns an endpoint (its calls,
//! transactions and deadlines), the transports hand each message to the worker its Call-ID
//! hashes to (a scan of the raw header section, no parse), and commands for a call go to the
//! same worker. What must hold across workers lives in [`Shared`]: the call and setup counts
//! that admission checks (`max_calls`, `max_setup_calls`, exactly), the drain flag, the digest
//! key, nonce uses and failure counts. Registrations stay in one registrar, worker 0's: every
//! REGISTER and every lookup go there (they are rare next to INVITEs, and a user's lookup then
//! needs no fan-out).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::auth_guard::{FailureGuard, NonceUses};
use super::digest::DigestServer;

/// State every worker of one user agent reads and updates.
pub(crate) struct Shared {
    /// Calls (both directions) held by all workers together.
    calls: AtomicUsize,
    /// Inbound calls not yet answered, all workers together.
    setting_up: AtomicUsize,
    /// Shutting down: new inbound calls get 503.
    draining: AtomicBool,
    /// Signs and checks nonces: one key, so a nonce from any worker is good at every other.
    pub(crate) digest: DigestServer,
    /// Nonce uses (replay) and failures per user and source (guessing), across workers.
    pub(crate) auth: Mutex<AuthState>,
}

/// The digest guards behind one lock (taken only for a request carrying credentials).
#[derive(Default)]
pub(crate) struct AuthState {
    /// Every nonce use seen, whichever worker saw it.
    pub(crate) nonce_uses: NonceUses,
    /// Failed attempts per user and per source address.
    pub(crate) failures: FailureGuard,
}

impl Default for Shared {
    fn default() -> Self {
        let key: [u8; 32] = rand::random();
        Shared {
            calls: AtomicUsize::new(0),
            setting_up: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            digest: DigestServer::new(key.to_vec(), chrono::TimeDelta::seconds(300)),
            auth: Mutex::new(AuthState::default()),
        }
    }
}

/// Takes one unit of `counter` if it is below `max`; false (nothing taken) when it is not.
fn claim(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Shared {
    /// Calls held now, all workers together.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::Acquire)
    }

    /// Inbound calls being set up now, all workers together.
    pub(crate) fn setting_up(&self) -> usize {
        self.setting_up.load(Ordering::Acquire)
    }

    /// Admits a new inbound call: a call slot under `max_calls` and a setup slot under
    /// `max_setup_calls`, both or neither; `Err` names the limit reached.
    pub(crate) fn admit_inbound(
        &self,
        max_calls: usize,
        max_setup: usize,
    ) -> Result<(), &'static str> {
        if !claim(&self.calls, max_calls) {
            return Err("max_calls");
        }
        if !claim(&self.setting_up, max_setup) {
            self.calls.fetch_sub(1, Ordering::AcqRel);
            return Err("max_setup_calls");
        }
        Ok(())
    }

    /// Counts a call that needs no admission (one we place, or one put back).
    pub(crate) fn add_call(&self) {
        self.calls.fetch_add(1, Ordering::AcqRel);
    }

    /// A call left its worker.
    pub(crate) fn remove_call(&self) {
        self.calls.fetch_sub(1, Ordering::AcqRel);
    }

    /// `n` inbound calls stopped being set up (answered, or gone).
    pub(crate) fn setup_done(&self, n: usize) {
        self.setting_up.fetch_sub(n, Ordering::AcqRel);
    }

    /// From now on new inbound calls are refused (graceful shutdown).
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// True once [`Shared::drain`] was called.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// The number of endpoint workers for a setting: `0` means one per core available to the
/// process (its CPU affinity counts, so `taskset -c 0` gives one).
pub fn workers_for(setting: usize) -> usize {
    if setting > 0 {
        return setting;
    }
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The worker (of `n`) that owns the call `call_id`: FNV-1a of its bytes, so the same Call-ID
/// always lands on the same worker, from the wire or from a command.
pub(crate) fn worker_of(call_id: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in call_id {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The high bits mix best.
    ((h >> 32) % n as u64) as usize
}

/// The worker (of `n`) a raw message goes to: REGISTER to worker 0 (the registrar's), others
/// by Call-ID, and a message without one (answered with an error) to worker 0.
pub(crate) fn worker_for_message(raw: &[u8], n: usize) -> usize {
    if n <= 1 || raw.starts_with(b"REGISTER ") {
        return 0;
    }
    call_id(raw).map_or(0, |id| worker_of(&id, n))
}

/// The Call-ID of a raw message, read the way the parser reads it (lines split on CRLF, folded
/// lines joined with one space, `i` or `Call-ID` in any case, spaces and tabs trimmed), without
/// parsing anything else; `None` when there is none in the header section.
pub(crate) fn call_id(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    let head = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw, |end| &raw[..end]);
    let folded = |l: &[u8]| l.first().is_some_and(|b| *b == b' ' || *b == b'\t');
    let mut lines = CrLfLines(head).skip(1).peekable(); // after the start line
    while let Some(line) = lines.next() {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if folded(line)
            || !(name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i"))
        {
            continue;
        }
        let raw_value = &line[colon + 1..];
        if !lines.peek().is_some_and(|l| folded(l)) {
            return Some(Cow::Borrowed(trim(raw_value)));
        }
        // Folded: joined as the parser joins them, then trimmed.
        let mut v = raw_value.to_vec();
        while let Some(next) = lines.next_if(|l| folded(l)) {
            v.push(b' ');
            let start = next.iter().position(|b| *b != b' ' && *b != b'\t');
            v.extend_from_slice(&next[start.unwrap_or(next.len())..]);
        }
        return Some(Cow::Owned(trim(&v).to_vec()));
    }
    None
}

/// The lines of a header section, split on CRLF only (as the parser splits them).
struct CrLfLines<'a>(&'a [u8]);

impl<'a> Iterator for CrLfLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.windows(2).position(|w| w == b"\r\n") {
            Some(at) => {
                let line = &self.0[..at];
                self.0 = &self.0[at + 2..];
                Some(line)
            }
            None => Some(std::mem::take(&mut self.0)),
        }
    }
}

/// `s` without leading and trailing spaces and tabs.
fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;

    fn parsed_id(raw: &str) -> Option<String> {
        message::parse(raw.as_bytes())
            .ok()
            .and_then(|m| message::header_value(&m, "Call-ID"))
    }

    const HEAD: &str = "INVITE sip:8000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:8000@127.0.0.1>\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n";

    #[test]
    fn the_scan_reads_the_call_id_the_parser_reads() {
        for line in [
            "Call-ID: abc@host\r\n",
            "call-id:abc@host\r\n",
            "i: abc@host\r\n",
            "I  :\t abc@host \t\r\n",
            "CALL-ID: part one \r\n  part two\r\n",
            "Call-ID:\r\n folded@only\r\n",
        ] {
            let raw = format!("{HEAD}{line}Content-Length: 0\r\n\r\n");
            let scanned =
                call_id(raw.as_bytes()).map(|c| String::from_utf8(c.into_owned()).unwrap());
            assert_eq!(scanned, parsed_id(&raw), "{line:?}");
        }
    }

    #[test]
    fn a_call_id_in_the_body_or_missing_is_none() {
        let raw = format!("{HEAD}Content-Length: 17\r\n\r\nCall-ID: not-me\r\n");
        assert_eq!(call_id(raw.as_bytes()), None);
        assert_eq!(worker_for_message(raw.as_bytes(), 4), 0);
        assert_eq!(call_id(b"garbage"), None);
    }

    #[test]
    fn registers_go_to_worker_zero_and_calls_spread() {
        let reg = "REGISTER sip:127.0.0.1 SIP/2.0\r\nCall-ID: zzz\r\n\r\n";
        assert_eq!(worker_for_message(reg.as_bytes(), 4), 0);
        let mut seen = [0usize; 4];
        for i in 0..400 {
            let id = format!("{i}-call@127.0.0.1");
            let raw = format!("{HEAD}Call-ID: {id}\r\n\r\n");
            let w = worker_for_message(raw.as_bytes(), 4);
            assert_eq!(w, worker_of(id.as_bytes(), 4));
            seen[w] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
        assert_eq!(worker_of(b"anything", 1), 0);
    }

    #[test]
    fn admission_is_exact_and_gives_back_what_it_took() {
        let s = Shared::default();
        assert_eq!(s.admit_inbound(2, 1), Ok(()));
        assert_eq!(s.admit_inbound(2, 1), Err("max_setup_calls"));
        assert_eq!(s.calls(), 1);
        s.setup_done(1);
        assert_eq!(s.admit_inbound(2, 1), Ok(()));
        s.setup_done(1);
        assert_eq!(s.admit_inbound(2, 1), Err("max_calls"));
        s.remove_call();
        assert_eq!((s.calls(), s.setting_up()), (1, 0));
        assert!(!s.draining());
        s.drain();
        assert!(s.draining());
    }
}
