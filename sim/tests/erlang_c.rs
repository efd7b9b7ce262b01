//! Fidelity: on an Erlang C system (one queue, one skill, Poisson arrivals, exponential handle
//! time, no abandonment, FIFO) the simulator's P(wait), ASA and service level agree with the
//! Erlang C formula within confidence intervals built from independent replications; the
//! output also obeys Little's law; the same seed gives the same report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use boomerang_sim::erlang::erlang_c;
use boomerang_sim::{Report, RunOptions, Scenario};

fn scenarios() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The shipped Erlang C scenario with another load, staffing, target and length.
fn erlang_scenario(per_hour: f64, aht: f64, agents: u32, target: f64, hours: f64) -> Scenario {
    let path = scenarios().join("erlang-c.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace("rate_per_hour: 200", &format!("rate_per_hour: {per_hour}"))
        .replace("{exponential: 180}", &format!("{{exponential: {aht}}}"))
        .replace("count: 14", &format!("count: {agents}"))
        .replace("service_level: 20s", &format!("service_level: {target}"))
        .replace("duration: 8h", &format!("duration: {}", hours * 3600.0))
        // Queue-length samples every 10 s are plenty for Little's law and cost less in debug.
        .replace("seed: 1\n", "seed: 1\nsample_every: 10s\n");
    Scenario::from_str_in(&text, &path, &scenarios()).unwrap()
}

fn run(s: &Scenario, seed: u64) -> Report {
    boomerang_sim::run(
        s,
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    )
    .unwrap()
}

/// Replications on two threads (the machine has two cores).
fn replications(s: &Scenario, seeds: std::ops::Range<u64>) -> Vec<Report> {
    let seeds: Vec<u64> = seeds.collect();
    let (a, b) = seeds.split_at(seeds.len() / 2);
    std::thread::scope(|scope| {
        let h = scope.spawn(|| a.iter().map(|&x| run(s, x)).collect::<Vec<_>>());
        let mut rest: Vec<Report> = b.iter().map(|&x| run(s, x)).collect();
        let mut out = h.join().unwrap();
        out.append(&mut rest);
        out
    })
}

/// Mean and standard error of the mean.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn assert_within(name: &str, xs: &[f64], expected: f64) {
    let (m, se) = mean_se(xs);
    eprintln!(
        "{name}: simulated {m:.4} ± {:.4} (3 SE), Erlang C {expected:.4}",
        3.0 * se
    );
    assert!(
        se > 0.0 && (m - expected).abs() <= 3.0 * se,
        "{name}: simulated {m:.4} ± {:.4} (3 SE) does not cover Erlang C {expected:.4}; samples {xs:?}",
        3.0 * se
    );
}

fn check_against_formula(s: &Scenario, erlangs: f64, agents: u32, aht: f64, target: f64) {
    let expected = erlang_c(erlangs, agents, aht, target).unwrap();
    let reports = replications(s, 1..13);
    let f = |g: &dyn Fn(&Report) -> Option<f64>| -> Vec<f64> {
        reports.iter().map(|r| g(r).unwrap()).collect()
    };
    let p_wait = f(&|r| r.overall.p_wait);
    let asa = f(&|r| r.overall.asa_seconds);
    let sl = f(&|r| r.overall.service_level);
    let occ = f(&|r| r.occupancy);
    assert_within("P(wait)", &p_wait, expected.p_wait);
    assert_within("ASA", &asa, expected.asa);
    assert_within("service level", &sl, expected.service_level);
    assert_within("occupancy", &occ, expected.occupancy);
    for r in &reports {
        assert_eq!(r.overall.abandoned, 0, "nobody abandons in Erlang C");
        assert_eq!(
            r.overall.answered, r.overall.offered,
            "everyone is answered"
        );
        assert_eq!(r.overall.still_queued, 0);
        // Little's law: the sampled queue length agrees with arrival rate × mean wait.
        let l = r.overall.mean_queue_length.unwrap();
        let lw = r.overall.arrival_rate_times_wait.unwrap();
        assert!(
            (l - lw).abs() <= 0.05 * lw.max(0.02) + 0.005,
            "Little's law: L = {l:.4}, λW = {lw:.4}"
        );
    }
}

