//! Fleet mode against the real Redis at 127.0.0.1:6379 (unique key prefixes
//! per test), and Redis failures simulated without touching the shared
//! server: a closed port, a proxy that is killed mid-test, a server that
//! accepts connections but never answers.

mod common;
use common::*;
use palisade_gate::gcra::{self, Quota};
use palisade_gate::store::{
    BreakerState, EvictionPolicy, Lease, MemoryStore, RedisConfig, RedisStore, StoreError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const REDIS: &str = "127.0.0.1:6379";

fn prefix(test: &str) -> String {
    format!(
        "palisade:test:{}:{}:{}:",
        test,
        std::process::id(),
        rand::random::<u32>()
    )
}

fn store(url: &str, test: &str, server_time: bool) -> RedisStore {
    RedisStore::new(RedisConfig {
        url: url.into(),
        prefix: prefix(test),
        timeout: Duration::from_millis(200),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_millis(300),
        server_time,
    })
    .unwrap()
}

const S: u64 = 1_000_000_000;

/// Whether one request for `key` (limiter `l`) is admitted with `lease`.
async fn admits(st: &RedisStore, key: &str, q: Quota, lease: Lease, now: u64) -> bool {
    st.check_leased("l", key, q, lease, now)
        .await
        .unwrap()
        .allowed
}

#[tokio::test]
async fn lua_gcra_matches_pure_core_on_fake_time() {
    let st = store(&format!("redis://{REDIS}/"), "core", false);
    let q = Quota::new(5, Duration::from_secs(1), 3).unwrap();
    let mem = MemoryStore::new(100, 1, EvictionPolicy::EvictSoonest);
    // Times are client-supplied here (server_time = false), so a fixed
    // pseudo-random schedule is replayed identically on both stores.
    let mut now = 1_700_000_000 * S;
    let mut x: u64 = 12345;
    for i in 0..60 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        now += (x >> 33) % 400_000_000; // 0–400 ms
        let r = st.check("lim", "k", q, 1, now).await.unwrap();
        let m = mem.check(b"k", q, 1, now).unwrap();
        assert_eq!(r.allowed, m.allowed, "step {i}");
        assert_eq!(r.remaining, m.remaining, "step {i}");
        if !r.allowed {
            // Redis works in µs; retry-after agrees to the microsecond.
            assert!(
                r.retry_after_ns.abs_diff(m.retry_after_ns) < 1_000,
                "step {i}: {} vs {}",
                r.retry_after_ns,
                m.retry_after_ns
            );
        }
    }
    let (rem, _) = st.peek("lim", "k", q, now).await.unwrap();
    assert_eq!(rem, mem.peek(b"k", q, now).0);
}

#[tokio::test]
async fn fleet_shares_one_limit_atomically() {
    let url = format!("redis://{REDIS}/");
    let p = prefix("fleet");
    let mk = || {
        Arc::new(
            RedisStore::new(RedisConfig {
                url: url.clone(),
                prefix: p.clone(),
                server_time: true,
                ..RedisConfig::default()
            })
            .unwrap(),
        )
    };
    let (a, b) = (mk(), mk());
    let q = Quota::new(1, Duration::from_secs(3600), 10).unwrap();
    // 60 concurrent requests for one key through two "instances".
    let mut tasks = vec![];
    for i in 0..60 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.check("shared", "client", q, 1, 0).await.unwrap().allowed
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap() as u32;
    }
    assert_eq!(allowed, 10, "exactly the burst is allowed across the fleet");
    assert_eq!(b.peek("shared", "client", q, 0).await.unwrap().0, 0);
    // Keys expire on their own (PX set from the TAT), nothing to clean up.
}

#[tokio::test]
async fn replay_seen_set_in_redis() {
    let st = store(&format!("redis://{REDIS}/"), "seen", true);
    let id = format!("{:x}", rand::random::<u64>());
    assert!(st.first_use(&id, 30).await.unwrap());
    assert!(!st.first_use(&id, 30).await.unwrap());
}

