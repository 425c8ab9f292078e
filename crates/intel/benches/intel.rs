//! Feed loading and lookup throughput.
//!
//! `cargo bench -p palisade-intel --bench intel`
//! - `load/staged_feeds`: read and parse every staged feed (../shared/data/threat-intel-feeds).
//! - `build/staged_feeds`: index them.
//! - `lookup/*`: lookups against an index of ~1M indicators (the staged feeds plus
//!   generated IPv4 addresses and names to reach 1M), one element = one lookup.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_intel::{FeedSet, FeedSpec, Kind, MatchOptions, Matcher};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

fn feeds_path() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/threat-intel-feeds")
        .to_string_lossy()
        .into_owned()
}

/// Deterministic xorshift, enough for spreading benchmark keys.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn million() -> FeedSet {
    let mut set =
        FeedSet::load(&[FeedSpec::from_path(&feeds_path())], false).expect("staged feeds");
    let have = set.indicators.len();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text = String::new();
    let extra = 1_000_000usize.saturating_sub(have);
    for i in 0..extra {
        if i % 2 == 0 {
            let a = Ipv4Addr::from((rng.next() as u32) | 0x0100_0000);
            text.push_str(&format!("{a}\n"));
        } else {
            text.push_str(&format!("h{:x}.example{}.com\n", rng.next(), i % 97));
        }
    }
    let spec = FeedSpec {
        name: "generated".into(),
        path: "generated".into(),
        ..Default::default()
    };
    set.add_text(&spec, "generated.txt", &text, false)
        .expect("generated");
    set
}

fn bench(c: &mut Criterion) {
    let path = feeds_path();
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("staged_feeds", |b| {
        b.iter(|| FeedSet::load(&[FeedSpec::from_path(&path)], false).unwrap())
    });
    let staged = FeedSet::load(&[FeedSpec::from_path(&path)], false).unwrap();
    g.bench_function("build/staged_feeds", |b| {
        b.iter(|| Matcher::build(black_box(&staged), &MatchOptions::default()))
    });
    g.finish();

    let set = million();
    eprintln!("index of {} indicators", set.indicators.len());
    let m = Matcher::build(&set, &MatchOptions::default());

    // Queries: half indicator values (hits), half random (mostly misses).
    let mut rng = Rng(42);
    let ips_in: Vec<IpAddr> = set
        .indicators
        .iter()
        .filter(|i| i.kind == Kind::Ipv4)
        .filter_map(|i| i.value.parse().ok())
        .collect();
    let n = 100_000;
    let ip_q: Vec<IpAddr> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                ips_in[(rng.next() as usize) % ips_in.len()]
            } else {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            }
        })
        .collect();
    let doms: Vec<&str> = set
        .indicators
        .iter()
        .filter(|i| i.kind == Kind::Domain)
        .map(|i| i.value.as_str())
        .collect();
    let dom_q: Vec<String> = (0..n)
        .map(|i| match i % 4 {
            0 => doms[(rng.next() as usize) % doms.len()].to_string(),
            1 => format!("www.{}", doms[(rng.next() as usize) % doms.len()]),
            2 => format!("a.b.host{:x}.co.uk", rng.next() % 100_000),
            _ => format!("cdn{}.site{:x}.com", i % 10, rng.next() % 1_000_000),
        })
        .collect();
    let urls: Vec<String> = (0..n / 10)
        .map(|i| {
            if i % 2 == 0 {
                format!(
                    "http://{}/index.php?id={i}",
                    doms[(rng.next() as usize) % doms.len()]
                )
            } else {
                format!("https://site{i}.example.org/a/b")
            }
        })
        .collect();

    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(ip_q.len() as u64));
    g.bench_function("ip", |b| {
        b.iter(|| ip_q.iter().filter(|a| m.match_ip(**a).is_some()).count())
    });
    g.throughput(Throughput::Elements(dom_q.len() as u64));
    g.bench_function("domain", |b| {
        b.iter(|| dom_q.iter().filter(|d| m.match_domain(d).is_some()).count())
    });
    g.throughput(Throughput::Elements(urls.len() as u64));
    g.bench_function("url", |b| {
        b.iter(|| urls.iter().filter(|u| m.match_url(u).is_some()).count())
    });
    g.finish();

    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    g.bench_function("million", |b| {
        b.iter_batched(
            || (),
            |_| Matcher::build(&set, &MatchOptions::default()),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
