//! The number check that runs at every callback creation and again before every dial, under a
//! rule with a long toll-fraud list (500 blocked patterns, 20 countries). Baselines in the same
//! run: parsing the number alone (a queue without a rule), and the same patterns tried one
//! regular expression after another (the design before the single compiled set).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use boomerang::rules::number::parse_e164;
use boomerang::rules::{NumberRule, NumberRuleSpec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use regex::Regex;

const COUNTRIES: [&str; 20] = [
    "FR", "BE", "DE", "ES", "IT", "NL", "LU", "CH", "AT", "PT", "IE", "GB", "US", "CA", "SE", "NO",
    "DK", "FI", "PL", "CZ",
];

/// Blocked patterns in the shapes fraud lists use: premium prefixes and exact numbers.
fn patterns(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 3 {
            0 => format!("^33899{:03}", i % 1000),
            1 => format!("^4490{:04}[0-9]+$", i),
            _ => format!("^3361{:07}$", i * 7919 % 10_000_000),
        })
        .collect()
}

/// Numbers that pass (the common case, and the slowest for the loop: every pattern is tried).
fn numbers() -> Vec<String> {
    (0..64)
        .map(|i| match i % 4 {
            0 => format!("+3361{:07}", 5_000_000 + i),
            1 => format!("+3223{:06}", 100_000 + i),
            2 => format!("+4930{:07}", 1_000_000 + i),
            _ => format!("+1212555{:04}", 100 + i),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pats = patterns(500);
    let rule = NumberRule::new(NumberRuleSpec {
        name: "fraud".into(),
        countries: COUNTRIES.iter().map(|c| c.to_string()).collect(),
        blocked_patterns: pats.clone(),
    })
    .expect("the bench rule is valid");
    let one_by_one: Vec<Regex> = pats
        .iter()
        .map(|p| Regex::new(p).expect("valid pattern"))
        .collect();
    let nums = numbers();
    for n in &nums {
        assert!(rule.check(n).is_ok(), "{n} should pass");
    }
    let mut g = c.benchmark_group("number_check_500_patterns");
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(nums.len() as u64));
    g.bench_function("rule_check_one_set", |b| {
        b.iter(|| {
            for n in &nums {
                black_box(rule.check(black_box(n)).is_ok());
            }
        })
    });
    g.bench_function("baseline_parse_only", |b| {
        b.iter(|| {
            for n in &nums {
                black_box(parse_e164(black_box(n)).is_ok());
            }
        })
    });
    g.bench_function("baseline_parse_then_each_pattern", |b| {
        b.iter(|| {
            for n in &nums {
                let ok = parse_e164(black_box(n)).is_ok_and(|e| {
                    let digits = e.e164.trim_start_matches('+');
                    !one_by_one.iter().any(|p| p.is_match(digits))
                });
                black_box(ok);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
