//! What a password guesser cannot get past: a small engine-wide pool of password checks (each
//! Argon2id verification takes 19 MiB and tens of milliseconds of CPU, so 500 at once took the
//! engine to gigabytes), and a per-account lockout with exponential backoff that holds whatever
//! address the guesses come from.
//!
//! The pool is a semaphore sized to the CPU cores: a login waits for a slot at most
//! `admin.login_wait_ms`, and when too many already wait it is refused at once, so neither the
//! hashing memory nor the queue of waiters grows with the attack. The lockout table is keyed
//! by the attempted name (known or not, so a lockout does not tell which names exist) and holds
//! at most [`MAX_ACCOUNTS`] names; when full, names that are not locked are forgotten first
//! ([`crate::net::failures`]).

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AdminSettings;
use crate::net::failures::{FailureTable, Policy};

/// Names whose failures are remembered at most (a few hundred bytes each).
pub const MAX_ACCOUNTS: usize = 10_000;

/// Logins allowed to wait for a password-check slot, per slot; beyond, 503 at once.
const WAITERS_PER_SLOT: usize = 32;

/// Why a login was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account is locked for this many more seconds (at least 1).
    Locked(u64),
    /// Every password-check slot stayed busy; retry in this many seconds.
    Busy(u64),
}

/// The password-check pool and the per-account lockout.
pub struct LoginGuard {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    accounts: Mutex<FailureTable<String>>,
}

/// A password-check slot; dropping it frees the slot.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl LoginGuard {
    /// A guard with `settings`' pool size, wait and lockout.
    pub fn new(settings: &AdminSettings) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let slots = match settings.login_concurrency {
            n if n > 0 => n as usize,
            _ => cores,
        };
        let lockout = Policy::Backoff {
            threshold: settings.lockout_failures.max(1) as u32,
            base: TimeDelta::seconds(settings.lockout_seconds.max(1)),
            max: TimeDelta::seconds(
                settings
                    .lockout_max_seconds
                    .max(settings.lockout_seconds)
                    .max(1),
            ),
        };
        LoginGuard {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            max_waiting: slots * WAITERS_PER_SLOT,
            wait: Duration::from_millis(settings.login_wait_ms.max(0) as u64),
            accounts: Mutex::new(FailureTable::new(lockout, MAX_ACCOUNTS)),
        }
    }

    /// `Err(Locked)` while `name` is locked out.
    pub fn check(&self, name: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        match self.accounts.lock().blocked(name, now) {
            Some(left) => Err(Refusal::Locked(seconds(left))),
            None => Ok(()),
        }
    }

    /// Waits (at most `login_wait_ms`, a network-side deadline on the runtime's timer) for a
    /// password-check slot; `Err(Busy)` when none frees up or too many logins already wait.
    pub async fn slot(&self) -> Result<Slot, Refusal> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(p));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy(1));
        }
        let got = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(p)) => Ok(Slot(p)),
            _ => Err(Refusal::Busy(1)),
        }
    }

    /// Records a wrong password for `name`; returns the lockout it starts, if it starts one.
    pub fn failed(&self, name: &str, now: DateTime<Utc>) -> Option<TimeDelta> {
        // The threshold-th failure locks for `base`; each further one doubles it, up to `max`.
        // When the table is full of locked names, this name goes untracked (the password-check
        // pool still bounds what its guesses cost).
        self.accounts.lock().failed(name, now)
    }

    /// A correct password: the account's failures are forgotten.
    pub fn succeeded(&self, name: &str) {
        self.accounts.lock().clear(name);
    }

    /// Names with remembered failures.
    pub fn tracked(&self) -> usize {
        self.accounts.lock().len()
    }
}

/// Whole seconds, rounded up, at least 1.
fn seconds(left: TimeDelta) -> u64 {
    let ms = left.num_milliseconds().max(0) as u64;
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_442_000, 0).unwrap_or_default()
    }

    fn guard() -> LoginGuard {
        LoginGuard::new(&AdminSettings {
            login_concurrency: 1,
            login_wait_ms: 20,
            lockout_failures: 3,
            lockout_seconds: 10,
            lockout_max_seconds: 35,
            ..Default::default()
        })
    }

    #[test]
    fn failures_lock_with_exponential_backoff_up_to_the_maximum() {
        let g = guard();
        assert_eq!(g.failed("ann", t0()), None);
        assert_eq!(g.failed("ann", t0()), None);
        assert_eq!(g.check("ann", t0()), Ok(()));
        assert_eq!(g.failed("ann", t0()), Some(TimeDelta::seconds(10)));
        assert_eq!(g.check("ann", t0()), Err(Refusal::Locked(10)));
        assert_eq!(g.check("bob", t0()), Ok(()), "per account");
        let later = t0() + TimeDelta::seconds(10);
        assert_eq!(g.check("ann", later), Ok(()));
        assert_eq!(g.failed("ann", later), Some(TimeDelta::seconds(20)));
        assert_eq!(g.failed("ann", later), Some(TimeDelta::seconds(35)));
        g.succeeded("ann");
        assert_eq!(g.check("ann", later), Ok(()));
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn the_table_stays_bounded() {
        let g = guard();
        for i in 0..MAX_ACCOUNTS + 500 {
            g.failed(&format!("u{i}"), t0());
        }
        assert!(g.tracked() <= MAX_ACCOUNTS);
    }

    #[tokio::test]
    async fn slots_are_bounded_and_waiting_has_a_deadline() {
        let g = guard();
        let held = g.slot().await;
        assert!(held.is_ok());
        assert_eq!(g.slot().await.err(), Some(Refusal::Busy(1)));
        drop(held);
        assert!(g.slot().await.is_ok());
    }
}
