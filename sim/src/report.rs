//! The report of a run: per queue and overall figures, as JSON, a terminal table and SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::run::{AgentPlan, CallRecord, Samples};
use crate::scenario::Scenario;

/// The distinct queues of a scenario's arrival streams, in order of first mention.
pub fn queue_names(s: &Scenario) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in &s.spec.arrivals {
        if !out.contains(&a.queue) {
            out.push(a.queue.clone());
        }
    }
    out
}

/// Figures for one queue (or all).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    /// Callers who arrived in the measured window.
    pub offered: usize,
    /// Callers who joined the queue.
    pub queued: usize,
    /// Callers connected to an agent.
    pub answered: usize,
    /// Callers who hung up in queue.
    pub abandoned: usize,
    /// Callers still in queue when the run stopped (the drain limit was reached).
    pub still_queued: usize,
    /// Callers who left the queue for a callback keeping their place (in-queue offer).
    pub left_for_callback: usize,
    /// Callers who left in the IVR without queueing or booking.
    pub left_in_ivr: usize,
    /// Callers offered a callback.
    pub callbacks_offered: usize,
    /// Callbacks booked, by kind (`immediate`, `scheduled`).
    pub callbacks_accepted: BTreeMap<String, usize>,
    /// Callbacks by completion reason (or `NOT_DONE_<state>`).
    pub callbacks_completed: BTreeMap<String, usize>,
    /// Mean dial attempts per callback that ended.
    pub dial_attempts_per_callback: Option<f64>,
    /// Average speed of answer over answered calls, seconds.
    pub asa_seconds: Option<f64>,
    /// Fraction of queued callers who waited at all (abandoned callers count as waiting).
    pub p_wait: Option<f64>,
    /// Fraction of queued callers answered within the threshold.
    pub service_level: Option<f64>,
    /// The threshold, seconds.
    pub service_level_seconds: f64,
    /// Longest time in queue (answered or abandoned), seconds.
    pub longest_wait_seconds: Option<f64>,
    /// Mean time in queue over all queued callers, seconds.
    pub mean_time_in_queue_seconds: Option<f64>,
    /// EWT at arrival minus actual wait, mean over answered calls, seconds.
    pub ewt_mean_error_seconds: Option<f64>,
    /// Root mean square of that error divided by the mean actual wait.
    pub ewt_relative_rmse: Option<f64>,
    /// Calls with both an EWT and a wait.
    pub ewt_samples: usize,
    /// Little's law: mean sampled queue length.
    pub mean_queue_length: Option<f64>,
    /// Little's law: arrival rate into the queue × mean time in queue.
    pub arrival_rate_times_wait: Option<f64>,
}

/// Renders one row of the terminal table for one queue.
type Cell = Box<dyn Fn(&Figures) -> String>;

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario file.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Callers simulated (including the warm-up).
    pub callers: usize,
    /// Measured window, seconds from the start.
    pub window: (f64, f64),
    /// Per queue.
    pub queues: BTreeMap<String, Figures>,
    /// All queues.
    pub overall: Figures,
    /// Agent occupancy: busy (talk and wrap-up) ÷ time on duty (logged in, not on a break)
    /// in the window.
    pub occupancy: Option<f64>,
    /// Agents generated.
    pub agents: usize,
    /// Real time the run took, seconds.
    pub wall_seconds: f64,
    /// Simulated callers per real second.
    pub callers_per_second: f64,
    /// SIP figures (wire mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::wire::WireStats>,
    /// SIP figures (SIP mode only: the engine's user agent in-process).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<crate::sip_mode::SipStats>,
    /// Every caller (left out of the JSON unless asked for).
    #[serde(skip)]
    pub calls: Vec<CallRecord>,
    /// Queue-length samples.
    #[serde(skip)]
    pub samples: Samples,
    /// Queue names in sample order.
    #[serde(skip)]
    pub queue_order: Vec<String>,
}

