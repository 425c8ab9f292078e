//! Memory under a flood of unique IPv6 /64 keys: the memory store's key cap
//! holds, and an active key keeps its limit.
//!
//! `cargo run --release -p palisade-gate --example flood -- [KEYS] [MAX_KEYS]`

use palisade_gate::gcra::Quota;
use palisade_gate::policy::ip_prefix;
use palisade_gate::store::{EvictionPolicy, MemoryStore};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flood: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let cap: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let q = Quota::new(10, Duration::from_secs(60), 10).unwrap();
    let st = MemoryStore::new(cap, 64, EvictionPolicy::EvictSoonest);
    let rss0 = rss_kib();
    let mut now = 1_000_000_000u64;
    // A legitimate, busy client that has used its burst; its TAT is mirrored
    // here so its state after the flood can be checked against the pure core.
    let mut victim_tat = None;
    for _ in 0..10 {
        victim_tat = st
            .check(b"victim", q, 1, now)
            .and_then(|o| o.new_tat)
            .or(victim_tat);
    }
    let t = Instant::now();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..flood {
        // A different random /64 each request (an attacker rotating through IPv6 space).
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ip = IpAddr::V6(Ipv6Addr::from(
            ((0x2001_0db8u128) << 96) | ((x as u128) << 64) | i as u128,
        ));
        let key = ip_prefix(ip, 32, 64).to_string();
        now += 1_000; // 1 µs apart: 1M requests/s
        st.check(key.as_bytes(), q, 1, now);
    }
    let el = t.elapsed();
    let victim = st.check(b"victim", q, 1, now);
    let expected = palisade_gate::gcra::check(victim_tat, now, q, 1);
    println!(
        "flood: {flood} unique /64 keys, cap {cap}, {:.2} M checks/s (incl. key formatting)",
        flood as f64 / el.as_secs_f64() / 1e6
    );
    println!("tracked keys: {} (cap {})", st.len(), st.capacity());
    println!(
        "table bytes (approx): {:.1} MiB",
        st.approx_bytes() as f64 / 1048576.0
    );
    println!(
        "process RSS: {:.1} MiB before, {:.1} MiB after",
        rss0 as f64 / 1024.0,
        rss_kib() as f64 / 1024.0
    );
    println!(
        "evictions: expired {}, active {}",
        st.stats.expired_evictions.load(Relaxed),
        st.stats.active_evictions.load(Relaxed)
    );
    println!(
        "busy client's limit intact after the flood (store = pure core on its remembered TAT): {} (remaining {:?})",
        victim == Some(expected),
        victim.map(|o| o.remaining)
    );
}
