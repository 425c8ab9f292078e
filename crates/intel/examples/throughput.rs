//! Lookups per CPU-second against ~1M indicators, for machines shared with other
//! builds where criterion's wall-clock figures are inflated by waiting for a core.
//! CPU time of this thread comes from /proc/thread-self/schedstat (Linux).
//!
//! `cargo run --release -p palisade-intel --example throughput`

use palisade_intel::{FeedSet, FeedSpec, Kind, MatchOptions, Matcher};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Instant;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn timed<T>(what: &str, n: usize, f: impl FnOnce() -> T) -> T {
    let (c0, w0) = (cpu_ns(), Instant::now());
    let out = f();
    let (cpu, wall) = ((cpu_ns() - c0) as f64 / 1e9, w0.elapsed().as_secs_f64());
    if n > 1 {
        println!(
            "{what:<34} {:>8.2} M/s per CPU-second  (cpu {cpu:.3} s, wall {wall:.3} s, {n} ops)",
            n as f64 / cpu / 1e6
        );
    } else {
        println!("{what:<34} cpu {cpu:.3} s, wall {wall:.3} s");
    }
    out
}

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/threat-intel-feeds")
        .to_string_lossy()
        .into_owned();
    let staged = timed("load staged feeds", 1, || {
        FeedSet::load(&[FeedSpec::from_path(&path)], false).expect("feeds")
    });
    let m = timed("index staged feeds", 1, || {
        Matcher::build(&staged, &MatchOptions::default())
    });
    println!(
        "staged: {} indicators, {} indexed",
        staged.indicators.len(),
        m.report.indexed
    );

    let mut set = staged;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text = String::new();
    for i in 0..1_000_000usize.saturating_sub(set.indicators.len()) {
        if i % 2 == 0 {
            text.push_str(&format!(
                "{}\n",
                Ipv4Addr::from((rng.next() as u32) | 0x0100_0000)
            ));
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
    let m = timed("index 1M indicators", 1, || {
        Matcher::build(&set, &MatchOptions::default())
    });
    println!("index: {} indicators", set.indicators.len());

    let n = 2_000_000;
    let ips: Vec<IpAddr> = set
        .indicators
        .iter()
        .filter(|i| i.kind == Kind::Ipv4)
        .filter_map(|i| i.value.parse().ok())
        .collect();
    let ip_q: Vec<IpAddr> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                ips[(rng.next() as usize) % ips.len()]
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
    let mk = |i: usize, r: u64| -> String {
        match i % 4 {
            0 => doms[(r as usize) % doms.len()].to_string(),
            1 => format!("www.{}", doms[(r as usize) % doms.len()]),
            2 => format!("a.b.host{:x}.co.uk", r % 100_000),
            _ => format!("cdn{}.site{:x}.com", i % 10, r % 1_000_000),
        }
    };
    let dom_q: Vec<String> = (0..n).map(|i| mk(i, rng.next())).collect();
    let miss_q: Vec<String> = (0..n)
        .map(|i| format!("host{}.site{:x}.com", i % 10, rng.next() % 1_000_000))
        .collect();
    let url_q: Vec<String> = (0..n / 10)
        .map(|i| {
            format!(
                "http://{}/index.php?id={i}",
                doms[(rng.next() as usize) % doms.len()]
            )
        })
        .collect();

    let hits = timed("ip lookups (50% hits)", n, || {
        ip_q.iter().filter(|a| m.match_ip(**a).is_some()).count()
    });
    println!("  hits {hits}");
    let hits = timed("domain lookups (mixed)", n, || {
        dom_q.iter().filter(|d| m.match_domain(d).is_some()).count()
    });
    println!("  hits {hits}");
    let exact_q: Vec<String> = (0..n)
        .map(|_| doms[(rng.next() as usize) % doms.len()].to_string())
        .collect();
    let parent_q: Vec<String> = (0..n)
        .map(|_| format!("www.{}", doms[(rng.next() as usize) % doms.len()]))
        .collect();
    let hits = timed("domain lookups (exact hits)", n, || {
        exact_q
            .iter()
            .filter(|d| m.match_domain(d).is_some())
            .count()
    });
    println!("  hits {hits}");
    let hits = timed("domain lookups (www. + hit)", n, || {
        parent_q
            .iter()
            .filter(|d| m.match_domain(d).is_some())
            .count()
    });
    println!("  hits {hits}");
    let hits = timed("psl::domain_str alone", n, || {
        parent_q
            .iter()
            .filter(|d| psl::domain_str(d).is_some())
            .count()
    });
    println!("  hits {hits}");
    let hits = timed("domain lookups (misses, 3 labels)", n, || {
        miss_q
            .iter()
            .filter(|d| m.match_domain(d).is_some())
            .count()
    });
    println!("  hits {hits}");
    let hits = timed("url lookups", n / 10, || {
        url_q.iter().filter(|u| m.match_url(u).is_some()).count()
    });
    println!("  hits {hits}");
}