/// What a run produced, for [`Report::build`].
pub struct RunFacts<'a> {
    /// Seed.
    pub seed: u64,
    /// Callers.
    pub records: Vec<CallRecord>,
    /// Queue lengths.
    pub samples: Samples,
    /// Agent busy intervals (start, length).
    pub busy: &'a [(f64, f64)],
    /// Intervals agents were on duty (start, end).
    pub on_duty: &'a [(f64, f64)],
    /// Agents.
    pub agents: &'a [AgentPlan],
    /// Real seconds.
    pub wall_seconds: f64,
}

fn mean(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, s) = xs.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f64)
}

fn figures(calls: &[&CallRecord], sl: f64, window: f64, queue_len: Option<f64>) -> Figures {
    let mut f = Figures {
        offered: calls.len(),
        service_level_seconds: sl,
        ..Figures::default()
    };
    let mut waits = Vec::new();
    let mut in_queue = Vec::new();
    let mut within = 0usize;
    let mut waited = 0usize;
    let mut ewt = Vec::new();
    let mut attempts = Vec::new();
    for c in calls {
        if let Some(q) = c.queued {
            f.queued += 1;
            if let Some(a) = c.answered {
                f.answered += 1;
                let w = a - q;
                waits.push(w);
                in_queue.push(w);
                if w <= sl {
                    within += 1;
                }
                if w > 0.0 {
                    waited += 1;
                }
                if let Some(p) = c.ewt_predicted {
                    ewt.push((p, w));
                }
            } else if let Some(ab) = c.abandoned {
                f.abandoned += 1;
                waited += 1;
                in_queue.push(ab - q);
            } else if let Some(l) = c.left_for_callback {
                f.left_for_callback += 1;
                in_queue.push(l - q);
            } else {
                f.still_queued += 1;
            }
        } else if c.callback_id.is_none() && c.callback_kind.is_none() {
            f.left_in_ivr += 1;
        }
        if c.callback_offered {
            f.callbacks_offered += 1;
        }
        if let Some(k) = &c.callback_kind {
            *f.callbacks_accepted.entry(k.clone()).or_default() += 1;
        }
        if let Some(r) = &c.callback_reason {
            *f.callbacks_completed.entry(r.clone()).or_default() += 1;
            if !r.starts_with("NOT_DONE") {
                attempts.push(f64::from(c.dial_attempts));
            }
        }
    }
    let served = f.answered + f.abandoned;
    f.asa_seconds = mean(waits.iter().copied());
    if served > 0 {
        f.p_wait = Some(waited as f64 / served as f64);
        f.service_level = Some(within as f64 / served as f64);
    }
    f.longest_wait_seconds = in_queue.iter().copied().reduce(f64::max);
    f.mean_time_in_queue_seconds = mean(in_queue.iter().copied());
    f.dial_attempts_per_callback = mean(attempts.into_iter());
    f.ewt_samples = ewt.len();
    if !ewt.is_empty() {
        f.ewt_mean_error_seconds = mean(ewt.iter().map(|(p, w)| p - w));
        let rmse = mean(ewt.iter().map(|(p, w)| (p - w).powi(2))).map(f64::sqrt);
        let actual = mean(ewt.iter().map(|(_, w)| *w));
        f.ewt_relative_rmse = match (rmse, actual) {
            (Some(r), Some(a)) if a > 0.0 => Some(r / a),
            _ => None,
        };
    }
    f.mean_queue_length = queue_len;
    if window > 0.0 {
        let total: f64 = in_queue.iter().sum();
        f.arrival_rate_times_wait = Some(total / window);
    }
    f
}