#[test]
fn published_example_10_erlangs_14_agents() {
    // 100 calls per 30 minutes, 180 s mean handle time: 10 Erlangs.
    let e = erlang_c(10.0, 14, 180.0, 20.0).unwrap();
    assert!((e.p_wait - 0.1741).abs() < 5e-4);
    assert!((e.asa - 7.84).abs() < 0.01);
    assert!((e.service_level - 0.888).abs() < 1e-3);
    let s = erlang_scenario(200.0, 180.0, 14, 20.0, 8.0);
    assert_eq!(s.spec.sample_every.0, 10.0);
    check_against_formula(&s, 10.0, 14, 180.0, 20.0);
}

#[test]
fn heavier_load_on_a_small_team() {
    // 5.4 Erlangs on 7 agents (occupancy 77 %), 30 s target: P(wait) ≈ 0.39.
    let s = erlang_scenario(162.0, 120.0, 7, 30.0, 8.0);
    check_against_formula(&s, 5.4, 7, 120.0, 30.0);
}

#[test]
fn the_same_seed_gives_the_same_report_and_another_seed_does_not() {
    let s = Scenario::load(&scenarios().join("erlang-c.yaml")).unwrap();
    let strip = |r: &Report| {
        let mut v = serde_json::to_value(r).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("wall_seconds");
        o.remove("callers_per_second");
        v
    };
    let a = run(&s, 5);
    let b = run(&s, 5);
    let c = run(&s, 6);
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(
        serde_json::to_value(&a.calls).unwrap(),
        serde_json::to_value(&b.calls).unwrap()
    );
    assert_ne!(strip(&a), strip(&c));
}

#[test]
fn demo_scenario_books_and_serves_callbacks_deterministically() {
    let s = Scenario::load(&scenarios().join("demo.yaml")).unwrap();
    let a = run(&s, 7);
    let f = &a.overall;
    assert!(f.offered > 200, "{f:?}");
    let accepted: usize = f.callbacks_accepted.values().sum();
    assert!(accepted > 20, "callbacks booked: {f:?}");
    let done: usize = f.callbacks_completed.values().sum();
    assert_eq!(
        done, accepted,
        "every booked callback has an outcome: {f:?}"
    );
    assert!(
        f.callbacks_completed.get("AGENT").copied().unwrap_or(0) > accepted / 2,
        "most callbacks reach an agent: {f:?}"
    );
    assert!(f.dial_attempts_per_callback.unwrap() >= 1.0);
    assert!(f.abandoned > 0, "patience is finite: {f:?}");
    assert_eq!(
        f.queued,
        f.answered + f.abandoned,
        "every queued caller ends answered or abandoned: {f:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = a.write_svgs(dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    for f in files {
        let svg = std::fs::read_to_string(f).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("<polyline") || svg.contains("<rect x="),
            "{svg}"
        );
    }
    let b = run(&s, 7);
    assert_eq!(
        serde_json::to_value(&a.overall).unwrap(),
        serde_json::to_value(&b.overall).unwrap()
    );
}

