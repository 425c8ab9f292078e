//! A hasher for keys that already are hashes.

use std::hash::{BuildHasherDefault, Hasher};

/// A [`Hasher`] for `u64` keys that are already well-mixed hashes (such as
/// ahash outputs): the key is its own hash, so a map or set keyed by it does
/// not hash it again, and a new one needs no random state. The gate's
/// limiter shards and the entity engine's distinct-value sets use it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are meant for this hasher; fold bytes for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// `BuildHasher` of [`IdentityHasher`], for `HashMap`/`HashSet`.
pub type IdentityBuildHasher = BuildHasherDefault<IdentityHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn a_u64_is_its_own_hash() {
        let b = IdentityBuildHasher::default();
        for k in [0u64, 1, 0xdead_beef, u64::MAX] {
            assert_eq!(b.hash_one(k), k);
        }
    }
}
