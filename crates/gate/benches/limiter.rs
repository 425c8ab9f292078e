//! In-process decisions/s: palisade's memory limiter vs the governor crate on
//! the same workload, plus the full gate decision (lists, limit, risk score).
//!
//! Fairness: both limiters get the same quota (1000/s, burst 50: governor's
//! `tau = T * (burst - 1)` test on the old TAT is the same decision as ours),
//! the same key sequence, and read the *same* clock object per decision
//! (governor through a [`governor::clock::Clock`] adapter over palisade's
//! clock), so clock cost cancels out. The `clock` group shows what each
//! clock read costs on its own, and `governor_own_clock` is governor as
//! shipped (its default quanta clock).
//!
//! `cargo bench -p palisade-gate --bench limiter`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use governor::clock::{Clock as GClock, QuantaClock};
use governor::nanos::Nanos;
use governor::{Quota as GQuota, RateLimiter};
use palisade_gate::clock::{Clock, FakeClock, MonotonicClock};
use palisade_gate::gcra::Quota;
use palisade_gate::risk::{RequestFeatures, RiskScorer};
use palisade_gate::store::{EvictionPolicy, MemoryStore};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

const KEYS: u64 = 10_000;
const BATCH: u64 = 1_000;

/// Governor reading palisade's clock: identical clock cost for both sides.
#[derive(Clone)]
struct Shared<C: Clock + Clone>(C);

impl<C: Clock + Clone> GClock for Shared<C> {
    type Instant = Nanos;
    fn now(&self) -> Nanos {
        Nanos::new(self.0.now_ns())
    }
}

fn quotas() -> (Quota, GQuota) {
    let q = Quota::new(1000, Duration::from_secs(1), 50).unwrap();
    let gq = GQuota::per_second(NonZeroU32::new(1000).unwrap())
        .allow_burst(NonZeroU32::new(50).unwrap());
    (q, gq)
}

/// What one clock read costs (the keyed rows below pay one per decision).
fn clocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock_read");
    g.throughput(Throughput::Elements(BATCH));
    let mono = MonotonicClock::new();
    g.bench_function("palisade_monotonic", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(mono.now_ns());
            }
        })
    });
    let start = std::time::Instant::now();
    g.bench_function("std_instant", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(start.elapsed());
            }
        })
    });
    let qc = QuantaClock::default();
    g.bench_function("governor_quanta", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(qc.now());
            }
        })
    });
    g.finish();
}

fn keyed_with<C: Clock + Clone>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    keys: u64,
    clock: C,
) {
    let (q, gq) = quotas();
    let store = MemoryStore::new(1_000_000, 64, EvictionPolicy::EvictSoonest);
    let mut i = 0u64;
    let ck = clock.clone();
    g.bench_function(BenchmarkId::new("palisade", label), |b| {
        b.iter(|| {
            let mut allowed = 0u32;
            for _ in 0..BATCH {
                i = (i + 1) % keys;
                let k = i.to_le_bytes();
                allowed += store
                    .check(&k, q, 1, ck.now_ns())
                    .is_some_and(|o| o.allowed) as u32;
            }
            black_box(allowed)
        })
    });
    let lim = RateLimiter::dashmap_with_clock(gq, Shared(clock));
    let mut j = 0u64;
    g.bench_function(BenchmarkId::new("governor", label), |b| {
        b.iter(|| {
            let mut allowed = 0u32;
            for _ in 0..BATCH {
                j = (j + 1) % keys;
                // The same 8 key bytes as palisade's (governor hashes the u64).
                allowed += lim.check_key(&j).is_ok() as u32;
            }
            black_box(allowed)
        })
    });
}

fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_limiter");
    g.throughput(Throughput::Elements(BATCH));
    // 1000 requests/s per key, burst 50: the workload below cycles over 10k
    // keys, so a mix of allowed and, on hot keys, denied decisions.
    for (name, keys) in [("10k_keys", KEYS), ("1_hot_key", 1)] {
        keyed_with(&mut g, name, keys, MonotonicClock::new());
    }
    // A clock that costs one atomic load for both: the stores alone.
    keyed_with(
        &mut g,
        "10k_keys_fake_clock",
        KEYS,
        FakeClock::new(1_000_000_000),
    );
    // Governor as shipped (its own quanta clock), for reference.
    let (_, gq) = quotas();
    let lim = RateLimiter::keyed(gq);
    let mut j = 0u64;
    g.bench_function(BenchmarkId::new("governor_own_clock", "10k_keys"), |b| {
        b.iter(|| {
            let mut allowed = 0u32;
            for _ in 0..BATCH {
                j = (j + 1) % KEYS;
                allowed += lim.check_key(&j).is_ok() as u32;
            }
            black_box(allowed)
        })
    });
    g.finish();
}

/// Two threads hammering the same limiter (contention on shards / dashmap).
fn keyed_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_limiter_2_threads");
    g.throughput(Throughput::Elements(2 * BATCH * 10));
    let (q, gq) = quotas();
    let store = Arc::new(MemoryStore::new(
        1_000_000,
        64,
        EvictionPolicy::EvictSoonest,
    ));
    let clock = MonotonicClock::new();
    g.bench_function("palisade", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let (store, clock) = (&store, &clock);
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
    let lim = RateLimiter::dashmap_with_clock(gq, Shared(clock.clone()));
    g.bench_function("governor", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let lim = &lim;
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
    // The risk features alone, as the default scorer needs them.
    let view = palisade_gate::risk::RequestView {
        method: "GET",
        host: None,
        path: &subjects[1].path,
        query: &subjects[1].query,
        user_agent: subjects[1].user_agent.as_deref(),
        referrer: subjects[1].referrer.as_deref(),
        accept_language: true,
        header_count: 10,
        limit_pressure: 0.1,
        limit_exceeded: false,
    };
    let scorer = palisade_gate::risk::LinearScorer::default();
    let mut g = c.benchmark_group("risk");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("features_all", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(RequestFeatures::from_view(black_box(&view)));
            }
        })
    });
    // the features a scorer needs, then its score: the default linear one,
    // and with the `model` feature an Isolation Forest model file
    #[allow(unused_mut)]
    let mut scorers: Vec<(&str, Arc<dyn RiskScorer>)> =
        vec![("features_needed_plus_score", Arc::new(scorer))];
    #[cfg(feature = "model")]
    scorers.push(("iforest_model_score", iforest_risk_model()));
    for (name, scorer) in &scorers {
        g.bench_function(*name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let v = black_box(&view);
                    let f = RequestFeatures::from_view_masked(v, scorer.needs());
                    black_box(scorer.score(&f, v));
                }
            })
        });
    }
    g.finish();
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

#[cfg(feature = "model")]
#[path = "../tests/support/risk_model.rs"]
mod risk_model;

/// An Isolation Forest (100 trees) on the 18 gate features and 4 URL
/// features of 2,000 synthetic browser-like requests, loaded as the gate
/// loads a `risk.model` file: what one request's model score costs.
#[cfg(feature = "model")]
fn iforest_risk_model() -> Arc<dyn RiskScorer> {
    use palisade_gate::risk::RequestView;
    let requests: Vec<(String, String)> = (0..2000)
        .map(|i| {
            (
                format!("/products/{}", i % 97),
                format!("ref=home&page={}", i % 7),
            )
        })
        .collect();
    let views: Vec<RequestView<'_>> = requests
        .iter()
        .enumerate()
        .map(|(i, (path, query))| RequestView {
            method: if i % 9 == 0 { "POST" } else { "GET" },
            host: Some("shop.example"),
            path,
            query,
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
            ),
            referrer: (i % 3 != 0).then_some("https://shop.example/"),
            accept_language: i % 11 != 0,
            header_count: 8 + i % 5,
            limit_pressure: (i % 10) as f32 / 20.0,
            limit_exceeded: i % 50 == 0,
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, path) = risk_model::train_risk_model(&views, dir.path());
    palisade_gate::model_scorer::load(&path).expect("load")
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = clocks, keyed, keyed_threads, full_decision
}
criterion_main!(benches);
