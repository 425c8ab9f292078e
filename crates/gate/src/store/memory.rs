//! In-process GCRA state: sharded, bounded.
//!
//! Each shard is a read-write lock around a map from a 64-bit keyed hash of
//! the key to its TAT (16 bytes of payload per key; the key text is never
//! stored). The common path — a key already tracked — takes the shard's lock
//! shared and updates the key's TAT with a compare-exchange, the way governor
//! does: threads deciding on keys of the same shard (or on one hot key) do
//! not serialise on a mutex, and a denied request only reads. The lock is
//! taken exclusively only to insert a new key or evict. The total number of
//! keys is capped. When a shard is full, keys whose TAT is
//! already in the past are dropped first: forgetting them changes no
//! decision, because GCRA treats an expired TAT exactly like an unseen key.
//! Only if that frees too little does the [`EvictionPolicy`] apply to keys
//! that are still active.
//!
//! Hand-written rather than a cache crate (moka, quick_cache) because the
//! eviction order that keeps limits correct — expired TATs first, then the
//! soonest-to-expire — is specific to GCRA; LRU/LFU would evict the wrong keys.

use crate::gcra::{self, Outcome, Quota};
use palisade_core::IdentityBuildHasher;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What to do with a new key when a shard is full of active keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EvictionPolicy {
    /// Drop the active keys closest to expiry (least remaining debt; the least
    /// harm: such a key regains at most its small debt). The default.
    #[default]
    EvictSoonest,
    /// Do not track the new key; its request is denied (fail closed for new keys).
    RejectNew,
}

/// Counters of the store, for metrics and the memory measurement.
#[derive(Debug, Default)]
pub struct MemoryStats {
    pub expired_evictions: AtomicU64,
    pub active_evictions: AtomicU64,
    pub rejected_new: AtomicU64,
}

/// The keys are already hashed (keyed ahash), so the inner map uses them as is.
///
/// Why ahash: keys are attacker-chosen (IP prefixes, user names, tokens) and
/// the 64-bit hash *is* the key's identity here, so the hash must be keyed
/// with a per-process random seed (no precomputed collisions, no flooding of
/// one shard). ahash's `RandomState` is keyed and built for HashDoS
/// resistance, and hashes a 20-byte key in a few ns; SipHash (std, governor)
/// is a PRF but several times slower on short keys; foldhash is faster still
/// but documents only "minimal" DoS resistance.
type Shard = HashMap<u64, AtomicU64, IdentityBuildHasher>;

/// One shard on its own cache lines: neighbouring shards' lock words would
/// otherwise share a line, and threads working on different shards would
/// still contend for it.
#[repr(align(128))]
struct Padded(RwLock<Shard>);

pub struct MemoryStore {
    shards: Box<[Padded]>,
    shard_bits: u32,
    per_shard_cap: usize,
    policy: EvictionPolicy,
    hasher: ahash::RandomState,
    pub stats: MemoryStats,
}

/// Result of a memory-store check: `None` when the key could not be tracked
/// (full, [`EvictionPolicy::RejectNew`]).
pub type MemoryResult = Option<Outcome>;

