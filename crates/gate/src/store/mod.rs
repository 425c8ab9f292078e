//! Where limiter state lives. Both stores run the same pure GCRA core
//! ([`crate::gcra`]). The engine dispatches on [`AnyStore`] itself: the
//! memory store takes binary keys synchronously (no future, no key text),
//! Redis takes the key's text.

pub mod memory;
pub mod redis;

use std::sync::Arc;

pub use self::memory::{EvictionPolicy, MemoryStore};
pub use self::redis::{BreakerState, Lease, RedisConfig, RedisStore};

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
}