impl Report {
    /// Computes the figures of a run over calls arriving after the warm-up.
    pub fn build(s: &Scenario, r: RunFacts<'_>) -> Report {
        let (w0, w1) = (s.spec.warmup.0, s.spec.duration.0);
        let window = w1 - w0;
        let sl = s.spec.service_level.0;
        let names = queue_names(s);
        let measured: Vec<&CallRecord> = r
            .records
            .iter()
            .filter(|c| c.arrival >= w0 && c.arrival < w1)
            .collect();
        let in_window: Vec<&(f64, Vec<usize>)> = r
            .samples
            .iter()
            .filter(|(t, _)| *t >= w0 && *t < w1)
            .collect();
        let qlen = |i: Option<usize>| {
            mean(in_window.iter().map(|(_, l)| match i {
                Some(i) => l.get(i).copied().unwrap_or(0) as f64,
                None => l.iter().sum::<usize>() as f64,
            }))
        };
        let mut queues = BTreeMap::new();
        for (qi, q) in names.iter().enumerate() {
            let calls: Vec<&CallRecord> = measured
                .iter()
                .copied()
                .filter(|c| s.spec.arrivals.get(c.stream).is_some_and(|a| &a.queue == q))
                .collect();
            queues.insert(q.clone(), figures(&calls, sl, window, qlen(Some(qi))));
        }
        let overall = figures(&measured, sl, window, qlen(None));
        let callers = r.records.len();
        let busy: f64 = r
            .busy
            .iter()
            .map(|(st, len)| ((st + len).min(w1) - st.max(w0)).max(0.0))
            .sum();
        let staffed: f64 = r
            .on_duty
            .iter()
            .map(|(a, b)| (b.min(w1) - a.max(w0)).max(0.0))
            .sum();
        Report {
            scenario: s.file.display().to_string(),
            seed: r.seed,
            callers,
            window: (w0, w1),
            queues,
            overall,
            occupancy: (staffed > 0.0).then(|| busy / staffed),
            agents: r.agents.len(),
            wall_seconds: r.wall_seconds,
            callers_per_second: callers as f64 / r.wall_seconds.max(1e-9),
            wire: None,
            sip: None,
            calls: r.records,
            samples: r.samples,
            queue_order: names,
        }
    }

