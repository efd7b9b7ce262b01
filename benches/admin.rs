//! What administration security costs. (1) Checking a password: Argon2id as stored, against a
//! salted SHA-256 as the baseline, so the ratio is the work a password guesser pays per guess.
//! (2) The per-request gate of an admin call (bearer session lookup among 50 open sessions +
//! rate-limit bucket), against the public API's gate (SHA-256 of the key compared in constant
//! time) as the baseline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use boomerang::api::admin::auth::{AdminAuth, hash_password, verify_password};
use boomerang::api::ratelimit::RateLimiter;
use boomerang::clock::ManualClock;
use boomerang::config::{AdminSettings, AdminUserSpec};
use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_442_000, 0).expect("valid time")
}

fn bench(c: &mut Criterion) {
    let hash = hash_password("correct horse").expect("hash");
    let salt = [7u8; 16];
    let salted = |p: &str| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(p.as_bytes());
        h.finalize().into()
    };
    let stored = salted("correct horse");
    let mut g = c.benchmark_group("password_check");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.bench_function("argon2id", |b| {
        b.iter(|| verify_password(black_box(&hash), black_box("wrong guess")))
    });
    g.bench_function("baseline_salted_sha256", |b| {
        b.iter(|| bool::from(salted(black_box("wrong guess")).ct_eq(&stored)))
    });
    g.finish();

    let clock = ManualClock::new(t0());
    let auth = AdminAuth::new(
        &AdminSettings {
            users: vec![AdminUserSpec {
                name: "root".into(),
                password_hash: hash.clone(),
                roles: vec![boomerang::api::admin::Role::Administrator],
                queues: None,
            }],
            session_idle_minutes: 20,
            ..Default::default()
        },
        clock.shared(),
    );
    let tokens: Vec<String> = (0..50)
        .map(|_| auth.login("root", "correct horse").expect("login"))
        .collect();
    let limits = RateLimiter::default();
    let key_hash: [u8; 32] = Sha256::digest(b"demo-key").into();
    let mut g = c.benchmark_group("request_gate");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0usize;
    g.bench_function("admin_token_session_and_rate_limit", |b| {
        b.iter(|| {
            i = (i + 1) % tokens.len();
            let u = auth.resolve(black_box(&tokens[i])).expect("live session");
            limits
                .check(&u.name, 1e9, 1e9, t0())
                .expect("within the limit")
        })
    });
    g.bench_function("baseline_api_key_sha256", |b| {
        b.iter(|| {
            let h: [u8; 32] = Sha256::digest(black_box(b"demo-key")).into();
            bool::from(h.ct_eq(&key_hash))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