/// A port with nothing listening.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_redis_errors_fast_and_breaker_opens() {
    let st = store(
        &format!("redis://127.0.0.1:{}/", closed_port().await),
        "down",
        true,
    );
    let q = Quota::new(1, Duration::from_secs(1), 1).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        assert!(st.check("l", "k", q, 1, 0).await.is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(st.breaker.state(), BreakerState::Open);
    assert_eq!(
        st.check("l", "k", q, 1, 0).await,
        Err(StoreError::BreakerOpen)
    );
}

#[tokio::test]
async fn hanging_redis_times_out() {
    // Accepts connections, never answers.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let st = store(&format!("redis://127.0.0.1:{port}/"), "hang", true);
    let q = Quota::new(1, Duration::from_secs(1), 1).unwrap();
    let t = Instant::now();
    let e = st.check("l", "k", q, 1, 0).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Timeout | StoreError::Redis(_)),
        "{e}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

/// A TCP proxy to the real Redis that can be killed (all connections cut)
/// and restarted on the same port.
struct Proxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

/// Copy bytes one way until either side closes (tokio's io-util helpers are
/// not enabled in this workspace, so readiness + try_read/try_write).
async fn pump(from: &TcpStream, to: &TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if from.readable().await.is_err() {
            return;
        }
        let n = match from.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        };
        let mut off = 0;
        while off < n {
            if to.writable().await.is_err() {
                return;
            }
            match to.try_write(&buf[off..n]) {
                Ok(m) => off += m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return,
            }
        }
    }
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let l = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((c, _)) = l.accept().await {
                conns.spawn(async move {
                    if let Ok(r) = TcpStream::connect(REDIS).await {
                        tokio::select! {
                            _ = pump(&c, &r) => {},
                            _ = pump(&r, &c) => {},
                        }
                    }
                });
            }
        });
        Proxy { port, task }
    }
    fn kill(self) -> u16 {
        // Aborting drops the listener and the JoinSet, which aborts every
        // relayed connection: for the client, Redis is gone.
        self.task.abort();
        self.port
    }
}

fn gate_with_redis(port: u16, mode: &str) -> palisade_gate::Gate {
    let text = base_policy(&format!(
        r#"
[redis]
url = "redis://127.0.0.1:{port}/"
prefix = "{}"
timeout_ms = 200
breaker_failures = 2
breaker_cooldown_ms = 300

[[limit]]
name = "fleet"
key = "ip"
rate = "1/h"
burst = 2
store = "redis"
on_store_error = "{mode}"
"#,
        prefix("gate")
    ));
    let p = palisade_gate::Policy::parse(&text, "t").unwrap();
    palisade_gate::Gate::new(p, &palisade_gate::Stores::default()).unwrap()
}

fn subject(ip: &str) -> palisade_gate::Subject {
    palisade_gate::Subject {
        ip: Some(ip.parse().unwrap()),
        method: "GET".into(),
        path: "/".into(),
        user_agent: Some("Mozilla/5.0 Firefox/120".into()),
        referrer: Some("https://x/".into()),
        accept_language: true,
        header_count: 8,
        ..Default::default()
    }
}

