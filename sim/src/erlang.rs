//! The Erlang C model (M/M/N, infinite patience, FIFO), the yardstick for the simulator.

/// Erlang C figures for `agents` servers offered `erlangs` of traffic with mean handle time
/// `aht` seconds and a service-level threshold `target` seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    /// Probability a caller waits at all.
    pub p_wait: f64,
    /// Average speed of answer (mean wait over all callers), seconds.
    pub asa: f64,
    /// Fraction of callers answered within the target.
    pub service_level: f64,
    /// Agent occupancy (erlangs ÷ agents).
    pub occupancy: f64,
    /// Mean number of callers waiting (Little's law: arrival rate × ASA).
    pub mean_queue: f64,
}

/// Evaluates Erlang C; `None` when the queue is unstable (`erlangs >= agents`).
pub fn erlang_c(erlangs: f64, agents: u32, aht: f64, target: f64) -> Option<ErlangC> {
    let n = f64::from(agents);
    if agents == 0 || erlangs <= 0.0 || erlangs >= n || aht <= 0.0 {
        return None;
    }
    // Erlang B by the stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=agents {
        b = erlangs * b / (f64::from(k) + erlangs * b);
    }
    let p_wait = n * b / (n - erlangs * (1.0 - b));
    let asa = p_wait * aht / (n - erlangs);
    let service_level = 1.0 - p_wait * (-(n - erlangs) * target / aht).exp();
    Some(ErlangC {
        p_wait,
        asa,
        service_level,
        occupancy: erlangs / n,
        mean_queue: erlangs / aht * asa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_example() {
        let e = erlang_c(10.0, 14, 180.0, 20.0).unwrap();
        assert!((e.p_wait - 0.1741).abs() < 5e-4, "{e:?}");
        assert!((e.asa - 7.84).abs() < 0.01, "{e:?}");
        assert!((e.service_level - 0.888).abs() < 1e-3, "{e:?}");
    }

    #[test]
    fn unstable_or_empty_is_refused() {
        assert!(erlang_c(10.0, 10, 180.0, 20.0).is_none());
        assert!(erlang_c(1.0, 0, 180.0, 20.0).is_none());
        let one = erlang_c(0.5, 1, 100.0, 0.0).unwrap();
        assert!((one.p_wait - 0.5).abs() < 1e-12, "M/M/1 waits with ρ");
    }
}