    /// A readable table for the terminal.
    pub fn table(&self) -> String {
        let opt = |x: Option<f64>, d: usize| match x {
            Some(v) => format!("{v:.d$}"),
            None => "-".into(),
        };
        let pct = |x: Option<f64>| match x {
            Some(v) => format!("{:.1}%", v * 100.0),
            None => "-".into(),
        };
        let mut cols: Vec<(&str, &Figures)> =
            self.queues.iter().map(|(k, v)| (k.as_str(), v)).collect();
        if cols.len() > 1 {
            cols.push(("ALL", &self.overall));
        }
        let rows: Vec<(&str, Cell)> = vec![
            ("offered", Box::new(|f: &Figures| f.offered.to_string())),
            ("queued", Box::new(|f: &Figures| f.queued.to_string())),
            ("answered", Box::new(|f: &Figures| f.answered.to_string())),
            ("abandoned", Box::new(|f: &Figures| f.abandoned.to_string())),
            (
                "left queue for a callback",
                Box::new(|f: &Figures| f.left_for_callback.to_string()),
            ),
            (
                "still queued at the end",
                Box::new(|f: &Figures| f.still_queued.to_string()),
            ),
            (
                "left in IVR",
                Box::new(|f: &Figures| f.left_in_ivr.to_string()),
            ),
            (
                "callbacks offered",
                Box::new(|f: &Figures| f.callbacks_offered.to_string()),
            ),
            (
                "callbacks accepted",
                Box::new(|f: &Figures| {
                    if f.callbacks_accepted.is_empty() {
                        "0".into()
                    } else {
                        f.callbacks_accepted
                            .iter()
                            .map(|(k, v)| format!("{k}:{v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                }),
            ),
            (
                "callbacks completed",
                Box::new(|f: &Figures| {
                    if f.callbacks_completed.is_empty() {
                        "0".into()
                    } else {
                        f.callbacks_completed
                            .iter()
                            .map(|(k, v)| format!("{k}:{v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                }),
            ),
            (
                "dial attempts/callback",
                Box::new(move |f: &Figures| opt(f.dial_attempts_per_callback, 2)),
            ),
            (
                "ASA (s)",
                Box::new(move |f: &Figures| opt(f.asa_seconds, 2)),
            ),
            ("P(wait>0)", Box::new(move |f: &Figures| pct(f.p_wait))),
            (
                "service level",
                Box::new(move |f: &Figures| {
                    format!("{} in {}s", pct(f.service_level), f.service_level_seconds)
                }),
            ),
            (
                "longest wait (s)",
                Box::new(move |f: &Figures| opt(f.longest_wait_seconds, 1)),
            ),
            (
                "EWT mean error (s)",
                Box::new(move |f: &Figures| opt(f.ewt_mean_error_seconds, 2)),
            ),
            (
                "EWT relative RMSE",
                Box::new(move |f: &Figures| opt(f.ewt_relative_rmse, 3)),
            ),
            (
                "mean queue length",
                Box::new(move |f: &Figures| opt(f.mean_queue_length, 3)),
            ),
            (
                "λ × mean time in queue",
                Box::new(move |f: &Figures| opt(f.arrival_rate_times_wait, 3)),
            ),
        ];
        let w0 = rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|(_, f)| cols.iter().map(|(_, q)| f(q)).collect())
            .collect();
        let widths: Vec<usize> = (0..cols.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([cols[i].0.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let _ = write!(out, "{:w0$}", "");
        for (i, (name, _)) in cols.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", name, w = widths[i]);
        }
        out.push('\n');
        for ((name, _), row) in rows.iter().zip(&cells) {
            let pad = w0 - name.chars().count();
            let _ = write!(out, "{name}{}", " ".repeat(pad));
            for (i, c) in row.iter().enumerate() {
                let _ = write!(out, "  {:>w$}", c, w = widths[i]);
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "occupancy {} over {} agents; {} callers in {:.2}s real ({:.0} callers/s), seed {}",
            pct(self.occupancy),
            self.agents,
            self.callers,
            self.wall_seconds,
            self.callers_per_second,
            self.seed
        );
        if let Some(w) = &self.wire {
            w.write_table(&mut out);
        }
        if let Some(s) = &self.sip {
            s.write_table(&mut out);
        }
        out
    }

    /// Writes `queue-length.svg`, `wait-histogram.svg` and `ewt.svg` into `dir`.
    pub fn write_svgs(&self, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut put = |name: &str, svg: String| -> std::io::Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, svg)?;
            written.push(p);
            Ok(())
        };
        put("queue-length.svg", self.svg_queue_length())?;
        put("wait-histogram.svg", self.svg_wait_histogram())?;
        put("ewt.svg", self.svg_ewt())?;
        Ok(written)
    }

    fn svg_queue_length(&self) -> String {
        let series: Vec<(String, Vec<(f64, f64)>)> = self
            .queue_order
            .iter()
            .enumerate()
            .map(|(i, q)| {
                (
                    q.clone(),
                    self.samples
                        .iter()
                        .map(|(t, l)| (t / 60.0, l.get(i).copied().unwrap_or(0) as f64))
                        .collect(),
                )
            })
            .collect();
        let mut p = Plot::new(
            "Callers waiting",
            "minutes",
            "callers in queue",
            &series_bounds(&series),
        );
        for (i, (name, pts)) in series.iter().enumerate() {
            p.polyline(pts, i, name);
        }
        p.finish()
    }

    fn svg_wait_histogram(&self) -> String {
        let waits: Vec<f64> = self
            .calls
            .iter()
            .filter(|c| c.arrival >= self.window.0 && c.arrival < self.window.1)
            .filter_map(|c| Some(c.answered? - c.queued?))
            .collect();
        let max = waits.iter().copied().fold(0.0, f64::max).max(1.0);
        let bins = 40usize;
        let width = max / bins as f64;
        let mut counts = vec![0usize; bins];
        for w in &waits {
            let b = ((w / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let mut p = Plot::new(
            &format!("Wait before answer ({} answered calls)", waits.len()),
            "seconds",
            "calls",
            &(0.0, max, 0.0, top),
        );
        for (i, c) in counts.iter().enumerate() {
            p.bar(i as f64 * width, (i + 1) as f64 * width, *c as f64);
        }
        p.finish()
    }

    fn svg_ewt(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .calls
            .iter()
            .filter(|c| c.arrival >= self.window.0 && c.arrival < self.window.1)
            .filter_map(|c| Some((c.ewt_predicted?, c.answered? - c.queued?)))
            .collect();
        let max = pts.iter().map(|(a, b)| a.max(*b)).fold(1.0, f64::max);
        let mut p = Plot::new(
            "EWT predicted at arrival vs actual wait",
            "predicted (s)",
            "actual (s)",
            &(0.0, max, 0.0, max),
        );
        p.polyline(&[(0.0, 0.0), (max, max)], 9, "perfect");
        // Thin the cloud so that the file stays small.
        let step = (pts.len() / 5000).max(1);
        for (x, y) in pts.iter().step_by(step) {
            p.dot(*x, *y);
        }
        p.finish()
    }
}

fn series_bounds(series: &[(String, Vec<(f64, f64)>)]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x1, mut y1) = (1.0f64, 1.0f64);
    for (x, y) in pts {
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    (0.0, x1, 0.0, y1)
}

const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#999999",
];

/// A minimal hand-written SVG chart.
struct Plot {
    out: String,
    b: (f64, f64, f64, f64),
    legend: usize,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 50.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Plot {
    fn new(title: &str, xl: &str, yl: &str, b: &(f64, f64, f64, f64)) -> Plot {
        let mut out = String::new();
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>
<rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#333"/>
"##,
            W / 2.0,
            esc(title),
            L + (W - L - R) / 2.0,
            H - 10.0,
            esc(xl),
            T + (H - T - B) / 2.0,
            esc(yl),
            W - L - R,
            H - T - B,
        );
        let mut p = Plot {
            out,
            b: *b,
            legend: 0,
        };
        for i in 0..=5 {
            let f = i as f64 / 5.0;
            let xv = b.0 + f * (b.1 - b.0);
            let yv = b.2 + f * (b.3 - b.2);
            let (x, _) = p.at(xv, b.2);
            let (_, y) = p.at(b.0, yv);
            let _ = writeln!(
                p.out,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><line x1="{L}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                H - B + 16.0,
                tick(xv),
                L - 6.0,
                y + 4.0,
                tick(yv),
                W - R,
            );
        }
        p
    }

    fn at(&self, x: f64, y: f64) -> (f64, f64) {
        let (x0, x1, y0, y1) = self.b;
        let px = L + (x - x0) / (x1 - x0).max(1e-12) * (W - L - R);
        let py = H - B - (y - y0) / (y1 - y0).max(1e-12) * (H - T - B);
        (px, py)
    }

    fn polyline(&mut self, pts: &[(f64, f64)], colour: usize, name: &str) {
        let c = COLOURS[colour % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| {
                let (a, b) = self.at(*x, *y);
                format!("{a:.1},{b:.1}")
            })
            .collect();
        let _ = writeln!(
            self.out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = T + 14.0 + 16.0 * self.legend as f64;
        self.legend += 1;
        let _ = writeln!(
            self.out,
            r#"<text x="{:.1}" y="{ly:.1}" fill="{c}" text-anchor="end">{}</text>"#,
            W - R - 8.0,
            esc(name)
        );
    }

    fn bar(&mut self, x0: f64, x1: f64, h: f64) {
        let (a, top) = self.at(x0, h);
        let (b, bottom) = self.at(x1, 0.0);
        let _ = writeln!(
            self.out,
            r##"<rect x="{a:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#1f77b4" stroke="white" stroke-width="0.5"/>"##,
            (b - a).max(0.0),
            (bottom - top).max(0.0)
        );
    }

    fn dot(&mut self, x: f64, y: f64) {
        let (a, b) = self.at(x, y);
        let _ = writeln!(
            self.out,
            r##"<circle cx="{a:.1}" cy="{b:.1}" r="1.6" fill="#1f77b4" fill-opacity="0.5"/>"##
        );
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

fn tick(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
