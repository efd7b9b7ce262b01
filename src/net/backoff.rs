//! The pause of a listener's accept loop after an accept error (descriptors or buffers
//! exhausted): accepting again at once would spin, so the loop waits, twice as long after each
//! failure in a row, for connections to close. Shared by the HTTP and SIP/TCP listeners.

use std::time::Duration;

/// Pauses between failed accepts, doubling from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl AcceptBackoff {
    /// Starts at `min` and doubles after each failure in a row, up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        AcceptBackoff {
            min,
            max,
            next: min,
        }
    }

    /// An accept succeeded: the next failure pauses `min` again.
    pub fn succeeded(&mut self) {
        self.next = self.min;
    }

    /// An accept failed: how long to pause before accepting again.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (pause * 2).min(self.max);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_a_success_starts_again() {
        let ms = Duration::from_millis;
        let mut b = AcceptBackoff::new(ms(10), ms(35));
        assert_eq!(b.failed(), ms(10));
        assert_eq!(b.failed(), ms(20));
        assert_eq!(b.failed(), ms(35));
        assert_eq!(b.failed(), ms(35));
        b.succeeded();
        assert_eq!(b.failed(), ms(10));
    }
}
