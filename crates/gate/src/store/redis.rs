//! Fleet mode: GCRA state in Redis, updated atomically by a Lua script, so
//! every gate instance enforces one limit.
//!
//! Failure handling never blocks a request for long: each call has a timeout,
//! and a circuit breaker stops calling Redis after repeated failures (calls
//! then fail immediately) until a cool-down has passed and a probe succeeds.
//! The caller (the limiter) turns an error into allow or deny by its
//! configured failure mode.

use crate::gcra::{self, Outcome, Quota};
use crate::store::StoreError;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The GCRA step in Lua, in microseconds (Lua numbers are doubles: exact to
/// 2^53 µs, i.e. centuries of Unix time; nanoseconds since 1970 would not be).
/// ARGV: T (µs), tau (µs), n, now (µs, or -1 to use the server's TIME so a
/// fleet shares one clock), and optionally `lease`: the most cells to
/// reserve beyond the `n` asked for (see [`Lease`]). Returns {stored TAT
/// before the step or -1, now, cells reserved beyond n}.
/// The decision itself is recomputed in Rust by the same pure core
/// ([`gcra::check`]) from the first two numbers, so the script and the core
/// cannot disagree.
///
/// A reservation takes at most half of the cells still free after the `n`
/// (rounded down), so a key near its limit reserves nothing and every
/// request for it goes to Redis, and other instances always find the other
/// half.
const GCRA_LUA: &str = r#"
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local lease = tonumber(ARGV[5] or '0')
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local stored = redis.call('GET', KEYS[1])
local tat = now
local before = -1
if stored then
  before = tonumber(stored)
  if before > now then tat = before end
end
local new_tat = tat + T * n
local extra = 0
if new_tat - now <= tau then
  if lease > 0 then
    extra = math.min(lease, math.floor(math.floor((tau - (new_tat - now)) / T) / 2))
    new_tat = new_tat + T * extra
  end
  local ttl = math.ceil((new_tat - now) / 1000) + 1
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl)
end
return {before, now, extra}
"#;

/// The local fast path of a Redis limiter: when a key is clearly under its
/// limit, one script call reserves up to `cells` more cells for this
/// instance (charged in Redis at once, so the fleet never admits more than
/// the quota), and the next requests for that key spend them without a
/// round trip, for at most `ttl_ns`.
///
/// Why the expiry: a reserved cell spent later is a request admitted at
/// reservation time and held back. Redis refills the key meanwhile, so a
/// cell spent `d` after its reservation can exceed the strict GCRA burst
/// by one; per key and instance the excess is at most
/// `min(cells, ttl / T)` requests, and none when the reserved cells are
/// spent within one emission interval T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Most cells one call may reserve beyond the request's own (0: off).
    pub cells: u32,
    /// How long reserved cells stay spendable (ns, caller's clock).
    pub ttl_ns: u64,
}

/// Cells this instance holds for one key.
#[derive(Debug, Clone, Copy)]
struct Held {
    cells: u32,
    /// Spendable until this time (caller's clock, ns).
    until_ns: u64,
    /// The key's full-burst time as Redis last reported it (caller's clock, ns).
    reset_at_ns: u64,
    /// Cells free for the key as last known here (the reserved ones
    /// included), less those spent since.
    remaining: u32,
}

/// Keys holding reserved cells, at most this many per store by default (a
/// flood of keys then just goes to Redis: no reservation without a slot).
const MAX_HELD: usize = 65_536;

/// The reserved cells of a store.
#[derive(Default)]
struct HeldCells {
    map: ahash::AHashMap<String, Held>,
    /// When full, expired entries are purged at most once per lease time,
    /// so a flood of keys costs one O(n) pass per lease time, not per request.
    next_purge_ns: u64,
}

/// Reads the TAT without changing it: {stored or -1, now}.
const PEEK_LUA: &str = r#"
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local stored = redis.call('GET', KEYS[1])
if stored then return {tonumber(stored), now} end
return {-1, now}
"#;