impl MemoryStore {
    /// A store holding at most `max_keys` keys (rounded up to a multiple of
    /// the shard count), in `shards` shards (rounded up to a power of two).
    pub fn new(max_keys: usize, shards: usize, policy: EvictionPolicy) -> Self {
        let shards = shards.clamp(1, 1024).next_power_of_two();
        let per_shard_cap = max_keys.div_ceil(shards).max(1);
        MemoryStore {
            shards: (0..shards)
                .map(|_| Padded(RwLock::new(Shard::default())))
                .collect(),
            shard_bits: shards.trailing_zeros(),
            per_shard_cap,
            policy,
            hasher: ahash::RandomState::new(),
            stats: MemoryStats::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.per_shard_cap * self.shards.len()
    }

    fn locate(&self, key: &[u8]) -> (usize, u64) {
        let h = self.hasher.hash_one(key);
        // The shard comes from the middle bits: the map inside it uses the
        // low bits (bucket position) and the top 7 (the tag its SIMD probe
        // compares). Taking the shard from the top bits, as before, left all
        // keys of a shard with the same 6 of those 7 tag bits, so every probe
        // matched about half the occupied slots and compared their keys.
        let shard = ((h >> 32) as usize) & ((1usize << self.shard_bits) - 1);
        (shard, h)
    }

    // A poisoned shard only means another thread panicked mid-update of
    // plain integers; the data is still valid.
    fn read(&self, i: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[i].0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self, i: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[i].0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// One GCRA step on a tracked key's TAT, lock-free: compute from the
    /// current TAT, publish with a compare-exchange, recompute if another
    /// thread moved it in between. A deny changes nothing and writes nothing.
    /// Relaxed ordering: the TAT is the whole state, no other memory is
    /// published with it, and the compare-exchange alone makes concurrent
    /// steps on one key linearisable.
    fn step(tat: &AtomicU64, q: Quota, n: u32, now: u64) -> Outcome {
        let mut cur = tat.load(Ordering::Relaxed);
        loop {
            let o = gcra::check(Some(cur), now, q, n);
            let Some(new_tat) = o.new_tat else {
                return o;
            };
            match tat.compare_exchange_weak(cur, new_tat, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return o,
                Err(actual) => cur = actual,
            }
        }
    }

    /// One GCRA step for `key`.
    pub fn check(&self, key: &[u8], q: Quota, n: u32, now: u64) -> MemoryResult {
        let (si, h) = self.locate(key);
        // Known key (the common case): shared lock, one probe, atomic update.
        if let Some(tat) = self.read(si).get(&h) {
            return Some(Self::step(tat, q, n, now));
        }
        let mut shard = self.lock(si);
        // Another thread may have inserted the key between the two locks.
        if let Some(tat) = shard.get(&h) {
            return Some(Self::step(tat, q, n, now));
        }
        let o = gcra::check(None, now, q, n);
        if let Some(new_tat) = o.new_tat {
            if shard.len() >= self.per_shard_cap && !self.make_room(&mut shard, now) {
                self.stats.rejected_new.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            shard.insert(h, AtomicU64::new(new_tat));
        }
        Some(o)
    }

    /// The state of `key` without consuming: (remaining, reset_after_ns, tracked).
    pub fn peek(&self, key: &[u8], q: Quota, now: u64) -> (u32, u64, bool) {
        let (si, h) = self.locate(key);
        let tat = self.read(si).get(&h).map(|t| t.load(Ordering::Relaxed));
        let (rem, reset) = gcra::peek(tat, now, q);
        (rem, reset, tat.is_some_and(|t| t > now))
    }

    /// Free at least one slot. Expired keys go first; if fewer than 1/16 of
    /// the shard expired, the soonest-expiring 1/16 of active keys are also
    /// evicted (EvictSoonest), so the O(shard) scan is amortised over many
    /// inserts instead of repeating on every new key during a flood.
    fn make_room(&self, shard: &mut Shard, now: u64) -> bool {
        let before = shard.len();
        shard.retain(|_, tat| !gcra::is_expired(*tat.get_mut(), now));
        let expired = before - shard.len();
        self.stats
            .expired_evictions
            .fetch_add(expired as u64, Ordering::Relaxed);
        let chunk = (self.per_shard_cap / 16).max(1);
        if expired >= chunk || (expired > 0 && self.policy == EvictionPolicy::RejectNew) {
            return true;
        }
        match self.policy {
            EvictionPolicy::RejectNew => shard.len() < self.per_shard_cap,
            EvictionPolicy::EvictSoonest => {
                let want = chunk - expired;
                let mut tats: Vec<u64> = shard.values_mut().map(|t| *t.get_mut()).collect();
                if tats.is_empty() {
                    return true;
                }
                let idx = (want - 1).min(tats.len() - 1);
                let (_, cut, _) = tats.select_nth_unstable(idx);
                let cut = *cut;
                let before = shard.len();
                shard.retain(|_, tat| *tat.get_mut() > cut);
                self.stats
                    .active_evictions
                    .fetch_add((before - shard.len()) as u64, Ordering::Relaxed);
                true
            }
        }
    }

    /// Number of tracked keys (locks each shard in turn).
    pub fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.read(i).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the maps' tables (hashbrown: 16 B per slot + 1 control
    /// byte, slots = capacity rounded to a power of two / load factor).
    pub fn approx_bytes(&self) -> usize {
        (0..self.shards.len())
            .map(|i| {
                let cap = self.read(i).capacity();
                // capacity() reports usable slots (7/8 of buckets).
                let buckets = (cap * 8).div_ceil(7).next_power_of_two();
                buckets * 17
            })
            .sum::<usize>()
            + std::mem::size_of::<Self>()
            + self.shards.len() * std::mem::size_of::<Padded>()
    }

    /// Drop every expired key (a periodic sweep; also happens lazily when full).
    pub fn sweep(&self, now: u64) -> usize {
        let mut removed = 0;
        for i in 0..self.shards.len() {
            let mut s = self.lock(i);
            let before = s.len();
            s.retain(|_, tat| !gcra::is_expired(*tat.get_mut(), now));
            removed += before - s.len();
        }
        self.stats
            .expired_evictions
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn limits_one_key() {
        let st = MemoryStore::new(100, 4, EvictionPolicy::EvictSoonest);
        let q = Quota::new(1, Duration::from_secs(1), 2).unwrap();
        assert!(st.check(b"a", q, 1, S).unwrap().allowed);
        assert!(st.check(b"a", q, 1, S).unwrap().allowed);
        assert!(!st.check(b"a", q, 1, S).unwrap().allowed);
        // Another key is independent.
        assert!(st.check(b"b", q, 1, S).unwrap().allowed);
        assert!(st.check(b"a", q, 1, 2 * S).unwrap().allowed);
    }

    #[test]
    fn flood_is_bounded_and_active_key_stays_limited() {
        let cap = 1_000;
        let st = MemoryStore::new(cap, 8, EvictionPolicy::EvictSoonest);
        let q = Quota::new(1, Duration::from_secs(60), 5).unwrap();
        let mut now = S;
        // The attacker's victim key uses its whole burst, so its TAT is far out.
        for _ in 0..5 {
            assert!(st.check(b"victim", q, 1, now).unwrap().allowed);
        }
        // A flood of unique keys, each seen once (TAT = now + 60 s: active,
        // but with less debt than the victim's 300 s).
        for i in 0..50_000u64 {
            now += 1_000;
            st.check(&i.to_le_bytes(), q, 1, now);
            assert!(st.len() <= st.capacity());
        }
        assert!(st.stats.active_evictions.load(Ordering::Relaxed) > 0);
        // The victim has the most debt and is never the one evicted.
        assert!(
            !st.check(b"victim", q, 1, now).unwrap().allowed,
            "active key forgot its limit"
        );
    }

    #[test]
    fn expired_keys_evicted_first() {
        let st = MemoryStore::new(64, 1, EvictionPolicy::RejectNew);
        let q = Quota::new(1, Duration::from_secs(1), 1).unwrap();
        for i in 0..64u64 {
            st.check(&i.to_le_bytes(), q, 1, S);
        }
        assert_eq!(st.len(), 64);
        // Full of active keys: a new key is rejected under RejectNew.
        assert!(st.check(b"new", q, 1, S).is_none());
        assert_eq!(st.stats.rejected_new.load(Ordering::Relaxed), 1);
        // Two seconds later all have expired: room again, nothing active lost.
        assert!(st.check(b"new", q, 1, 3 * S).unwrap().allowed);
        assert!(st.stats.expired_evictions.load(Ordering::Relaxed) >= 64);
        assert_eq!(st.len(), 1);
    }

    /// The lock-free update must lose no step and grant no extra one: with
    /// time frozen, threads racing on the same keys (new and tracked) get
    /// exactly `burst` allows per key in total, as the sequential GCRA does.
    #[test]
    fn concurrent_checks_grant_exactly_the_burst() {
        let st = MemoryStore::new(1_000, 4, EvictionPolicy::EvictSoonest);
        let q = Quota::new(1, Duration::from_secs(3600), 37).unwrap();
        let keys = 16u64;
        let allowed: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4u64)
                .map(|t| {
                    let st = &st;
                    s.spawn(move || {
                        let mut per_key = vec![0u64; keys as usize];
                        for i in 0..2_000u64 {
                            // Each thread walks the keys in its own order.
                            let k = (i * (2 * t + 1)) % keys;
                            if st.check(&k.to_le_bytes(), q, 1, S).unwrap().allowed {
                                per_key[k as usize] += 1;
                            }
                        }
                        per_key
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).fold(
                vec![0u64; keys as usize],
                |mut acc, v| {
                    acc.iter_mut().zip(v).for_each(|(a, b)| *a += b);
                    acc
                },
            )
        });
        // The sequential reference: the pure core, one key, same frozen time.
        let mut tat = None;
        let mut reference = 0u64;
        for _ in 0..8_000 {
            let o = gcra::check(tat, S, q, 1);
            if o.allowed {
                reference += 1;
                tat = o.new_tat;
            }
        }
        assert_eq!(reference, 37);
        for (k, n) in allowed.iter().enumerate() {
            assert_eq!(*n, reference, "key {k}");
        }
        assert_eq!(st.len(), keys as usize);
    }

    /// The shard index must not eat into the bits the inner map uses: keys
    /// of one shard still spread over all 128 probe tags (top 7 bits) and
    /// over the low (bucket) bits.
    #[test]
    fn shard_bits_leave_map_bits_free() {
        let st = MemoryStore::new(1_000, 64, EvictionPolicy::EvictSoonest);
        let mut tags = std::collections::HashSet::new();
        let mut lows = std::collections::HashSet::new();
        for i in 0..20_000u64 {
            let (shard, h) = st.locate(&i.to_le_bytes());
            assert!(shard < 64);
            if shard == 0 {
                tags.insert(h >> 57);
                lows.insert(h & 63);
            }
        }
        assert!(tags.len() > 100, "{} tags", tags.len());
        assert!(lows.len() > 60, "{} low patterns", lows.len());
        let one = MemoryStore::new(10, 1, EvictionPolicy::EvictSoonest);
        assert_eq!(one.locate(b"x").0, 0);
    }

    #[test]
    fn peek_does_not_consume() {
        let st = MemoryStore::new(10, 1, EvictionPolicy::EvictSoonest);
        let q = Quota::new(1, Duration::from_secs(1), 3).unwrap();
        st.check(b"k", q, 1, S);
        assert_eq!(st.peek(b"k", q, S).0, 2);
        assert_eq!(st.peek(b"k", q, S).0, 2);
        assert_eq!(st.sweep(10 * S), 1);
        assert!(st.is_empty());
    }
}