#[test]
fn wire_mode_without_a_target_says_what_it_needs() {
    let s = Scenario::load(&scenarios().join("erlang-c.yaml")).unwrap();
    let e = boomerang_sim::run(
        &s,
        &RunOptions {
            mode: boomerang_sim::Mode::Wire,
            ..RunOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("wire mode needs --target HOST:PORT"),
        "{e}"
    );
}

#[test]
fn a_queue_missing_from_the_configuration_is_shown_where_written() {
    let path = scenarios().join("demo.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("queue: Sales_VQ\n", "queue: Nope_VQ\n");
    let s = Scenario::from_str_in(&text, &path, &scenarios()).unwrap();
    let e = boomerang_sim::run(&s, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("demo.yaml:19:12"), "{e}");
    assert!(
        e.contains("queue Nope_VQ is not in the engine configuration"),
        "{e}"
    );
}

#[test]
fn the_sqlite_store_gives_the_same_run_as_the_memory_store() {
    let path = scenarios().join("demo.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("duration: 4h", "duration: 1h")
        .replace("warmup: 15m", "warmup: 0s");
    let memory = Scenario::from_str_in(&text, &path, &scenarios()).unwrap();
    let sqlite = Scenario::from_str_in(
        &text.replace("sample_every: 5s", "sample_every: 5s\nstore: sqlite"),
        &path,
        &scenarios(),
    )
    .unwrap();
    assert_eq!(
        sqlite.spec.store,
        boomerang_sim::scenario::StoreKind::Sqlite
    );
    let (a, b) = (run(&memory, 3), run(&sqlite, 3));
    assert!(a.overall.callbacks_accepted.values().sum::<usize>() > 0);
    assert_eq!(
        serde_json::to_value(&a.overall).unwrap(),
        serde_json::to_value(&b.overall).unwrap()
    );
}

/// SIP mode runs the shipped small scenario through the engine's real user agent in-process:
/// every caller's INVITE is answered 200 OK and ends bridged to an agent or abandoned, the
/// counts are those of virtual mode on the same seed, and the simulated hour takes seconds.
#[test]
fn sip_mode_runs_callers_and_agents_over_real_sip_with_the_virtual_modes_counts() {
    let path = scenarios().join("sip-small.yaml");
    let s = Scenario::load(&path).unwrap();
    let opts = |mode| RunOptions {
        mode,
        ..RunOptions::default()
    };
    let sip = boomerang_sim::run(&s, &opts(boomerang_sim::Mode::Sip)).unwrap();
    let virt = boomerang_sim::run(&s, &opts(boomerang_sim::Mode::Virtual)).unwrap();
    let st = sip.sip.as_ref().expect("the report has its SIP section");
    let n = sip.callers;
    assert!(n > 150, "{n} callers");
    // Every caller spoke SIP with the engine: Route Call answers (200 OK) when it bridges the
    // caller to an agent; a caller who gives up before that CANCELs and gets 487.
    assert_eq!(st.invites, n, "{st:?}");
    assert_eq!(st.answered_200 + st.cancelled, n, "{st:?}");
    assert!(st.failures.is_empty(), "{st:?}");
    assert_eq!(st.registered, 11, "{st:?}");
    // Each call ended bridged to an agent (the agent's BYE, then the engine's to the caller)
    // or abandoned, never both.
    for c in &sip.calls {
        assert!(c.ended, "{c:?}");
        assert!(c.answered.is_some() != c.abandoned.is_some(), "{c:?}");
    }
    let answered = sip.calls.iter().filter(|c| c.answered.is_some()).count();
    let abandoned = sip.calls.iter().filter(|c| c.abandoned.is_some()).count();
    assert!(answered > 0 && abandoned > 0, "{answered} {abandoned}");
    assert_eq!(
        (
            st.answered_200,
            st.agent_invites,
            st.agent_byes,
            st.byes_from_engine
        ),
        (answered, answered, answered, answered),
        "{st:?}"
    );
    assert_eq!(st.byes_from_callers, abandoned, "{st:?}");
    // The same figures as virtual mode on the same seed.
    assert_eq!(sip.callers, virt.callers);
    assert_eq!(
        (
            sip.overall.offered,
            sip.overall.answered,
            sip.overall.abandoned
        ),
        (
            virt.overall.offered,
            virt.overall.answered,
            virt.overall.abandoned
        )
    );
    let waits = |r: &Report| {
        r.calls
            .iter()
            .map(|c| (c.answered, c.abandoned))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        waits(&sip),
        waits(&virt),
        "every caller's answer or abandon instant"
    );
    // A simulated hour in far less than an hour of real time.
    assert!(st.simulated_seconds >= 3600.0, "{st:?}");
    assert!(st.speed_up > 50.0, "{st:?}");
}