#[tokio::test]
async fn redis_stopped_mid_test_fail_open_and_closed() {
    for mode in ["open", "closed"] {
        let proxy = Proxy::start(0).await;
        let gate = gate_with_redis(proxy.port, mode);
        use palisade_gate::Verdict::*;
        // Redis up: the limit is enforced in Redis.
        assert_eq!(gate.decide(&subject("192.0.2.1")).await.decision, Allow);
        assert_eq!(gate.decide(&subject("192.0.2.1")).await.decision, Allow);
        assert_eq!(
            gate.decide(&subject("192.0.2.1")).await.decision,
            RateLimited
        );
        // Redis "stops".
        let port = proxy.kill();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let expect = if mode == "open" { Allow } else { RateLimited };
        let mut errors = vec![];
        for i in 0..5 {
            let t = Instant::now();
            let d = gate.decide(&subject("192.0.2.2")).await;
            assert_eq!(d.decision, expect, "mode {mode}, call {i}: {d:?}");
            errors.push(
                d.limits[0]
                    .store_error
                    .clone()
                    .expect("store error reported"),
            );
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "a dead Redis must not hang a decision"
            );
        }
        // After 2 failures the breaker opens: later calls fail without touching Redis.
        assert!(errors.iter().any(|e| e.contains("breaker")), "{errors:?}");
        // Redis comes back on the same port: after the cool-down a probe
        // succeeds, the breaker closes, and limits are enforced again.
        let proxy = Proxy::start(port).await;
        tokio::time::sleep(Duration::from_millis(350)).await;
        let d = gate.decide(&subject("192.0.2.1")).await;
        assert_eq!(d.decision, RateLimited, "state survived in Redis: {d:?}");
        assert!(d.limits[0].store_error.is_none());
        proxy.kill();
    }
}

#[test]
fn pure_core_is_what_redis_runs() {
    // The script returns the stored TAT and `now`; the decision is the pure
    // core's. Spot-check the µs conversion used for Redis.
    let q = Quota::new(3, Duration::from_secs(1), 2).unwrap();
    let o = gcra::check(
        None,
        0,
        Quota {
            interval_ns: q.interval_ns / 1_000,
            burst: 2,
        },
        1,
    );
    assert!(o.allowed && o.remaining == 1);
}

/// The local fast path: one instance spending its own reservations admits
/// exactly the burst (the reserved cells are charged in Redis, none are
/// lost), with fewer round trips than requests.
#[tokio::test]
async fn local_lease_admits_exactly_the_burst_with_fewer_round_trips() {
    let st = store(&format!("redis://{REDIS}/"), "lease1", false);
    let q = Quota::new(1, Duration::from_secs(3600), 20).unwrap();
    let lease = Lease {
        cells: 4,
        ttl_ns: S,
    };
    let now = 1_700_000_000 * S;
    let mut allowed = 0;
    for i in 0..40u64 {
        let o = st
            .check_leased("lim", "hot", q, lease, now + i * 1_000)
            .await
            .unwrap();
        if o.allowed {
            allowed += 1;
            // a client is told what it can still do: burst less what it spent
            assert_eq!(o.remaining, 20 - allowed, "request {i}");
        }
    }
    assert_eq!(allowed, 20, "exactly the burst");
    let hits = st.lease_hits.load(std::sync::atomic::Ordering::Relaxed);
    // reservations: 4 of 19 free, 4 of 14, 4 of 9, 2 of 4, 0 of 1 …
    assert_eq!(hits, 14, "requests answered from reserved cells");
    assert_eq!(st.peek("lim", "hot", q, now).await.unwrap().0, 0);
    // a key near its limit reserves nothing: with 2 cells left, both requests
    // go to Redis
    let q2 = Quota::new(1, Duration::from_secs(3600), 2).unwrap();
    for _ in 0..3 {
        st.check_leased("lim", "cold", q2, lease, now)
            .await
            .unwrap();
    }
    assert_eq!(
        st.lease_hits.load(std::sync::atomic::Ordering::Relaxed),
        hits
    );
}

