//! What a wire run measured: percentiles and the SIP figures of the run's table.

use super::*;

/// Percentiles of a sample, milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Millis {
    /// Sample size.
    pub n: usize,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Millis {
    pub(super) fn of(mut xs: Vec<f64>) -> Millis {
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        // Nearest rank.
        let pick = |q: f64| (n > 0).then(|| xs[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        Millis {
            n,
            mean: (n > 0).then(|| xs.iter().sum::<f64>() / n as f64),
            p50: pick(0.50),
            p95: pick(0.95),
            p99: pick(0.99),
            max: xs.last().copied(),
        }
    }
}

/// SIP figures of a wire run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WireStats {
    /// The engine's address.
    pub target: String,
    /// The simulator's user agent.
    pub local: String,
    /// INVITEs sent by callers.
    pub attempted: usize,
    /// Answered with a 2xx.
    pub ok: usize,
    /// Not answered: a final non-2xx, a timeout, or no RTP port / user agent.
    pub failed: usize,
    /// Failures by status code (`timeout` when the simulator gave up and cancelled).
    pub failures: BTreeMap<String, usize>,
    /// INVITE → 200 OK.
    pub setup_ms: Millis,
    /// INVITE → first provisional response (post-dial delay).
    pub pdd_ms: Millis,
    /// Answered calls the engine ended (BYE from the engine).
    pub ended_by_engine: usize,
    /// Answered calls the caller ended (patience, or the longest-call limit).
    pub ended_by_caller: usize,
    /// Most caller calls in progress at once.
    pub max_concurrent: usize,
    /// Callers who waited for a free slot (concurrency limit).
    pub delayed_by_limit: usize,
    /// Seconds from the first INVITE to the last.
    pub dial_span_seconds: f64,
    /// INVITEs per second over that span.
    pub calls_per_second: f64,
    /// Agents registered (200 to REGISTER).
    pub agents_registered: usize,
    /// Registrations refused or unanswered.
    pub agent_registration_failures: usize,
    /// INVITEs the engine sent to agents' phones.
    pub agent_calls: usize,
    /// INVITEs the engine sent to customers (callbacks through the trunk).
    pub customer_calls: usize,
    /// Customer calls answered.
    pub customer_answered: usize,
    /// INVITEs to numbers that are no simulated agent or customer (answered 404).
    pub unknown_calls: usize,
}

impl WireStats {
    /// Appends the SIP section of the terminal table.
    pub fn write_table(&self, out: &mut String) {
        use std::fmt::Write as _;
        let ms = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "SIP (wire mode) against {} from {}",
            self.target, self.local
        );
        let _ = writeln!(
            out,
            "  calls attempted {}, ok {}, failed {} ({:.3}%){}",
            self.attempted,
            self.ok,
            self.failed,
            if self.attempted > 0 {
                self.failed as f64 * 100.0 / self.attempted as f64
            } else {
                0.0
            },
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    self.failures
                        .iter()
                        .map(|(k, v)| format!("{k}×{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        for (name, m) in [
            ("setup time (INVITE→200)", &self.setup_ms),
            ("post-dial delay (INVITE→1xx)", &self.pdd_ms),
        ] {
            let _ = writeln!(
                out,
                "  {name:<30} ms: p50 {}  p95 {}  p99 {}  max {}  mean {}  (n={})",
                ms(m.p50),
                ms(m.p95),
                ms(m.p99),
                ms(m.max),
                ms(m.mean),
                m.n
            );
        }
        let _ = writeln!(
            out,
            "  {:.1} calls/s over {:.1}s; at most {} up at once ({} waited for the limit); ended by engine {}, by caller {}",
            self.calls_per_second,
            self.dial_span_seconds,
            self.max_concurrent,
            self.delayed_by_limit,
            self.ended_by_engine,
            self.ended_by_caller
        );
        let _ = writeln!(
            out,
            "  agents registered {} (failed {}), calls to agents {}, callbacks to customers {} (answered {}), unknown {}",
            self.agents_registered,
            self.agent_registration_failures,
            self.agent_calls,
            self.customer_calls,
            self.customer_answered,
            self.unknown_calls
        );
    }
}
