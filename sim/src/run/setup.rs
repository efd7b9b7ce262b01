//! What a run is built from: the scenario's agents, the engine configuration with the
//! scenario's overrides, the arrival instants, and the check that both agree.

use super::*;

/// One generated agent.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    /// Id.
    pub id: String,
    /// Profile index.
    pub profile: usize,
    /// Working window (seconds from the start).
    pub shift: (f64, f64),
    /// Breaks (every, length), seconds.
    pub breaks: Option<(f64, f64)>,
}

/// The agents a scenario generates, in order.
pub fn agent_plan(s: &Scenario) -> Vec<AgentPlan> {
    let mut out = Vec::new();
    for (pi, p) in s.spec.agents.iter().enumerate() {
        for n in 1..=p.count {
            out.push(AgentPlan {
                id: format!("{}-{n:03}", p.profile),
                profile: pi,
                shift: p
                    .shift
                    .map(|sh| (sh.from.0, sh.to.0))
                    .unwrap_or((0.0, f64::INFINITY)),
                breaks: p.breaks.map(|b| (b.every.0, b.length.0)),
            });
        }
    }
    out
}

/// The engine configuration with the scenario's overrides: its agents, and optionally its
/// route points, queues and flows directory; the store goes to `data_dir`.
pub fn build_config(s: &Scenario, data_dir: &Path) -> Result<Config, SimError> {
    let path = s.engine_path();
    let text = std::fs::read_to_string(&path).map_err(|source| SimError::Read {
        file: path.clone(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // The file as written must be valid on its own (errors then point into it).
    let original = Config::load(&path).map_err(|e| SimError::Config(e.to_string()))?;
    let root = yaml::parse(&text).map_err(|d| SimError::Config(d.render(&text)))?;
    let mut json = root.to_json();
    let Some(obj) = json.as_object_mut() else {
        return Err(SimError::Config(format!(
            "{}: the configuration is not a mapping",
            path.display()
        )));
    };
    let flows_dir = match &s.spec.flows_dir {
        Some(d) => s.dir.join(d),
        None => original.flows_dir(),
    };
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    obj.insert(
        "flows_dir".into(),
        abs(flows_dir).to_string_lossy().into_owned().into(),
    );
    if let Some(rp) = &s.spec.route_points {
        obj.insert("route_points".into(), rp.clone());
    }
    if let Some(q) = &s.spec.queues {
        obj.insert("queues".into(), q.clone());
    }
    obj.insert(
        "store".into(),
        serde_json::json!({ "data_dir": data_dir.to_string_lossy() }),
    );
    let agents: Vec<serde_json::Value> = agent_plan(s)
        .iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "name": a.id,
                "skills": s.spec.agents[a.profile].skills,
            })
        })
        .collect();
    obj.insert("agents".into(), agents.into());
    let merged = serde_json::to_string_pretty(&json)
        .map_err(|e| SimError::Config(format!("cannot merge the scenario: {e}")))?;
    Config::from_str_in(&merged, &base).map_err(|e| {
        SimError::Config(format!(
            "{} with the scenario's agents, queues and route points: {e}",
            path.display()
        ))
    })
}

/// Arrival instants (seconds from the start, sorted) with their stream.
pub fn arrivals(s: &Scenario, seed: u64) -> Result<Vec<(f64, usize)>, SimError> {
    let dur = s.spec.duration.0;
    let mut out = Vec::new();
    for (i, a) in s.spec.arrivals.iter().enumerate() {
        let mut rng = rng_for(seed ^ 0x0A77_1BA1, i as u64);
        if let Some(rate) = a.rate_per_hour {
            poisson(&mut rng, &|_| rate, dur, i, &mut out);
        } else if let Some(table) = &a.hourly {
            let rate = |t: f64| table[(t / 3600.0) as usize % table.len()];
            poisson(&mut rng, &rate, dur, i, &mut out);
        } else if let Some(csv) = &a.csv {
            let file = s.dir.join(csv);
            let text = std::fs::read_to_string(&file).map_err(|source| SimError::Read {
                file: file.clone(),
                source,
            })?;
            for (n, line) in text.lines().enumerate() {
                let cell = line.split(',').next().unwrap_or("").trim();
                if cell.is_empty() || cell.starts_with('#') {
                    continue;
                }
                match cell.parse::<f64>() {
                    Ok(t) if t.is_finite() && t >= 0.0 => {
                        if t < dur {
                            out.push((t, i));
                        }
                    }
                    Ok(_) | Err(_) if n == 0 => {} // a header
                    _ => {
                        return Err(SimError::Csv {
                            file,
                            line: n + 1,
                            message: format!("`{cell}` is not an offset in seconds ≥ 0"),
                        });
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(out)
}

/// Poisson arrivals with a rate (per hour) that is constant within each hour.
fn poisson(
    rng: &mut StdRng,
    rate: &dyn Fn(f64) -> f64,
    dur: f64,
    stream: usize,
    out: &mut Vec<(f64, usize)>,
) {
    let mut t = 0.0;
    while t < dur {
        let per_sec = rate(t) / 3600.0;
        let hour_end = ((t / 3600.0).floor() + 1.0) * 3600.0;
        if per_sec <= 0.0 {
            t = hour_end;
            continue;
        }
        let next = t + dist::exponential(rng, 1.0 / per_sec);
        if next >= hour_end {
            // Memoryless: start again at the hour with the next hour's rate.
            t = hour_end;
            continue;
        }
        t = next;
        if t < dur {
            out.push((t, stream));
        }
    }
}

/// Checks that the configuration has the scenario's route points (with flows) and queues, and
/// loads the flows.
pub fn check_against(s: &Scenario, config: &Config) -> Result<FlowSet, SimError> {
    let at = |i: usize, queue: bool| {
        s.arrival_pos
            .get(i)
            .map(|p| if queue { p.1 } else { p.0 })
            .unwrap_or_default()
    };
    for (i, a) in s.spec.arrivals.iter().enumerate() {
        if config.route_point(&a.route_point).is_none() {
            return Err(SimError::Mismatch(s.diagnose(
                at(i, false),
                &format!("arrivals[{i}].route_point"),
                &format!(
                    "route point {} is not in the engine configuration",
                    a.route_point
                ),
            )));
        }
        if config.queue(&a.queue).is_none() {
            return Err(SimError::Mismatch(s.diagnose(
                at(i, true),
                &format!("arrivals[{i}].queue"),
                &format!("queue {} is not in the engine configuration", a.queue),
            )));
        }
    }
    let flows = FlowSet::load(config, None).map_err(|errs| {
        SimError::Flows(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    for (i, a) in s.spec.arrivals.iter().enumerate() {
        if flows.for_number(config, &a.route_point).is_none() {
            return Err(SimError::Mismatch(s.diagnose(
                at(i, false),
                &format!("arrivals[{i}].route_point"),
                &format!("route point {} has no loaded flow", a.route_point),
            )));
        }
    }
    Ok(flows)
}