/// Reserved cells expire: after the lease's time the next request asks
/// Redis again; and two instances reserving on one key never admit more than
/// the burst between them.
#[tokio::test]
async fn local_lease_expires_and_the_fleet_stays_within_the_burst() {
    use std::sync::atomic::Ordering::Relaxed;
    let url = format!("redis://{REDIS}/");
    let p = prefix("lease2");
    let mk = || {
        RedisStore::new(RedisConfig {
            url: url.clone(),
            prefix: p.clone(),
            server_time: false,
            ..RedisConfig::default()
        })
        .unwrap()
    };
    let (a, b) = (mk(), mk());
    let q = Quota::new(1, Duration::from_secs(3600), 30).unwrap();
    let lease = Lease {
        cells: 5,
        ttl_ns: 10_000_000,
    };
    let now = 1_700_000_000 * S;
    // a reserves 5 (of 29 free) and spends one of them
    assert!(admits(&a, "k", q, lease, now).await);
    assert!(admits(&a, "k", q, lease, now + 1).await);
    assert_eq!(a.lease_hits.load(Relaxed), 1);
    // after the lease's 10 ms the held cells are gone: a round trip
    let later = now + 20_000_000;
    assert!(admits(&a, "k", q, lease, later).await);
    assert_eq!(a.lease_hits.load(Relaxed), 1);
    // both instances, interleaved, until denied everywhere
    let mut allowed = 0;
    for i in 0..80u64 {
        let s = if i % 2 == 0 { &a } else { &b };
        allowed += admits(s, "k", q, lease, later + 1 + i).await as u32;
    }
    // 30 cells, 3 spent and 4 left unspendable by the expired reservation
    // (charged, never used: a lease errs on the strict side)
    assert!(allowed <= 27, "{allowed}");
    assert!(allowed >= 27 - 2 * 5, "{allowed}");
    assert!(b.lease_hits.load(Relaxed) > 0);
}

/// Two requests for one key awaiting Redis at once both reserve: the
/// instance keeps both reservations (it used to keep the last, and the
/// other's cells stayed charged and unspent, so a busy key drifted towards
/// 429s under `bench/gate_http.sh` with LEASE=8).
#[tokio::test]
async fn concurrent_reservations_of_one_key_add_up() {
    use std::sync::atomic::Ordering::Relaxed;
    let st = store(&format!("redis://{REDIS}/"), "lease3", false);
    let q = Quota::new(1, Duration::from_secs(3600), 40).unwrap();
    let lease = Lease {
        cells: 4,
        ttl_ns: S,
    };
    let now = 1_700_000_000 * S;
    // the test runtime has one thread: both calls miss the held cells, then
    // both await the script
    let (x, y) = tokio::join!(
        st.check_leased("l", "k", q, lease, now),
        st.check_leased("l", "k", q, lease, now)
    );
    assert!(x.unwrap().allowed && y.unwrap().allowed);
    assert_eq!(st.lease_hits.load(Relaxed), 0);
    for i in 1..=8u64 {
        assert!(admits(&st, "k", q, lease, now + i).await);
    }
    assert_eq!(st.lease_hits.load(Relaxed), 8, "both reservations spent");
    // 2 requests + 8 reserved cells charged: 30 of 40 left in Redis
    assert_eq!(st.peek("l", "k", q, now + 9).await.unwrap().0, 30);
}

/// Reserved cells are bounded per store: with every slot taken, another key
/// reserves nothing (so nothing is charged that could not be spent), until
/// the held cells expire and a purge frees the slots.
#[tokio::test]
async fn lease_slots_bound_the_keys_holding_cells() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut st = store(&format!("redis://{REDIS}/"), "lease4", false);
    st.set_lease_slots(2);
    let q = Quota::new(1, Duration::from_secs(3600), 40).unwrap();
    let lease = Lease {
        cells: 4,
        ttl_ns: 10_000_000,
    };
    let now = 1_700_000_000 * S;
    for k in ["a", "b", "c"] {
        assert!(admits(&st, k, q, lease, now).await);
    }
    // a and b hold 4 cells each; c got no slot, so only its own cell is charged
    assert_eq!(st.peek("l", "a", q, now).await.unwrap().0, 35);
    assert_eq!(st.peek("l", "c", q, now).await.unwrap().0, 39);
    assert!(admits(&st, "c", q, lease, now + 1).await);
    assert_eq!(st.lease_hits.load(Relaxed), 0);
    assert!(admits(&st, "a", q, lease, now + 2).await);
    assert_eq!(st.lease_hits.load(Relaxed), 1);
    // after the lease time the purge frees the slots: c reserves
    let later = now + 20_000_000;
    assert!(admits(&st, "c", q, lease, later).await);
    assert!(admits(&st, "c", q, lease, later + 1).await);
    assert_eq!(st.lease_hits.load(Relaxed), 2);
}