/// Settings of one Redis store.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key this store writes (`palisade:gate:` by default).
    pub prefix: String,
    /// Limit on one round trip (connect or script call).
    pub timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe is allowed.
    pub breaker_cooldown: Duration,
    /// Use the Redis server's clock (fleet-consistent) rather than the caller's `now`.
    pub server_time: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".into(),
            prefix: "palisade:gate:".into(),
            timeout: Duration::from_millis(50),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(2),
            server_time: true,
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Breaker state as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// A circuit breaker: closed → (N consecutive failures) → open → (cool-down)
/// → half-open (one probe at a time) → closed on success / open on failure.
#[derive(Debug)]
pub struct Breaker {
    state: AtomicU8,
    failures: AtomicU32,
    opened_at: Mutex<Option<Instant>>,
    threshold: u32,
    cooldown: Duration,
    pub trips: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at: Mutex::new(None),
            threshold: threshold.max(1),
            cooldown,
            trips: AtomicU64::new(0),
        }
    }

    /// May a call go through now?
    pub fn allow(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            HALF_OPEN => false, // a probe is in flight
            _ => {
                let opened = *self.opened_at.lock().unwrap_or_else(|p| p.into_inner());
                let due = opened.is_none_or(|t| t.elapsed() >= self.cooldown);
                // Only one caller wins the transition and becomes the probe.
                due && self
                    .state
                    .compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            }
        }
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Release);
        self.state.store(CLOSED, Ordering::Release);
    }

    pub fn failure(&self) {
        let f = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let st = self.state.load(Ordering::Acquire);
        if st == HALF_OPEN || (st == CLOSED && f >= self.threshold) {
            *self.opened_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            self.state.store(OPEN, Ordering::Release);
            self.trips.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

pub struct RedisStore {
    client: redis::Client,
    conn: std::sync::RwLock<Option<redis::aio::MultiplexedConnection>>,
    /// Single-flight for (re)connecting.
    connecting: tokio::sync::Mutex<()>,
    script: redis::Script,
    peek_script: redis::Script,
    cfg: RedisConfig,
    pub breaker: Breaker,
    pub errors: AtomicU64,
    /// Reserved cells per Redis key (see [`Lease`]).
    held: Mutex<HeldCells>,
    /// Most keys holding reserved cells at once.
    held_slots: usize,
    /// Requests answered from reserved cells, without a round trip.
    pub lease_hits: AtomicU64,
}

impl RedisStore {
    /// Parses the URL; does not connect (the first call does, so a gate can
    /// start while Redis is down and apply its failure mode).
    pub fn new(cfg: RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(cfg.url.as_str())
            .map_err(|e| StoreError::Config(format!("redis url `{}`: {e}", cfg.url)))?;
        Ok(RedisStore {
            client,
            conn: std::sync::RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            script: redis::Script::new(GCRA_LUA),
            peek_script: redis::Script::new(PEEK_LUA),
            breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown),
            cfg,
            errors: AtomicU64::new(0),
            held: Mutex::new(HeldCells::default()),
            held_slots: MAX_HELD,
            lease_hits: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    fn redis_key(&self, limiter: &str, key: &str) -> String {
        // Long user-supplied keys are hashed so Redis keys stay small.
        if key.len() > 96 {
            use sha2::Digest;
            format!(
                "{}{}:h:{}",
                self.cfg.prefix,
                limiter,
                hex::encode(sha2::Sha256::digest(key.as_bytes()))
            )
        } else {
            format!("{}{}:{}", self.cfg.prefix, limiter, key)
        }
    }

    fn cached(&self) -> Option<redis::aio::MultiplexedConnection> {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_cached(&self, c: Option<redis::aio::MultiplexedConnection>) {
        *self.conn.write().unwrap_or_else(|p| p.into_inner()) = c;
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, StoreError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.cfg.timeout))
            .set_response_timeout(Some(self.cfg.timeout));
        let c = tokio::time::timeout(
            self.cfg.timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        .map_err(|_| StoreError::Timeout)?
        .map_err(|e| StoreError::Redis(e.to_string()))?;
        self.set_cached(Some(c.clone()));
        Ok(c)
    }

    /// Run one Redis operation through the breaker, with the timeout, and
    /// reconnect on the next call after any failure.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(StoreError::BreakerOpen);
        }
        // If the request is cancelled mid-call (client gone), count it as a
        // failure so a half-open breaker is never left waiting for a probe.
        let mut guard = CallGuard {
            breaker: &self.breaker,
            done: false,
        };
        let res = async {
            let c = self.connection().await?;
            tokio::time::timeout(self.cfg.timeout, op(c))
                .await
                .map_err(|_| StoreError::Timeout)?
                .map_err(|e| StoreError::Redis(e.to_string()))
        }
        .await;
        guard.done = true;
        match &res {
            Ok(_) => self.breaker.success(),
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.breaker.failure();
                // Drop the connection so the next attempt reconnects.
                self.set_cached(None);
            }
        }
        res
    }

    async fn invoke<T: redis::FromRedisValue + Send>(
        &self,
        inv: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.call(|mut c| async move { inv.invoke_async::<T>(&mut c).await })
            .await
    }

    /// Mark `id` (a challenge) as used for `ttl_s` seconds: true on first use.
    pub async fn first_use(&self, id: &str, ttl_s: u64) -> Result<bool, StoreError> {
        let key = format!("{}seen:{id}", self.cfg.prefix);
        self.call(|mut c| async move {
            let r: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl_s.max(1))
                .query_async(&mut c)
                .await?;
            Ok(r.is_some())
        })
        .await
    }

    fn now_arg(&self, now_ns: u64) -> i64 {
        if self.cfg.server_time {
            -1
        } else {
            (now_ns / 1_000) as i64
        }
    }

    /// One GCRA step for `key` of `limiter`, atomically in Redis.
    pub async fn check(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        n: u32,
        now_ns: u64,
    ) -> Result<Outcome, StoreError> {
        let (o, _) = self
            .step(&self.redis_key(limiter, key), q, n, 0, now_ns)
            .await?;
        Ok(o)
    }

    /// One GCRA step for one request (one cell) of `key`, with the local
    /// fast path of `lease`: a reserved cell is spent without a round trip;
    /// otherwise the script runs and may reserve cells for the next requests.
    pub async fn check_leased(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        lease: Lease,
        now_ns: u64,
    ) -> Result<Outcome, StoreError> {
        if lease.cells == 0 {
            return self.check(limiter, key, q, 1, now_ns).await;
        }
        let rkey = self.redis_key(limiter, key);
        let want = match self.spend_held(&rkey, lease, now_ns) {
            Ok(o) => return Ok(o),
            Err(want) => want,
        };
        let (o, extra) = self.step(&rkey, q, 1, want, now_ns).await?;
        if extra > 0 {
            // A slot was free when `want` was decided; requests in flight
            // at the same time may each take one, so the map can exceed
            // `held_slots` by at most the requests awaiting Redis.
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let new = Held {
                cells: extra,
                until_ns: now_ns.saturating_add(lease.ttl_ns),
                reset_at_ns: now_ns.saturating_add(o.reset_after_ns),
                remaining: o.remaining,
            };
            // Requests for one key can await Redis at the same time, each
            // reserving: add to what is held, or those cells would be
            // charged and never spent (the key would drift towards 429s;
            // seen under wrk with 64 connections on 64 keys).
            held.map
                .entry(rkey)
                .and_modify(|h| {
                    if h.until_ns > now_ns {
                        h.cells = h.cells.saturating_add(new.cells);
                        h.until_ns = new.until_ns;
                        h.reset_at_ns = h.reset_at_ns.max(new.reset_at_ns);
                        h.remaining = new.remaining;
                    } else {
                        *h = new;
                    }
                })
                .or_insert(new);
        }
        Ok(o)
    }

    /// How many keys may hold reserved cells at once (default 65,536).
    /// Past that a key's requests all go to Redis and reserve nothing.
    pub fn set_lease_slots(&mut self, n: usize) {
        self.held_slots = n;
    }

    /// Spend one reserved cell of `rkey`, if this instance holds one that
    /// has not expired; otherwise `Err` with how many cells the script may
    /// reserve (0 when no slot is free).
    fn spend_held(&self, rkey: &str, lease: Lease, now_ns: u64) -> Result<Outcome, u32> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let held = &mut *held;
        let Some(h) = held.map.get_mut(rkey) else {
            if held.map.len() >= self.held_slots && now_ns >= held.next_purge_ns {
                held.map.retain(|_, h| h.until_ns > now_ns);
                held.next_purge_ns = now_ns.saturating_add(lease.ttl_ns);
            }
            return Err(if held.map.len() < self.held_slots {
                lease.cells
            } else {
                0
            });
        };
        if h.until_ns <= now_ns || h.cells == 0 {
            held.map.remove(rkey);
            // its slot is free again
            return Err(lease.cells);
        }
        h.cells -= 1;
        h.remaining = h.remaining.saturating_sub(1);
        let o = Outcome {
            allowed: true,
            // the new TAT is already in Redis
            new_tat: None,
            remaining: h.remaining,
            retry_after_ns: 0,
            reset_after_ns: h.reset_at_ns.saturating_sub(now_ns),
        };
        if h.cells == 0 {
            held.map.remove(rkey);
        }
        self.lease_hits.fetch_add(1, Ordering::Relaxed);
        Ok(o)
    }

    /// The script's step for `n` cells plus up to `lease` reserved ones:
    /// (the outcome for the `n` cells, the number reserved beyond them).
    async fn step(
        &self,
        rkey: &str,
        q: Quota,
        n: u32,
        lease: u32,
        now_ns: u64,
    ) -> Result<(Outcome, u32), StoreError> {
        let (t_us, tau_us) = quota_us(q);
        let mut inv = self.script.prepare_invoke();
        inv.key(rkey)
            .arg(t_us)
            .arg(tau_us)
            .arg(n)
            .arg(self.now_arg(now_ns))
            .arg(lease);
        let (before, now, extra): (i64, i64, i64) = self.invoke(inv).await?;
        let tat = (before >= 0).then_some(before as u64);
        let o = gcra::check(
            tat,
            now.max(0) as u64,
            Quota {
                interval_ns: t_us,
                burst: q.burst,
            },
            n,
        );
        let extra = if o.allowed {
            u32::try_from(extra.max(0)).unwrap_or(0).min(lease)
        } else {
            0
        };
        let mut o = scale_us_to_ns(o);
        if extra > 0 {
            // The reserved cells are in the TAT Redis now holds. `remaining`
            // keeps counting them: this client may still spend them here.
            let t_ns = t_us.saturating_mul(1_000);
            o.reset_after_ns = o
                .reset_after_ns
                .saturating_add(t_ns.saturating_mul(extra as u64));
        }
        Ok((o, extra))
    }

    /// The state of `key` without consuming: (remaining, reset_after_ns).
    pub async fn peek(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        now_ns: u64,
    ) -> Result<(u32, u64), StoreError> {
        let (t_us, _) = quota_us(q);
        let mut inv = self.peek_script.prepare_invoke();
        inv.key(self.redis_key(limiter, key))
            .arg(self.now_arg(now_ns));
        let (before, now): (i64, i64) = self.invoke(inv).await?;
        let tat = (before >= 0).then_some(before as u64);
        let (rem, reset) = gcra::peek(
            tat,
            now.max(0) as u64,
            Quota {
                interval_ns: t_us,
                burst: q.burst,
            },
        );
        Ok((rem, reset.saturating_mul(1_000)))
    }
}

struct CallGuard<'a> {
    breaker: &'a Breaker,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.failure();
        }
    }
}

/// The quota in microseconds (T rounded, at least 1 µs).
fn quota_us(q: Quota) -> (u64, u64) {
    let t = (q.interval_ns / 1_000).max(1);
    (t, t * q.burst as u64)
}

fn scale_us_to_ns(o: Outcome) -> Outcome {
    Outcome {
        retry_after_ns: if o.retry_after_ns == u64::MAX {
            u64::MAX
        } else {
            o.retry_after_ns.saturating_mul(1_000)
        },
        reset_after_ns: o.reset_after_ns.saturating_mul(1_000),
        ..o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_transitions() {
        let b = Breaker::new(3, Duration::from_millis(0));
        assert!(b.allow());
        b.failure();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        // Cool-down of 0: exactly one probe is let through.
        assert!(b.allow());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.allow());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.trips.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn breaker_waits_for_cooldown() {
        let b = Breaker::new(1, Duration::from_secs(3600));
        b.failure();
        assert!(!b.allow());
        assert_eq!(b.state(), BreakerState::Open);
    }
}
