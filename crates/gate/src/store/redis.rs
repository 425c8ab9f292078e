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
/// fleet shares one clock). Returns {stored TAT before the step or -1, now}.
/// The decision itself is recomputed in Rust by the same pure core
/// ([`gcra::check`]) from those two numbers, so the script and the core
/// cannot disagree.
const GCRA_LUA: &str = r#"
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
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
if new_tat - now <= tau then
  local ttl = math.ceil((new_tat - now) / 1000) + 1
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl)
end
return {before, now}
"#;

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

    async fn invoke(&self, inv: redis::ScriptInvocation<'_>) -> Result<(i64, i64), StoreError> {
        self.call(|mut c| async move { inv.invoke_async::<(i64, i64)>(&mut c).await })
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
        let (t_us, tau_us) = quota_us(q);
        let mut inv = self.script.prepare_invoke();
        inv.key(self.redis_key(limiter, key))
            .arg(t_us)
            .arg(tau_us)
            .arg(n)
            .arg(self.now_arg(now_ns));
        let (before, now) = self.invoke(inv).await?;
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
        Ok(scale_us_to_ns(o))
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
        let (before, now) = self.invoke(inv).await?;
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
