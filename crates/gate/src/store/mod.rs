//! Where limiter state lives. Both stores run the same pure GCRA core
//! ([`crate::gcra`]); [`RateStore`] is the one interface the limiters use.

pub mod memory;
pub mod redis;

use crate::gcra::{Outcome, Quota};
use std::future::Future;
use std::sync::Arc;

pub use self::memory::{EvictionPolicy, MemoryStore};
pub use self::redis::{BreakerState, RedisConfig, RedisStore};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("redis call timed out")]
    Timeout,
    #[error("redis circuit breaker is open")]
    BreakerOpen,
    #[error("key store is full")]
    Full,
    #[error("store config: {0}")]
    Config(String),
}

/// A GCRA state store. `limiter` namespaces keys of different limiters that
/// share one store (Redis); the memory store is per limiter.
pub trait RateStore: Send + Sync {
    fn check(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        n: u32,
        now_ns: u64,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// (remaining, reset_after_ns) without consuming.
    fn peek(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        now_ns: u64,
    ) -> impl Future<Output = Result<(u32, u64), StoreError>> + Send;
}

impl RateStore for MemoryStore {
    fn check(
        &self,
        _limiter: &str,
        key: &str,
        q: Quota,
        n: u32,
        now_ns: u64,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send {
        std::future::ready(
            MemoryStore::check(self, key.as_bytes(), q, n, now_ns).ok_or(StoreError::Full),
        )
    }

    fn peek(
        &self,
        _limiter: &str,
        key: &str,
        q: Quota,
        now_ns: u64,
    ) -> impl Future<Output = Result<(u32, u64), StoreError>> + Send {
        let (r, reset, _) = MemoryStore::peek(self, key.as_bytes(), q, now_ns);
        std::future::ready(Ok((r, reset)))
    }
}

impl RateStore for RedisStore {
    fn check(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        n: u32,
        now_ns: u64,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send {
        RedisStore::check(self, limiter, key, q, n, now_ns)
    }

    fn peek(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        now_ns: u64,
    ) -> impl Future<Output = Result<(u32, u64), StoreError>> + Send {
        RedisStore::peek(self, limiter, key, q, now_ns)
    }
}

/// A store chosen at run time by the policy.
#[derive(Clone)]
pub enum AnyStore {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

impl AnyStore {
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::Redis(_) => "redis",
        }
    }

    pub async fn check(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        n: u32,
        now_ns: u64,
    ) -> Result<Outcome, StoreError> {
        match self {
            // The memory path stays synchronous: no future state machine to poll.
            AnyStore::Memory(m) => m
                .check(key.as_bytes(), q, n, now_ns)
                .ok_or(StoreError::Full),
            AnyStore::Redis(r) => r.check(limiter, key, q, n, now_ns).await,
        }
    }

    pub async fn peek(
        &self,
        limiter: &str,
        key: &str,
        q: Quota,
        now_ns: u64,
    ) -> Result<(u32, u64), StoreError> {
        match self {
            AnyStore::Memory(m) => RateStore::peek(&**m, limiter, key, q, now_ns).await,
            AnyStore::Redis(r) => r.peek(limiter, key, q, now_ns).await,
        }
    }
}
