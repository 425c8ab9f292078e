//! In-process decisions/s: palisade's memory limiter vs the governor crate on
//! the same workload (keyed GCRA, same quota, same key sequence, real clocks),
//! plus the full gate decision (lists, limit, risk score).
//!
//! `cargo bench -p palisade-gate --bench limiter`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::{Quota as GQuota, RateLimiter};
use palisade_gate::clock::{Clock, MonotonicClock};
use palisade_gate::gcra::Quota;
use palisade_gate::store::{EvictionPolicy, MemoryStore};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

const KEYS: u64 = 10_000;
const BATCH: u64 = 1_000;

fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_limiter");
    g.throughput(Throughput::Elements(BATCH));
    // 1000 requests/s per key, burst 50: the workload below cycles over 10k
    // keys, so a mix of allowed and, on hot keys, denied decisions.
    for (name, keys) in [("10k_keys", KEYS), ("1_hot_key", 1)] {
        let q = Quota::new(1000, Duration::from_secs(1), 50).unwrap();
        let store = MemoryStore::new(1_000_000, 64, EvictionPolicy::EvictSoonest);
        let clock = MonotonicClock::new();
        let mut i = 0u64;
        g.bench_function(BenchmarkId::new("palisade", name), |b| {
            b.iter(|| {
                let mut allowed = 0u32;
                for _ in 0..BATCH {
                    i = (i + 1) % keys;
                    let k = i.to_le_bytes();
                    allowed += store
                        .check(&k, q, 1, clock.now_ns())
                        .is_some_and(|o| o.allowed) as u32;
                }
                black_box(allowed)
            })
        });
        let gq = GQuota::per_second(NonZeroU32::new(1000).unwrap())
            .allow_burst(NonZeroU32::new(50).unwrap());
        let lim = RateLimiter::keyed(gq);
        let mut j = 0u64;
        g.bench_function(BenchmarkId::new("governor", name), |b| {
            b.iter(|| {
                let mut allowed = 0u32;
                for _ in 0..BATCH {
                    j = (j + 1) % keys;
                    allowed += lim.check_key(&j).is_ok() as u32;
                }
                black_box(allowed)
            })
        });
    }
    g.finish();
}

/// Two threads hammering the same limiter (contention on shards / dashmap).
fn keyed_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_limiter_2_threads");
    g.throughput(Throughput::Elements(2 * BATCH * 10));
    let q = Quota::new(1000, Duration::from_secs(1), 50).unwrap();
    let store = Arc::new(MemoryStore::new(
        1_000_000,
        64,
        EvictionPolicy::EvictSoonest,
    ));
    let clock = Arc::new(MonotonicClock::new());
    g.bench_function("palisade", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (store, clock) = (store.clone(), clock.clone());
                    s.spawn(move || {
                        for i in 0..BATCH * 10 {
                            let k = ((i * 7919 + t) % KEYS).to_le_bytes();
                            black_box(store.check(&k, q, 1, clock.now_ns()));
                        }
                    });
                }
            })
        })
    });
    let gq = GQuota::per_second(NonZeroU32::new(1000).unwrap())
        .allow_burst(NonZeroU32::new(50).unwrap());
    let lim = Arc::new(RateLimiter::keyed(gq));
    g.bench_function("governor", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let lim = lim.clone();
                    s.spawn(move || {
                        for i in 0..BATCH * 10 {
                            let k = (i * 7919 + t) % KEYS;
                            let _ = black_box(lim.check_key(&k));
                        }
                    });
                }
            })
        })
    });
    g.finish();
}

/// Poll a future that never waits (the memory path) to completion.
fn run_ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn full_decision(c: &mut Criterion) {
    let text = r#"
[lists]
deny_cidrs = ["203.0.113.0/24", "198.18.0.0/15"]
deny_user_agents = ["sqlmap", "nikto"]
[challenge]
secret = "bench-secret-0123456789"
[[limit]]
name = "ip"
key = "ip"
rate = "1000/s"
burst = 50
"#;
    let p = palisade_gate::Policy::parse(text, "bench").unwrap();
    let gate = palisade_gate::Gate::new(p, &palisade_gate::Stores::default()).unwrap();
    let mut subjects: Vec<palisade_gate::Subject> = (0..KEYS)
        .map(|i| palisade_gate::Subject {
            ip: Some(std::net::IpAddr::from([
                10,
                (i >> 16) as u8,
                (i >> 8) as u8,
                i as u8,
            ])),
            method: "GET".into(),
            path: format!("/products/{i}"),
            query: "ref=home".into(),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0".into(),
            ),
            referrer: Some("https://example.com/".into()),
            accept_language: true,
            header_count: 10,
            ..Default::default()
        })
        .collect();
    subjects[0].path = "/.env".into();
    let mut g = c.benchmark_group("gate_decide");
    g.throughput(Throughput::Elements(BATCH));
    let mut i = 0usize;
    g.bench_function("memory_ip_limit_plus_risk", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                i = (i + 1) % subjects.len();
                black_box(run_ready(gate.decide(&subjects[i])));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = keyed, keyed_threads, full_decision
}
criterion_main!(benches);
